/* The session: one lws loop carrying transport <-> ssm_chan <-> handler.
 * Connection policy (PROTOCOL.md §13), handshake (§8), end texts (§1.4). */
#include "session_priv.h"
#include "ptimer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "signals.h"
#include "ssm_msg.h"
#include "ssm_uuid.h"
#include "ssm_version.h"
#include "stdio_fd.h"

#define RETRIES_INITIAL 5      /* §13.1: up to 6 attempts */
#define RETRY_MAX_DELAY_MS 5000
#define DEFAULT_RECONNECT_S 300 /* how long a dropped session keeps trying */
#define TERMINATE_WAIT_MS 2000

static const char kms_legacy_cli_error[] =
    "Installed version of CLI does not support Session Manager encryption feature. Please "
    "upgrade to the latest version of your CLI (e.g., AWS CLI).";

/* Inside a read batch every message and ack shares the batch's clock
 * reading instead of reading it several times per message: a batch lasts a
 * few hundred microseconds (a few milliseconds at its 1 MiB budget), noise
 * against RTTs and timeouts counted in tens of milliseconds and more. */
static unsigned clock_holds;
static uint64_t clock_held_ms;

static uint64_t clock_read_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t session_now_ms(void)
{
    return clock_holds ? clock_held_ms : clock_read_ms();
}

static void tp_on_batch(void *user, bool begin)
{
    (void)user;
    if (begin && clock_holds++ == 0)
        clock_held_ms = clock_read_ms();
    else if (!begin && clock_holds > 0)
        clock_holds--;
}

static void random_bytes(void *user, uint8_t *buf, size_t n)
{
    (void)user;
    if (RAND_bytes(buf, (int)n) == 1)
        return;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (errno != EINTR)
            abort(); /* no randomness: ids would repeat */
    }
}

static void new_uuid(char out[SSM_UUID_STRLEN + 1])
{
    uint8_t id[16];
    random_bytes(NULL, id, sizeof id);
    ssm_uuid_v4_from_random(id);
    ssm_uuid_format(id, out);
}

/* ---- small accessors ---- */

struct lws_context *session_lws_context(ssm_session *s)
{
    return s->ctx;
}

struct lws_vhost *session_lws_vhost(ssm_session *s)
{
    return s->vh;
}

const char *session_id(const ssm_session *s)
{
    return s->args->session_id;
}

const ssm_hs_request *session_handshake(const ssm_session *s)
{
    static char empty[] = "";
    static const ssm_hs_request legacy = {
        .agent_version = empty,
        .kind = SSM_SESSION_SHELL,
        .port = {empty, empty, empty, empty, empty, empty},
    };
    return s->hs_seen ? &s->hs : &legacy;
}

void session_print(ssm_session *s, const char *fmt, ...)
{
    (void)s;
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        ssm_stdout_write_text(small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    ssm_stdout_write_text(big, (size_t)n);
    free(big);
}

/* ---- channel timer and write scheduling ---- */

static void chan_timer(void *user);

static void give_up(ssm_session *s)
{
    LOGE("oldest unacknowledged message exceeded the resend limit");
    char msg[200];
    ssm_chan_stats st;
    ssm_chan_get_stats(s->chan, &st);
    snprintf(msg, sizeof msg,
             "Cannot perform start session: the agent stopped acknowledging data (%u "
             "messages unacknowledged); terminating the session\n",
             st.unacked_msgs);
    session_end_terminate(s, 0, msg);
}

#define SSM_TIMER_MIN_MS 4

static void schedule_timer(ssm_session *s)
{
    if (s->done || !s->chan_timer)
        return;
    uint64_t now = session_now_ms();
    int64_t to = ssm_chan_next_timeout(s->chan, now);
    if (to < 0)
        return; /* an armed expiry just finds nothing due */
    bool open = ssm_transport_is_open(s->tp);
    if (!open) {
        /* While the socket is down only the give-up check matters. */
        if (to < 1000)
            to = 1000;
    } else if (to == 0) {
        /* Due now: the WRITEABLE callback pulls it and re-arms us (tp_pull);
         * a short timer here would only spin while the socket is congested,
         * so keep just a 100 ms safety tick (give-up check). If nothing can
         * be pulled yet (e.g. a resend budget), look again soon. */
        to = ssm_chan_want_write(s->chan, now) ? 100 : 5;
    } else if (to < SSM_TIMER_MIN_MS) {
        /* Batch: pacing tokens accrue one a millisecond and the bucket holds
         * 16, so waking every 4 ms sends the same messages for a quarter of
         * the wake-ups; no RTO is that short to matter. */
        to = SSM_TIMER_MIN_MS;
    }
    ssm_ptimer_arm_within(s->chan_timer, (uint64_t)to);
}

static void kick(ssm_session *s)
{
    if (s->done)
        return;
    if (ssm_transport_is_open(s->tp) && ssm_chan_want_write(s->chan, session_now_ms()))
        ssm_transport_request_write(s->tp);
    schedule_timer(s);
}

static void chan_timer(void *user)
{
    ssm_session *s = user;
    if (s->done)
        return;
    if (!s->ending && ssm_chan_timed_out(s->chan, session_now_ms())) {
        give_up(s);
        return;
    }
    kick(s);
}

/* ---- idle memory ---- */

#define TRIM_IDLE_MS 2000

/* The whole pages inside [p, p+n): the block's own bytes only, never the
 * allocator's header before p or a neighbour after it. */
static void release_pages(void *ctx, void *p, size_t n)
{
    (void)ctx;
    static uintptr_t page;
    if (!page) {
        long ps = sysconf(_SC_PAGESIZE);
        page = ps > 0 ? (uintptr_t)ps : 4096u;
    }
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(page - 1);
    if (e > a)
        madvise((void *)a, e - a, MADV_DONTNEED);
}

/* After a burst the send ring and reorder pool keep the pages it touched
 * (up to the 2 MiB window and 4 MiB pool), the transport its 64 KiB
 * buffers; an idle session gives them back, which matters with several
 * forwards in one process. */
static void trim_timer(lws_sorted_usec_list_t *sul)
{
    ssm_session *s = lws_container_of(sul, ssm_session, sul_trim);
    s->trim_armed = false;
    if (s->done)
        return;
    uint64_t idle = session_now_ms() - s->last_traffic_ms;
    if (idle < TRIM_IDLE_MS) {
        s->trim_armed = true;
        lws_sul_schedule(s->ctx, 0, &s->sul_trim, trim_timer,
                         (lws_usec_t)(TRIM_IDLE_MS - idle) * 1000);
        return;
    }
    ssm_chan_trim(s->chan, release_pages, NULL);
    ssm_transport_trim(s->tp, release_pages, NULL);
}

static void note_traffic(ssm_session *s, uint64_t now)
{
    s->last_traffic_ms = now;
    if (!s->trim_armed && !s->done) {
        s->trim_armed = true;
        lws_sul_schedule(s->ctx, 0, &s->sul_trim, trim_timer, (lws_usec_t)TRIM_IDLE_MS * 1000);
    }
}

/* ---- ending ---- */

static void stop_handler(ssm_session *s)
{
    if (s->handler_started && s->handler && s->handler->stop) {
        s->handler_started = false;
        s->handler->stop(s->hstate);
    }
    s->handler_started = false;
}

void session_end(ssm_session *s, int exit_code, const char *message)
{
    if (s->done)
        return;
    s->ending = true;
    /* message may live in the handler's state, which its stop frees. */
    char *copy = message && *message ? strdup(message) : NULL;
    stop_handler(s);
    if (copy) {
        ssm_stdout_write_text(copy, strlen(copy));
        free(copy);
    }
    s->exit_code = exit_code;
    s->done = true;
    ssm_ptimer_cancel(s->chan_timer);
    lws_sul_cancel(&s->sul_retry);
    lws_sul_cancel(&s->sul_end);
    lws_sul_cancel(&s->sul_budget);
    lws_sul_cancel(&s->sul_trim);
    lws_cancel_service(s->ctx);
}

static void terminate_done(ssm_session *s)
{
    char *m = s->end_message;
    s->end_message = NULL;
    session_end(s, s->exit_code, m);
    free(m);
}

static void terminate_timeout(lws_sorted_usec_list_t *sul)
{
    ssm_session *s = lws_container_of(sul, ssm_session, sul_end);
    LOGW("TerminateSession did not answer in time");
    terminate_done(s);
}

void session_terminate_api(ssm_session *s)
{
    sess_aws_terminate(s, NULL);
}

void session_end_terminate(ssm_session *s, int exit_code, const char *message)
{
    if (s->ending)
        return;
    s->ending = true;
    s->terminating = true;
    s->exit_code = exit_code;
    s->end_message = message ? strdup(message) : NULL;
    stop_handler(s); /* restore the terminal right away */
    lws_sul_schedule(s->ctx, 0, &s->sul_end, terminate_timeout,
                     (lws_usec_t)TERMINATE_WAIT_MS * 1000);
    sess_aws_terminate(s, terminate_done);
}

/* ---- handler start and selection ---- */

static void start_handler(ssm_session *s, const ssm_handler_ops *ops)
{
    s->handler = ops;
    s->type_known = true;
    LOGI("session type known; starting the %s handler", ops->name);
    if (ops->on_signal) {
        ssm_signals_watch(SIGINT);
        ssm_signals_watch(SIGQUIT);
        ssm_signals_watch(SIGTSTP);
        ssm_signals_watch(SIGWINCH);
    }
    s->hstate = NULL;
    if (ops->start(s, &s->hstate) < 0) {
        if (!s->done)
            session_end(s, 0, "Cannot perform start session: cannot start the session handler\n");
        return;
    }
    s->handler_started = !s->done;
}

static const ssm_handler_ops *port_handler(const ssm_session *s)
{
    const ssm_port_props *pp = &s->hs.port;
    const char *type = pp->type ? pp->type : "";
    if (strcmp(type, "LocalPortForwarding") != 0)
        return &ssm_port_stdio_handler;
    if (ssm_version_gt_strict(s->hs.agent_version ? s->hs.agent_version : "",
                              SSM_AGENT_GATE_SMUX))
        return &ssm_port_mux_handler;
    return &ssm_port_basic_handler;
}

/* ---- handshake (§8) ---- */

/* Builds and queues the HandshakeResponse from the stored request and the
 * KMS outcome (§8.3). */
static void send_handshake_response(ssm_session *s)
{
    ssm_hs_result res[SSM_HS_MAX_ACTIONS];
    char errs[SSM_HS_MAX_ACTIONS][160];
    size_t na = s->hs.n_actions < SSM_HS_MAX_ACTIONS ? s->hs.n_actions : SSM_HS_MAX_ACTIONS;
    for (size_t i = 0; i < na; i++) {
        const ssm_hs_action *a = &s->hs.actions[i];
        memset(&res[i], 0, sizeof res[i]);
        res[i].type = a->type ? a->type : "";
        res[i].error = "";
        if (a->is_session_type) {
            if (s->hs.kind != SSM_SESSION_UNKNOWN) {
                res[i].status = SSM_ACTION_SUCCESS;
            } else {
                snprintf(errs[i], sizeof errs[i], "Unknown session type %s",
                         s->hs.session_type ? s->hs.session_type : "");
                res[i].status = SSM_ACTION_FAILED;
                res[i].error = errs[i];
            }
        } else if (a->is_kms) {
            if (s->args->legacy_cli) {
                res[i].status = SSM_ACTION_FAILED;
                res[i].error = kms_legacy_cli_error;
            } else if (s->kms_status == SSM_ACTION_SUCCESS) {
                res[i].status = SSM_ACTION_SUCCESS;
                res[i].kms_ciphertext_b64 = s->kms_cipher_b64;
                res[i].challenge_ack = s->hs.kms_challenge && *s->hs.kms_challenge;
            } else {
                res[i].status = SSM_ACTION_FAILED;
                res[i].error = s->kms_error;
            }
            if (res[i].status != SSM_ACTION_SUCCESS)
                LOGW("refusing KMSEncryption: %s", res[i].error);
        } else {
            res[i].status = SSM_ACTION_UNSUPPORTED;
        }
    }
    char *json = ssm_hs_response_build(SSM_PLUGIN_VERSION, res, na);
    if (!json) {
        session_end(s, 0, "Cannot perform start session: cannot build the HandshakeResponse\n");
        return;
    }
    int rc = ssm_chan_send(s->chan, SSM_PT_HANDSHAKE_RESPONSE, (const uint8_t *)json,
                           strlen(json), session_now_ms());
    free(json);
    if (rc < 0)
        LOGE("cannot queue the HandshakeResponse (%d)", rc);
    kick(s);
}

static void kms_key_ready(ssm_session *s, const char *why, const uint8_t *key, size_t n,
                          const char *ciphertext_b64)
{
    s->kms_wait = false;
    if (s->ending)
        return;
    if (why) {
        snprintf(s->kms_error, sizeof s->kms_error,
                 "Error calling KMS GenerateDataKey API: %s", why);
        s->kms_status = SSM_ACTION_FAILED;
    } else if (!ciphertext_b64 || !(s->kms_cipher_b64 = strdup(ciphertext_b64)) ||
               ssm_kms_init(&s->kms, key, n, SSM_KMS_CLIENT, random_bytes, s) != SSM_KMS_OK) {
        snprintf(s->kms_error, sizeof s->kms_error, "invalid data key from KMS");
        s->kms_status = SSM_ACTION_FAILED;
    } else {
        /* On as soon as the action succeeded, before the response (§9.4). */
        s->kms_on = true;
        s->kms_status = SSM_ACTION_SUCCESS;
        LOGI("KMS session encryption on");
    }
    send_handshake_response(s);
}

static void on_handshake_request(ssm_session *s, const uint8_t *p, size_t n)
{
    if (s->kms_wait) {
        LOGW("ignoring a repeated HandshakeRequest while KMS is being called");
        return;
    }
    if (s->hs_seen) {
        ssm_hs_request_free(&s->hs);
        s->hs_seen = false;
    }
    memset(&s->hs, 0, sizeof s->hs);
    if (ssm_hs_request_parse(p, n, &s->hs) < 0) {
        LOGW("ignoring a HandshakeRequest that is not a JSON object");
        ssm_hs_request_free(&s->hs);
        memset(&s->hs, 0, sizeof s->hs);
        return;
    }
    s->hs_seen = true;
    LOGI("HandshakeRequest from agent %s", s->hs.agent_version ? s->hs.agent_version : "?");
    bool wants_kms = false;
    for (size_t i = 0; i < s->hs.n_actions && i < SSM_HS_MAX_ACTIONS; i++)
        wants_kms |= s->hs.actions[i].is_kms;
    if (wants_kms && !s->args->legacy_cli && !s->kms_on) {
        s->kms_wait = true;
        sess_aws_kms(s, s->hs.kms_key_id ? s->hs.kms_key_id : "", s->hs.kms_challenge,
                     kms_key_ready);
        return; /* the response goes out when KMS answered */
    }
    send_handshake_response(s);
}

/* EncChallengeRequest (§9.4): open with our decrypt key, seal with our
 * encrypt key, send it back. */
static void on_challenge(ssm_session *s, const uint8_t *p, size_t n)
{
    if (!s->kms_on) {
        LOGW("ignoring EncChallengeRequest: encryption is not on");
        return;
    }
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    if (ssm_challenge_parse(p, n, &ct, &ct_len) < 0 || !ct) {
        LOGW("malformed EncChallengeRequest");
        free(ct);
        return;
    }
    uint8_t *out = malloc(ct_len ? ct_len : 1);
    size_t out_len = 0;
    char *json = NULL;
    if (out && ssm_kms_challenge_reencrypt(&s->kms, ct, ct_len, out, ct_len, &out_len) ==
                   SSM_KMS_OK)
        json = ssm_challenge_build(out, out_len);
    else
        LOGE("cannot answer the encryption challenge (wrong data key?)");
    if (json) {
        ssm_chan_send(s->chan, SSM_PT_ENC_CHALLENGE_RESPONSE, (const uint8_t *)json,
                      strlen(json), session_now_ms());
        free(json);
    }
    if (out)
        OPENSSL_cleanse(out, ct_len);
    free(out);
    free(ct);
}

static void on_handshake_complete(ssm_session *s, const uint8_t *p, size_t n)
{
    char *msg = NULL;
    if (ssm_hs_complete_parse(p, n, &msg) < 0)
        msg = NULL;
    if (!s->hs_seen || s->hs.kind == SSM_SESSION_UNKNOWN) {
        free(msg);
        session_end(s, 0, "Cannot perform start session: unable to determine SessionType\n");
        return;
    }
    if (msg && *msg)
        session_print(s, "%s\n", msg);
    free(msg);
    const ssm_handler_ops *ops =
        s->hs.kind == SSM_SESSION_SHELL ? &ssm_shell_handler : port_handler(s);
    start_handler(s, ops);
}

/* ---- channel callbacks ---- */

static int on_payload(void *user, uint32_t pt, const uint8_t *p, size_t n)
{
    ssm_session *s = user;
    if (s->ending)
        return SSM_DELIVER_OK; /* nobody left to show it to */
    if (s->handler_started) {
        if (pt == SSM_PT_HANDSHAKE_REQUEST || pt == SSM_PT_HANDSHAKE_COMPLETE ||
            pt == SSM_PT_ENC_CHALLENGE_REQUEST)
            return SSM_DELIVER_OK; /* late handshake traffic: nothing to do */
        if (s->kms_on &&
            (pt == SSM_PT_OUTPUT || pt == SSM_PT_STDERR || pt == SSM_PT_EXIT_CODE)) {
            size_t plain = 0;
            if (ssm_kms_open(&s->kms, p, n, s->kms_buf, s->kms_buf_cap, &plain) != SSM_KMS_OK) {
                /* Official behaviour: unprocessed and unacknowledged. */
                LOGE("cannot decrypt a payload of type %u (%zu bytes)", pt, n);
                return SSM_DELIVER_NOT_READY;
            }
            return s->handler->on_payload(s->hstate, pt, s->kms_buf, plain);
        }
        return s->handler->on_payload(s->hstate, pt, p, n);
    }
    switch (pt) {
    case SSM_PT_HANDSHAKE_REQUEST:
        on_handshake_request(s, p, n);
        break;
    case SSM_PT_HANDSHAKE_COMPLETE:
        on_handshake_complete(s, p, n);
        break;
    case SSM_PT_ENC_CHALLENGE_REQUEST:
        on_challenge(s, p, n);
        break;
    case SSM_PT_OUTPUT:
        if (!s->hs_seen && !s->type_known) {
            /* Legacy path (§8.5): output before any handshake = shell. */
            start_handler(s, &ssm_shell_handler);
            if (s->handler_started)
                return s->handler->on_payload(s->hstate, pt, p, n);
        }
        break;
    default:
        LOGD("ignoring payload type %u before the session type is known", pt);
        break;
    }
    kick(s);
    return SSM_DELIVER_OK;
}

static void on_closed(void *user, const char *output)
{
    ssm_session *s = user;
    /* Output is the agent's reason and can be long: never cut it. */
    char *buf = NULL;
    int n = (output && *output)
                ? asprintf(&buf, "\n\nSessionId: %s : %s\n\n", session_id(s), output)
                : asprintf(&buf, "\n\nExiting session with sessionId: %s.\n\n", session_id(s));
    if (n < 0)
        buf = NULL;
    LOGI("channel_closed received");
    if (s->terminating && s->end_message) {
        /* Our TerminateSession was answered by channel_closed: say why first. */
        ssm_stdout_write_text(s->end_message, strlen(s->end_message));
        free(s->end_message);
        s->end_message = NULL;
    }
    session_end(s, s->terminating ? s->exit_code : 0,
                buf ? buf : "\n\nExiting session.\n\n");
    free(buf);
}

static void on_send_space(void *user)
{
    ssm_session *s = user;
    if (s->handler_started && s->handler->on_send_space)
        s->handler->on_send_space(s->hstate);
}

static void chan_log(void *user, int level, const char *msg)
{
    (void)user;
    ssm_log(level, "chan: %s", msg);
}

/* ---- what handlers call ---- */

int session_send(ssm_session *s, uint32_t payload_type, const uint8_t *p, size_t n)
{
    if (s->ending)
        return SSM_CHAN_EINVAL;
    if (!s->type_known && payload_type != SSM_PT_HANDSHAKE_RESPONSE &&
        payload_type != SSM_PT_ENC_CHALLENGE_RESPONSE) {
        LOGW("refusing to send payload type %u before the session type is known", payload_type);
        return SSM_CHAN_EINVAL;
    }
    if (s->kms_on && payload_type == SSM_PT_OUTPUT) {
        size_t sealed = 0;
        if (n + SSM_KMS_OVERHEAD > s->kms_buf_cap)
            return SSM_CHAN_E2BIG;
        if (ssm_kms_seal(&s->kms, p, n, s->kms_buf, s->kms_buf_cap, &sealed) != SSM_KMS_OK)
            return SSM_CHAN_EINVAL;
        p = s->kms_buf;
        n = sealed;
    }
    uint64_t now = session_now_ms();
    int rc = ssm_chan_send(s->chan, payload_type, p, n, now);
    note_traffic(s, now);
    kick(s);
    return rc;
}

/* session_notify_when_sent(): the backlog empties as frames are pulled or,
 * for replays after a reconnect, as acks arrive. */
static void check_backlog_sent(ssm_session *s)
{
    if (s->notify_sent && ssm_chan_unsent(s->chan) == 0) {
        s->notify_sent = false;
        on_send_space(s);
    }
}

size_t session_send_backlog(const ssm_session *s)
{
    return ssm_chan_unsent(s->chan);
}

void session_notify_when_sent(ssm_session *s)
{
    s->notify_sent = true;
}

size_t session_send_space(const ssm_session *s)
{
    if (s->ending)
        return 0;
    size_t space = ssm_chan_send_space(s->chan);
    if (s->kms_on)
        space = space > SSM_KMS_OVERHEAD ? space - SSM_KMS_OVERHEAD : 0;
    return space;
}

bool session_connected(const ssm_session *s)
{
    return ssm_transport_is_open(s->tp);
}

uint32_t session_unacked(const ssm_session *s)
{
    ssm_chan_stats st;
    ssm_chan_get_stats(s->chan, &st);
    return st.unacked_msgs;
}

bool session_send_idle(const ssm_session *s)
{
    ssm_chan_stats st;
    ssm_chan_get_stats(s->chan, &st);
    return st.unacked_msgs == 0;
}

void session_resume_delivery(ssm_session *s)
{
    if (s->done)
        return;
    ssm_chan_resume_delivery(s->chan, session_now_ms());
    kick(s);
}

/* ---- connection management (§13) ---- */

static void start_connect(ssm_session *s);

static unsigned retry_delay_ms(ssm_session *s)
{
    /* d, 2d, 4d...; past the 5 s cap start again from d (§13.1). */
    uint64_t d = s->retry_base_ms;
    for (unsigned i = 1; i < s->attempt; i++) {
        d *= 2;
        if (d > RETRY_MAX_DELAY_MS)
            d = s->retry_base_ms;
    }
    return (unsigned)d;
}

static void on_resumed(ssm_session *s, int status, const char *token, const char *url,
                       const char *why);

static void retry_timer(lws_sorted_usec_list_t *sul)
{
    ssm_session *s = lws_container_of(sul, ssm_session, sul_retry);
    if (s->ending)
        return;
    if (!s->ever_open)
        start_connect(s);
    else
        sess_aws_resume(s, on_resumed);
}

static void lost_for_good(ssm_session *s, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg,
             "Cannot perform start session: lost the connection to the service and could not "
             "reconnect within %llu s: %s\n",
             (unsigned long long)(s->reconnect_budget_ms / 1000), why);
    session_end(s, 0, msg);
}

/* The budget runs out even while a ResumeSession or a dial hangs (a
 * frozen peer accepts TCP and never answers). */
static void budget_timer(lws_sorted_usec_list_t *sul)
{
    ssm_session *s = lws_container_of(sul, ssm_session, sul_budget);
    if (s->ending || ssm_transport_is_open(s->tp))
        return;
    LOGW("reconnect budget exhausted");
    lost_for_good(s, s->last_why[0] ? s->last_why : "no answer from the service");
}

/* host[:port] of a URL, for messages (never the path or query: a presigned
 * URL carries a signature there). */
static const char *url_host(const char *url, char *out, size_t cap)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/?#");
    snprintf(out, cap, "%.*s", (int)(n < 200 ? n : 200), h);
    return out;
}

static void connection_failed(ssm_session *s, const char *why)
{
    s->connecting = false;
    if (s->ending)
        return;
    snprintf(s->last_why, sizeof s->last_why, "%s", why);
    s->attempt++;
    if (!s->ever_open) {
        if (s->attempt > RETRIES_INITIAL) {
            char msg[512], host[256];
            snprintf(msg, sizeof msg, "Cannot perform start session: cannot connect to %s: %s\n",
                     url_host(s->url, host, sizeof host), why);
            session_end(s, 0, msg);
            return;
        }
    } else if (session_now_ms() - s->down_since >= s->reconnect_budget_ms) {
        lost_for_good(s, why);
        return;
    }
    unsigned d = retry_delay_ms(s);
    LOGW("connection attempt %u failed (%s); retrying in %u ms", s->attempt, why, d);
    lws_sul_schedule(s->ctx, 0, &s->sul_retry, retry_timer, (lws_usec_t)d * 1000);
}

static void on_resumed(ssm_session *s, int status, const char *token, const char *url,
                       const char *why)
{
    if (s->ending)
        return;
    if (status < 0) {
        /* One retry slot (PROTOCOL-NEWEST §3.3); the next attempt calls
         * ResumeSession again. Never dial with the old token: the service
         * only accepts it for the first connection. */
        char buf[300];
        snprintf(buf, sizeof buf, "ResumeSession failed: %s", why ? why : "?");
        connection_failed(s, buf);
        return;
    }
    if (!token || !*token) {
        char msg[256];
        snprintf(msg, sizeof msg, "Session: %s timed out.\n", session_id(s));
        session_end(s, 0, msg);
        return;
    }
    if (token != s->token) {
        char *t = strdup(token);
        if (t) {
            if (s->token)
                OPENSSL_cleanse(s->token, strlen(s->token));
            free(s->token);
            s->token = t;
        }
    }
    if (url && *url && url != s->url) {
        char *u = strdup(url);
        if (u) {
            free(s->url);
            s->url = u;
        }
    }
    start_connect(s);
}

static char *open_data_channel_json(ssm_session *s)
{
    char request_id[SSM_UUID_STRLEN + 1];
    new_uuid(request_id);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "MessageSchemaVersion", "1.0");
    cJSON_AddStringToObject(o, "RequestId", request_id);
    cJSON_AddStringToObject(o, "TokenValue", s->token);
    cJSON_AddStringToObject(o, "ClientId", s->client_id);
    cJSON_AddStringToObject(o, "ClientVersion", SSM_PLUGIN_VERSION);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

static void headers_ready(ssm_session *s, const char *headers)
{
    if (s->ending)
        return;
    char *odc = open_data_channel_json(s);
    if (!odc) {
        connection_failed(s, "out of memory");
        return;
    }
    const char *err = NULL;
    int rc = ssm_transport_connect(s->tp, s->url, odc, headers, &err);
    OPENSSL_cleanse(odc, strlen(odc)); /* it holds the token */
    free(odc);
    if (rc < 0) {
        /* Never re-enter: report through the retry timer. */
        connection_failed(s, err ? err : "cannot connect");
        return;
    }
    LOGI("connecting (attempt %u)", s->attempt + 1);
}

static void start_connect(ssm_session *s)
{
    if (s->connecting || s->ending)
        return;
    s->connecting = true;
    sess_aws_upgrade_headers(s, s->url, headers_ready);
}

/* ---- transport callbacks ---- */

static void tp_on_open(void *user)
{
    ssm_session *s = user;
    s->connecting = false;
    s->ever_open = true;
    s->attempt = 0;
    lws_sul_cancel(&s->sul_budget);
    ssm_chan_transport_up(s->chan, session_now_ms());
    kick(s);
}

static void tp_on_message(void *user, const uint8_t *p, size_t n)
{
    ssm_session *s = user;
    if (s->done)
        return;
    uint64_t now = session_now_ms();
    int rc = ssm_chan_receive(s->chan, p, n, now);
    note_traffic(s, now);
    if (rc == SSM_CHAN_EINVAL)
        LOGD("dropped a malformed frame (%zu bytes)", n);
    check_backlog_sent(s);
    kick(s);
}

static size_t tp_pull(void *user, uint8_t *buf, size_t cap)
{
    ssm_session *s = user;
    size_t n = ssm_chan_pull(s->chan, session_now_ms(), buf, cap);
    schedule_timer(s);
    check_backlog_sent(s);
    return n;
}

static bool tp_want_write(void *user)
{
    ssm_session *s = user;
    return !s->done && ssm_chan_want_write(s->chan, session_now_ms());
}

static void tp_on_down(void *user, const char *why, bool was_open)
{
    ssm_session *s = user;
    if (s->ending)
        return;
    if (was_open) {
        LOGW("data channel connection lost: %s", why);
        ssm_chan_transport_down(s->chan);
        s->connecting = false;
        s->down_since = session_now_ms();
        s->attempt = 0;
        s->last_why[0] = '\0';
        lws_sul_schedule(s->ctx, 0, &s->sul_budget, budget_timer,
                         (lws_usec_t)s->reconnect_budget_ms * 1000);
        /* First reconnect (ResumeSession, then dial) after the base delay. */
        lws_sul_schedule(s->ctx, 0, &s->sul_retry, retry_timer,
                         (lws_usec_t)s->retry_base_ms * 1000);
        return;
    }
    connection_failed(s, why);
}

static const ssm_transport_ops tp_ops = {
    .on_open = tp_on_open,
    .on_message = tp_on_message,
    .pull = tp_pull,
    .want_write = tp_want_write,
    .on_down = tp_on_down,
    .on_batch = tp_on_batch,
};

/* ---- what the loop calls (session_loop.c) ---- */

void session_on_signal(ssm_session *s, int signo)
{
    if (s->done)
        return;
    if (signo == SIGTERM || signo == SIGHUP) {
        LOGI("signal %d: ending the session", signo);
        session_end_terminate(s, 0, NULL);
        return;
    }
    if (s->handler_started && s->handler->on_signal)
        s->handler->on_signal(s->hstate, signo);
}

#define SSM_DEFAULT_PACE_MSGS 1000u

static int make_channel(ssm_session *s)
{
    ssm_chan_config cc;
    ssm_chan_config_default(&cc);
    /* 1024 messages (~1.2 MiB of frames) in flight fill a 50 ms RTT path at
     * ~20 MiB/s; the agent keeps up to 100000 early messages, and the
     * channel's resend burst cap keeps a loss from turning into a storm. */
    cc.send_window_msgs = 1024;
    cc.send_window_bytes = 2u * 1024 * 1024;
    /* The agent resends only its oldest unacked message, so every early
     * message we cannot keep costs a full RTO later: keep a window's worth
     * (pages of the slot pool are only touched when used). */
    cc.reorder_slots = 1024;
    const char *gu = getenv("SSM_PLUGIN_GIVE_UP_SECONDS");
    if (gu && atoi(gu) > 0)
        cc.give_up_ms = (uint64_t)atoi(gu) * 1000;
    const char *wm = getenv("SSM_PLUGIN_SEND_WINDOW_MSGS");
    if (wm && atoi(wm) > 0 && atoi(wm) <= 65536) {
        cc.send_window_msgs = (uint32_t)atoi(wm);
        /* A bigger window holds that many full frames (the ring's pages are
         * only touched as it fills). */
        size_t bytes = (size_t)cc.send_window_msgs * ssm_msg_encoded_size(cc.max_payload);
        if (bytes > cc.send_window_bytes)
            cc.send_window_bytes = bytes;
    }
    /* The service is reported to drop connections above ~1000 messages a
     * second, which is also the official plugin's ceiling (a 1 ms sleep per
     * message). A token bucket keeps us at that rate without sleeping;
     * SSM_PLUGIN_PACE_MSGS=0 turns pacing off. */
    cc.pace_msgs_per_sec = SSM_DEFAULT_PACE_MSGS;
    const char *pm = getenv("SSM_PLUGIN_PACE_MSGS");
    if (pm && *pm && atoi(pm) >= 0)
        cc.pace_msgs_per_sec = (uint32_t)atoi(pm);
    static const ssm_chan_callbacks ccb = {
        .on_payload = on_payload,
        .on_closed = on_closed,
        .on_send_space = on_send_space,
        .random = random_bytes,
        .log = chan_log,
    };
    s->chan = ssm_chan_new(&cc, &ccb, s);
    if (!s->chan)
        return -1;
    s->kms_buf_cap = ssm_chan_max_frame(s->chan);
    s->kms_buf = malloc(s->kms_buf_cap);
    return s->kms_buf ? 0 : -1;
}

ssm_session *session_create(ssm_loop *L, const ssm_cli_args *args, const char **fail)
{
    ssm_session *s = calloc(1, sizeof *s);
    if (!s) {
        *fail = "out of memory";
        return NULL;
    }
    s->loop = L;
    s->ctx = L->ctx;
    s->vh = L->vh;
    s->args = args;
    s->token = strdup(args->token ? args->token : "");
    s->url = strdup(args->stream_url ? args->stream_url : "");
    new_uuid(s->client_id);
    uint8_t r;
    random_bytes(NULL, &r, 1);
    s->retry_base_ms = 100u + (unsigned)(r % 100u);
    const char *rb = getenv("SSM_PLUGIN_RECONNECT_SECONDS");
    s->reconnect_budget_ms = (uint64_t)(rb && atoi(rb) > 0 ? atoi(rb) : DEFAULT_RECONNECT_S) * 1000;
    if (!s->token || !s->url) {
        *fail = "out of memory";
        goto bad;
    }
    /* The channel first: the transport sizes its buffer from it. */
    if (make_channel(s) < 0) {
        *fail = "cannot allocate the data channel";
        goto bad;
    }
    ssm_transport_config tc;
    ssm_transport_config_from_env(&tc);
    tc.max_frame = ssm_chan_max_frame(s->chan);
    s->tp = ssm_transport_new(s->ctx, &tc, &tp_ops, s, fail);
    if (!s->tp)
        goto bad;
    s->chan_timer = ssm_ptimer_new(s->vh, chan_timer, s);
    if (!s->chan_timer) {
        *fail = "cannot create a timer";
        goto bad;
    }
    if (sess_aws_init(s) < 0) {
        *fail = "cannot set up AWS API access";
        goto bad;
    }
    start_connect(s);
    return s;
bad:
    session_destroy(s);
    return NULL;
}


static void log_stats(ssm_session *s)
{
    if (!s->chan || !ssm_log_enabled(SSM_LOG_INFO))
        return;
    ssm_chan_stats st;
    ssm_chan_get_stats(s->chan, &st);
    LOGI("channel stats: sent %llu msgs (%llu retransmits), acks in %llu out %llu; received "
         "%llu (dup %llu early %llu dropped %llu invalid %llu); unacked %u msgs/%zu bytes; "
         "buffered %u; next_seq %lld expected %lld; rto %.0f ms; paused %d",
         (unsigned long long)st.sent_msgs, (unsigned long long)st.retransmits,
         (unsigned long long)st.acks_received, (unsigned long long)st.acks_sent,
         (unsigned long long)st.recv_msgs, (unsigned long long)st.recv_dup,
         (unsigned long long)st.recv_early, (unsigned long long)st.recv_dropped,
         (unsigned long long)st.recv_invalid, st.unacked_msgs, st.unacked_bytes,
         st.buffered_msgs, (long long)st.next_seq, (long long)st.expected_seq, st.rto_ms,
         (int)st.paused);
}

void session_close(ssm_session *s)
{
    if (s->closed)
        return;
    s->closed = true;
    lws_sul_cancel(&s->sul_trim);
    lws_sul_cancel(&s->sul_retry);
    lws_sul_cancel(&s->sul_end);
    lws_sul_cancel(&s->sul_budget);
    log_stats(s);
    stop_handler(s);
    sess_aws_free(s);
    if (s->tp)
        ssm_transport_close(s->tp);
    ssm_ptimer_free(s->chan_timer);
    s->chan_timer = NULL;
}
void session_destroy(ssm_session *s)
{
    if (!s)
        return;
    session_close(s);
    ssm_transport_free(s->tp);
    ssm_chan_free(s->chan);
    if (s->hs_seen)
        ssm_hs_request_free(&s->hs);
    if (s->token) {
        OPENSSL_cleanse(s->token, strlen(s->token));
        free(s->token);
    }
    free(s->url);
    free(s->end_message);
    ssm_kms_clear(&s->kms);
    if (s->kms_buf)
        OPENSSL_cleanse(s->kms_buf, s->kms_buf_cap);
    free(s->kms_buf);
    free(s->kms_cipher_b64);
    free(s);
}
