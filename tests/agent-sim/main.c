/* agent-sim: plays MGS + the SSM agent on loopback so the plugin can be
 * tested end to end without AWS. See docs/agent-sim.md. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms.h"
#include "sigv4.h"
#include "sim.h"

struct sim_config g_cfg = {
    .listen = "127.0.0.1",
    .agent_version = "3.3.1142.0",
    .seed = 1,
    .handshake_timeout_ms = 15000,
    .close_output = "",
    .smux_ka_interval_ms = 10000,
    .smux_ka_timeout_ms = 30000,
};
int g_listen_port;
struct lws_context *g_ctx;
struct lws_vhost *g_vhost;

static volatile sig_atomic_t g_stop;
static lws_sorted_usec_list_t g_heartbeat;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Bounds the time between a signal and noticing it. */
static void heartbeat(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(g_ctx, 0, sul, heartbeat, 200 * LWS_US_PER_MS);
}

static const struct lws_protocols g_protocols[] = {
    {"sim", sim_datachan_callback, sizeof(struct sim_conn), 4096, 0, NULL, 0},
    {"sim-fd", sim_fd_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void usage(FILE *f)
{
    fputs("usage: agent-sim [--listen ADDR] [--port N] [--port-file F] [--tls-cert F --tls-key F]\n"
          "                 [--agent-version V] [--record F] [--seed N] [--handshake-shell]\n"
          "                 [--handshake-timeout-ms N] [--start-delay-ms N]\n"
          "                 [--drop P] [--dup P] [--reorder P] [--drop-in P] [--malformed P]\n"
          "                 [--withhold-acks-ms N] [--pause-publication-ms N]\n"
          "                 [--cut-after-msgs N] [--cut-after-client-msgs N] [--cut-count K]\n"
          "                 [--cut-mode close|reset]\n"
          "                 [--start-fail-after N] [--stall-reads-ms N]\n"
          "                 [--resume-fail-count N] [--resume-fail-ms T] [--resume-empty-token]\n"
          "                 [--resume-new-cell]\n"
          "                 [--access-key AK --secret-key SK [--session-token T]]... [--require-sigv4]\n"
          "                 [--ecs-auth-token T] [--sso-access-token T]\n"
          "                 [--kms-key-id K [--kms-challenge]] [--kms-valid-key K]...\n"
          "                 [--smux-keepalive-ms N] [--smux-timeout-ms N]\n"
          "                 [--close-after-ms N] [--close-output TEXT]\n",
          f);
}

static int parse_prob(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || v < 0.0 || v > 1.0)
        return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v > 0xffffffffu)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

enum {
    O_LISTEN = 256, O_PORT, O_PORT_FILE, O_CERT, O_KEY, O_AGENT, O_RECORD, O_SEED, O_HS_SHELL, O_HS_TIMEOUT, O_START_DELAY,
    O_DROP, O_DUP, O_REORDER, O_DROP_IN, O_MALFORMED, O_WITHHOLD, O_WITHHOLD_LEGACY, O_PAUSE,
    O_CUT, O_CUT_COUNT, O_CLOSE_AFTER, O_CLOSE_OUTPUT, O_HELP,
    O_SMUX_KA, O_SMUX_TIMEOUT, O_KMS_KEY, O_KMS_CHALLENGE, O_KMS_VALID, O_ECS_AUTH, O_SSO_TOKEN, O_ACCESS_KEY, O_SECRET_KEY, O_SESSION_TOKEN, O_REQUIRE_SIGV4,
    O_CUT_CLIENT, O_CUT_MODE, O_START_FAIL_AFTER, O_STALL_READS, O_RESUME_FAIL_COUNT, O_RESUME_FAIL_MS, O_RESUME_EMPTY, O_RESUME_CELL,
};

static int parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, 0, O_LISTEN},
        {"port", required_argument, 0, O_PORT},
        {"port-file", required_argument, 0, O_PORT_FILE},
        {"tls-cert", required_argument, 0, O_CERT},
        {"tls-key", required_argument, 0, O_KEY},
        {"agent-version", required_argument, 0, O_AGENT},
        {"record", required_argument, 0, O_RECORD},
        {"seed", required_argument, 0, O_SEED},
        {"handshake-shell", no_argument, 0, O_HS_SHELL},
        {"handshake-timeout-ms", required_argument, 0, O_HS_TIMEOUT},
        {"start-delay-ms", required_argument, 0, O_START_DELAY},
        {"drop", required_argument, 0, O_DROP},
        {"dup", required_argument, 0, O_DUP},
        {"reorder", required_argument, 0, O_REORDER},
        {"drop-in", required_argument, 0, O_DROP_IN},
        {"malformed", required_argument, 0, O_MALFORMED},
        {"withhold-acks-ms", required_argument, 0, O_WITHHOLD},
        {"withhold-acks", required_argument, 0, O_WITHHOLD_LEGACY},
        {"pause-publication-ms", required_argument, 0, O_PAUSE},
        {"cut-after-msgs", required_argument, 0, O_CUT},
        {"cut-count", required_argument, 0, O_CUT_COUNT},
        {"close-after-ms", required_argument, 0, O_CLOSE_AFTER},
        {"close-output", required_argument, 0, O_CLOSE_OUTPUT},
        {"cut-after-client-msgs", required_argument, 0, O_CUT_CLIENT},
        {"cut-mode", required_argument, 0, O_CUT_MODE},
        {"start-fail-after", required_argument, 0, O_START_FAIL_AFTER},
        {"stall-reads-ms", required_argument, 0, O_STALL_READS},
        {"resume-fail-count", required_argument, 0, O_RESUME_FAIL_COUNT},
        {"resume-fail-ms", required_argument, 0, O_RESUME_FAIL_MS},
        {"resume-empty-token", no_argument, 0, O_RESUME_EMPTY},
        {"resume-new-cell", no_argument, 0, O_RESUME_CELL},
        {"access-key", required_argument, 0, O_ACCESS_KEY},
        {"secret-key", required_argument, 0, O_SECRET_KEY},
        {"session-token", required_argument, 0, O_SESSION_TOKEN},
        {"require-sigv4", no_argument, 0, O_REQUIRE_SIGV4},
        {"ecs-auth-token", required_argument, 0, O_ECS_AUTH},
        {"kms-key-id", required_argument, 0, O_KMS_KEY},
        {"smux-keepalive-ms", required_argument, 0, O_SMUX_KA},
        {"smux-timeout-ms", required_argument, 0, O_SMUX_TIMEOUT},
        {"kms-challenge", no_argument, 0, O_KMS_CHALLENGE},
        {"kms-valid-key", required_argument, 0, O_KMS_VALID},
        {"sso-access-token", required_argument, 0, O_SSO_TOKEN},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int c;
    uint32_t u;
    /* --access-key starts a key; --secret-key and --session-token complete it. */
    const char *ak = NULL, *sk = NULL, *tok = NULL;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_LISTEN: g_cfg.listen = optarg; break;
        case O_PORT: bad = parse_u32(optarg, &u) || u > 65535; g_cfg.port = (int)u; break;
        case O_PORT_FILE: g_cfg.port_file = optarg; break;
        case O_CERT: g_cfg.tls_cert = optarg; break;
        case O_KEY: g_cfg.tls_key = optarg; break;
        case O_AGENT: g_cfg.agent_version = optarg; break;
        case O_RECORD: g_cfg.record = optarg; break;
        case O_SEED: g_cfg.seed = strtoull(optarg, NULL, 10); break;
        case O_HS_SHELL: g_cfg.handshake_shell = 1; break;
        case O_HS_TIMEOUT: bad = parse_u32(optarg, &g_cfg.handshake_timeout_ms); break;
        case O_START_DELAY: bad = parse_u32(optarg, &g_cfg.start_delay_ms); break;
        case O_DROP: bad = parse_prob(optarg, &g_cfg.drop); break;
        case O_DUP: bad = parse_prob(optarg, &g_cfg.dup); break;
        case O_REORDER: bad = parse_prob(optarg, &g_cfg.reorder); break;
        case O_DROP_IN: bad = parse_prob(optarg, &g_cfg.drop_in); break;
        case O_MALFORMED: bad = parse_prob(optarg, &g_cfg.malformed); break;
        case O_WITHHOLD:
        case O_WITHHOLD_LEGACY: bad = parse_u32(optarg, &g_cfg.withhold_acks_ms); break;
        case O_PAUSE: bad = parse_u32(optarg, &g_cfg.pause_publication_ms); break;
        case O_CUT: bad = parse_u32(optarg, &g_cfg.cut_after_msgs); break;
        case O_CUT_COUNT: bad = parse_u32(optarg, &g_cfg.cut_count); break;
        case O_CLOSE_AFTER: bad = parse_u32(optarg, &g_cfg.close_after_ms); break;
        case O_CLOSE_OUTPUT: g_cfg.close_output = optarg; break;
        case O_CUT_CLIENT: bad = parse_u32(optarg, &g_cfg.cut_after_client_msgs); break;
        case O_CUT_MODE:
            if (strcmp(optarg, "close") == 0)
                g_cfg.cut_mode_close = 1;
            else if (strcmp(optarg, "reset") == 0)
                g_cfg.cut_mode_close = 0;
            else
                bad = 1;
            break;
        case O_START_FAIL_AFTER: bad = parse_u32(optarg, &g_cfg.start_fail_after); break;
        case O_STALL_READS: bad = parse_u32(optarg, &g_cfg.stall_reads_ms); break;
        case O_RESUME_FAIL_COUNT: bad = parse_u32(optarg, &g_cfg.resume_fail_count); break;
        case O_RESUME_FAIL_MS: bad = parse_u32(optarg, &g_cfg.resume_fail_ms); break;
        case O_RESUME_EMPTY: g_cfg.resume_empty_token = 1; break;
        case O_RESUME_CELL: g_cfg.resume_new_cell = 1; break;
        case O_ACCESS_KEY:
            if (ak)
                bad = sk == NULL || sim_keys_add(ak, sk, tok) != 0;
            ak = optarg;
            sk = tok = NULL;
            break;
        case O_SECRET_KEY: bad = ak == NULL; sk = optarg; break;
        case O_SESSION_TOKEN: bad = ak == NULL; tok = optarg; break;
        case O_REQUIRE_SIGV4: g_cfg.require_sigv4 = 1; break;
        case O_ECS_AUTH: g_cfg.ecs_auth = optarg; break;
        case O_KMS_KEY: g_cfg.kms_key_id = optarg; break;
        case O_SMUX_KA: bad = parse_u32(optarg, &g_cfg.smux_ka_interval_ms) || g_cfg.smux_ka_interval_ms == 0; break;
        case O_SMUX_TIMEOUT: bad = parse_u32(optarg, &g_cfg.smux_ka_timeout_ms) || g_cfg.smux_ka_timeout_ms == 0; break;
        case O_KMS_CHALLENGE: g_cfg.kms_challenge = 1; break;
        case O_KMS_VALID:
            bad = g_cfg.kms_valid_count >= 8;
            if (!bad)
                g_cfg.kms_valid[g_cfg.kms_valid_count++] = optarg;
            break;
        case O_SSO_TOKEN: g_cfg.sso_token = optarg; break;
        case O_HELP: usage(stdout); exit(0);
        default: bad = 1; break;
        }
        if (bad) {
            fprintf(stderr, "agent-sim: bad option value\n");
            usage(stderr);
            return -1;
        }
    }
    if (ak && (sk == NULL || sim_keys_add(ak, sk, tok) != 0)) {
        fprintf(stderr, "agent-sim: --access-key needs --secret-key\n");
        return -1;
    }
    if (optind != argc || (!g_cfg.tls_cert != !g_cfg.tls_key)) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0)
        return 2;
    sim_rand_seed(g_cfg.seed);
    if (sim_record_open(g_cfg.record) != 0) {
        fprintf(stderr, "agent-sim: cannot open record file\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = g_cfg.port;
    info.iface = g_cfg.listen;
    info.protocols = g_protocols;
    info.vhost_name = "default";
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (g_cfg.tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = g_cfg.tls_cert;
        info.ssl_private_key_filepath = g_cfg.tls_key;
    }
    g_ctx = lws_create_context(&info);
    if (g_ctx == NULL) {
        fprintf(stderr, "agent-sim: cannot listen on %s:%d\n", g_cfg.listen, g_cfg.port);
        return 1;
    }
    g_vhost = lws_get_vhost_by_name(g_ctx, "default");
    g_listen_port = g_vhost ? lws_get_vhost_listen_port(g_vhost) : -1;
    if (g_listen_port <= 0) {
        fprintf(stderr, "agent-sim: no listening port\n");
        lws_context_destroy(g_ctx);
        return 1;
    }
    if (g_cfg.port_file && write_port_file(g_cfg.port_file, g_listen_port) != 0) {
        fprintf(stderr, "agent-sim: cannot write port file\n");
        lws_context_destroy(g_ctx);
        return 1;
    }
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "port", g_listen_port);
    cJSON_AddBoolToObject(f, "tls", g_cfg.tls_cert != NULL);
    cJSON_AddStringToObject(f, "agent_version", g_cfg.agent_version);
    sim_record_global("listening", f);
    printf("{\"port\":%d}\n", g_listen_port);
    fflush(stdout);

    heartbeat(&g_heartbeat);
    while (!g_stop)
        if (lws_service(g_ctx, 0) < 0)
            break;

    sim_record_global("shutdown", NULL);
    sim_sessions_stop_all();
    lws_context_destroy(g_ctx);
    sim_sessions_free_all();
    sim_kms_free_all();
    sim_record_close();
    return 0;
}
