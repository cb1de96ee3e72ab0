/* The AWS API client on a bare lws loop: `while (!done) lws_service(ctx, 0)`
 * with no tick of the caller's own, as standalone mode drives StartSession.
 *
 * lws 4.1 runs timers (lws_sul) at the top of lws_service(), before poll(),
 * and sizes that poll from the timer list alone; a result delivered from a
 * sul left such a loop asleep in poll() until lws's 30 s housekeeping timer.
 * Every case here asserts the callback arrives within BOUND_MS (the stall
 * was 30 s; a typical call takes a few milliseconds) and that the loop did
 * not spin getting there: few lws_service() turns, little CPU time.
 *
 * The SSM endpoint is a tiny HTTP server on a thread, or agent-sim's fake
 * SSM API when SSM_TEST_SSM_ENDPOINT is set (tests/integration/
 * test_aws_loop.py runs this binary that way). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RUSAGE_THREAD */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "loopback_listener.h"
#include "aws_api.h"
#include "aws_http.h"

#define BOUND_MS 5000   /* generous: the bug was a 30 s sleep */
#define MAX_TURNS 50    /* a call takes well under 20 loop turns */
#define MAX_CPU_MS 150  /* of the loop thread, for a call of up to ~400 ms */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------- fake SSM endpoint ---------------- */

static struct {
    int lfd, port;
    pthread_t th;
    volatile int stop;
    volatile int requests;
} srv;

/* Reads one request (headers and Content-Length body); 0 on success. */
static int read_request(int fd, char path[256])
{
    char buf[16384];
    size_t n = 0;
    char *end = NULL;
    while (!end && n < sizeof buf - 1) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end || sscanf(buf, "%*s %255s", path) != 1)
        return -1;
    size_t want = 0;
    for (char *l = strstr(buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
        if (!strncasecmp(l + 2, "content-length:", 15))
            want = (size_t)atol(l + 17);
    size_t have = n - (size_t)(end + 4 - buf);
    while (have < want) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    return 0;
}

static void *server_main(void *arg)
{
    (void)arg;
    static const char ok[] = "{\"SessionId\":\"s-loop\",\"TokenValue\":\"tok\","
                             "\"StreamUrl\":\"wss://example.invalid/v1/data-channel/s-loop\"}";
    while (!srv.stop) {
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char path[256];
        if (read_request(fd, path) == 0) {
            srv.requests++;
            if (!strcmp(path, "/silent")) {
                /* Never answer; wait for the client to give up. */
                struct timeval tv = {.tv_sec = 0, .tv_usec = 50000};
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                char sink[256];
                while (!srv.stop && read(fd, sink, sizeof sink) != 0)
                    ;
            } else {
                char head[256];
                int hl = snprintf(head, sizeof head,
                                  "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                                  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                  strlen(ok));
                if (write(fd, head, (size_t)hl) == hl)
                    (void)!write(fd, ok, strlen(ok));
            }
        }
        close(fd);
    }
    return NULL;
}

static void server_start(void)
{
    memset(&srv, 0, sizeof srv);
    srv.lfd = loopback_listener(&srv.port);
    assert_true(srv.lfd >= 0);
    assert_int_equal(pthread_create(&srv.th, NULL, server_main, NULL), 0);
}

static void server_stop(void)
{
    srv.stop = 1;
    pthread_join(srv.th, NULL);
    close(srv.lfd);
}

/* ---------------- the bare loop ---------------- */

static struct lws_context *lws;
static int done;

/* Breaks a stalled poll() at the bound so a regression fails in seconds, not
 * after 30 s per case (lws_cancel_service is safe from another thread). */
static struct {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    struct timespec until;
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *watchdog_main(void *arg)
{
    (void)arg;
    struct timespec until = wd.until;
    pthread_mutex_lock(&wd.mu);
    int rc = 0;
    while (!wd.stop && rc == 0)
        rc = pthread_cond_timedwait(&wd.cv, &wd.mu, &until);
    int fire = !wd.stop;
    pthread_mutex_unlock(&wd.mu);
    if (fire)
        lws_cancel_service(lws);
    return NULL;
}

typedef struct loop_stats {
    long turns;        /* lws_service() calls */
    long long wall_ms;
    long long cpu_ms;  /* user + system time of this thread */
} loop_stats;

static long long thread_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ((long long)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Exactly what a caller without a tick does, bounded by the watchdog. */
static loop_stats run_bare_for(int want, int bound_ms)
{
    loop_stats st = {0};
    wd.stop = 0;
    clock_gettime(CLOCK_REALTIME, &wd.until);
    wd.until.tv_sec += bound_ms / 1000;
    wd.until.tv_nsec += (long)(bound_ms % 1000) * 1000000L;
    if (wd.until.tv_nsec >= 1000000000L) {
        wd.until.tv_sec++;
        wd.until.tv_nsec -= 1000000000L;
    }
    assert_int_equal(pthread_create(&wd.th, NULL, watchdog_main, NULL), 0);
    long long t0 = now_ms(), c0 = thread_cpu_ms();
    while (done < want && now_ms() - t0 < bound_ms) {
        lws_service(lws, 0);
        st.turns++;
    }
    st.wall_ms = now_ms() - t0;
    st.cpu_ms = thread_cpu_ms() - c0;
    pthread_mutex_lock(&wd.mu);
    wd.stop = 1;
    pthread_cond_signal(&wd.cv);
    pthread_mutex_unlock(&wd.mu);
    pthread_join(wd.th, NULL);
    return st;
}

static loop_stats run_bare(int want) { return run_bare_for(want, BOUND_MS); }

static void assert_prompt(const loop_stats *st, int want)
{
    print_message("    %d callback(s) after %lld ms, %ld loop turns, %lld ms CPU\n", done,
                  st->wall_ms, st->turns, st->cpu_ms);
    assert_int_equal(done, want);
    assert_true(st->wall_ms < BOUND_MS);
    assert_true(st->turns <= MAX_TURNS);
    assert_true(st->cpu_ms <= MAX_CPU_MS);
}

static const char *cred_vars[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "HTTPS_PROXY",
    "https_proxy", "http_proxy", "SSM_PLUGIN_SKIP_CLIENT_CONFIGURE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_EC2_METADATA_SERVICE_ENDPOINT"};

/* Standalone mode's loop: no listening vhost, no protocols of the caller's. */
static int setup(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof cred_vars / sizeof cred_vars[0]; i++)
        unsetenv(cred_vars[i]);
    setenv("HOME", "/nonexistent-home-for-tests", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    /* No `aws configure export-credentials` fallback: it may exist here. */
    setenv("PATH", "/nonexistent", 1);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    lws = lws_create_context(&info);
    assert_non_null(lws);
    done = 0;
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    lws_context_destroy(lws);
    return 0;
}

static void use_env_credentials(void)
{
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 1);
}

/* ---------------- cases ---------------- */

static struct {
    int status;
    char type[64], session_id[64];
    bool have_token, have_url, signed_auth;
} got;

static void on_started(void *user, const aws_api_error *err, const char *sid, const char *token,
                       const char *url)
{
    (void)user;
    got.status = err->status;
    snprintf(got.type, sizeof got.type, "%s", err->status ? err->type : "");
    snprintf(got.session_id, sizeof got.session_id, "%s", sid ? sid : "");
    got.have_token = token && *token;
    got.have_url = url && *url;
    done++;
}

static void test_start_session_completes(void **st)
{
    (void)st;
    use_env_credentials();
    const char *sim = getenv("SSM_TEST_SSM_ENDPOINT");
    char endpoint[128];
    if (!sim)
        server_start();
    snprintf(endpoint, sizeof endpoint, "%s", sim ? sim : "");
    if (!sim)
        snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/", srv.port);
    aws_ctx_config cfg = {.region = "us-east-1", .ssm_endpoint = endpoint};
    aws_ctx *a = aws_ctx_new(lws, &cfg);
    assert_non_null(a);
    memset(&got, 0, sizeof got);
    assert_int_equal(aws_start_session(a, "{\"Target\":\"i-0123456789abcdef0\","
                                          "\"DocumentName\":\"AWS-StartNonInteractiveCommand\","
                                          "\"Parameters\":{\"command\":[\"true\"]}}",
                                       on_started, NULL), 0);
    assert_int_equal(done, 0); /* never inside the call */
    loop_stats s = run_bare(1);
    assert_prompt(&s, 1);
    assert_int_equal(got.status, 0);
    assert_true(got.have_token && got.have_url);
    if (sim)
        assert_int_equal(strncmp(got.session_id, "sim-", 4), 0);
    else
        assert_string_equal(got.session_id, "s-loop");
    aws_ctx_free(a);
    if (!sim) {
        assert_int_equal(srv.requests, 1);
        server_stop();
    }
}

/* No credentials anywhere: the error comes without any network step, from
 * the operation's own "next turn" timer. This stalled for 30 s. */
static void test_start_session_without_credentials(void **st)
{
    (void)st;
    aws_ctx_config cfg = {.region = "us-east-1", .ssm_endpoint = "http://127.0.0.1:9/"};
    aws_ctx *a = aws_ctx_new(lws, &cfg);
    assert_non_null(a);
    memset(&got, 0, sizeof got);
    assert_int_equal(aws_start_session(a, "{\"Target\":\"i-1\"}", on_started, NULL), 0);
    loop_stats s = run_bare(1);
    assert_prompt(&s, 1);
    assert_int_equal(got.status, -1);
    assert_string_equal(got.type, "CredentialsError");
    aws_ctx_free(a);
}

static void on_auth(void *user, const aws_ws_auth *auth)
{
    (void)user;
    static const char want[] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/";
    got.signed_auth = auth && !strncmp(auth->authorization, want, sizeof want - 1);
    done++;
}

/* Upgrade signing and the unsigned (presigned URL) answer are pure
 * computation: both used to run from a sul and stall the loop. */
static void test_ws_prepare_signed_and_presigned(void **st)
{
    (void)st;
    use_env_credentials();
    aws_ctx_config cfg = {.region = "us-east-1"};
    aws_ctx *a = aws_ctx_new(lws, &cfg);
    assert_non_null(a);
    memset(&got, 0, sizeof got);
    assert_int_equal(aws_ws_prepare(a, "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/"
                                       "s-1?role=publish_subscribe", on_auth, NULL), 0);
    loop_stats s = run_bare(1);
    assert_prompt(&s, 1);
    assert_true(got.signed_auth);

    done = 0;
    got.signed_auth = true;
    assert_int_equal(aws_ws_prepare(a, "wss://h/v1/data-channel/s-1?X-Amz-Signature=ab&x=1",
                                    on_auth, NULL), 0);
    s = run_bare(1);
    assert_prompt(&s, 1);
    assert_false(got.signed_auth); /* NULL auth: presigned goes out unsigned */
    aws_ctx_free(a);
}

static aws_http_response last;
static char last_error[64];

static void keep(void *user, const aws_http_response *r)
{
    (void)user;
    last = *r;
    snprintf(last_error, sizeof last_error, "%s", r->error ? r->error : "");
    last.error = r->error ? last_error : NULL;
    done++;
}

/* A request deadline: fires on time from a timerfd. With an lws_sul the
 * loop busy-polled the deadline's last sub-millisecond, then slept on. */
static void test_request_deadline(void **st)
{
    (void)st;
    server_start();
    aws_http *h = aws_http_new(lws, NULL);
    assert_non_null(h);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/silent", srv.port);
    aws_http_request rq = {.method = "POST", .url = url, .body = "{}", .body_len = 2,
                           .timeout_ms = 300};
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    loop_stats s = run_bare(1);
    assert_prompt(&s, 1);
    assert_string_equal(last.error, "timeout");
    assert_int_equal(last.status, 0);
    assert_true(s.wall_ms >= 295); /* not early either */
    aws_http_free(h);
    server_stop();
}

/* Connection refused and a cancelled request: the first reports promptly,
 * the second never calls back, and the loop stays idle-quiet. */
static void test_refused_and_cancelled(void **st)
{
    (void)st;
    aws_http *h = aws_http_new(lws, NULL);
    assert_non_null(h);
    aws_http_request rq = {.method = "GET", .url = "http://127.0.0.1:9/", .timeout_ms = 3000};
    aws_http_req *gone = aws_http_send(h, &rq, keep, NULL);
    assert_non_null(gone);
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    aws_http_cancel(gone);
    loop_stats s = run_bare(1);
    assert_prompt(&s, 1);
    assert_non_null(last.error);
    assert_string_not_equal(last.error, "timeout");
    /* The cancelled one stays silent, and an idle loop sleeps in poll(). */
    s = run_bare_for(2, 300);
    assert_int_equal(done, 1);
    assert_true(s.turns <= 3);
    assert_true(s.cpu_ms <= 20);
    aws_http_free(h);
}

static int open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Each operation owns a timerfd: finished and cancelled ones give it back. */
static void test_timers_are_released(void **st)
{
    (void)st;
    use_env_credentials();
    int before = open_descriptors();
    aws_ctx_config cfg = {.region = "us-east-1"};
    aws_ctx *a = aws_ctx_new(lws, &cfg);
    assert_non_null(a);
    for (int i = 0; i < 20; i++)
        assert_int_equal(aws_ws_prepare(a, "wss://h/v1/data-channel/s-1", on_auth, NULL), 0);
    assert_true(open_descriptors() >= before + 20);
    loop_stats s = run_bare(20);
    assert_prompt(&s, 20);
    for (int i = 0; i < 5; i++) /* cancelled before they run */
        assert_int_equal(aws_ws_prepare(a, "wss://h/v1/data-channel/s-1", on_auth, NULL), 0);
    aws_ctx_free(a);
    run_bare_for(1000, 100); /* lws closes released descriptors on its next turn */
    assert_int_equal(done, 20);
    assert_int_equal(open_descriptors(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_session_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_session_without_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_prepare_signed_and_presigned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timers_are_released, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
