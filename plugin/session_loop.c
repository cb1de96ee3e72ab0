/* The process's one libwebsockets loop and the sessions it carries: the
 * drop-in path runs one; standalone --forward runs several port sessions,
 * each its own SSM session with its own websocket, channel and listener. */
#include "session_priv.h"
#include "ptimer.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "port_listen.h"
#include "signals.h"
#include "stdio_fd.h"

#define DEFAULT_DEAD_PEER_S 60 /* no pong for this long means the peer is dead */

static void on_sig(void *user, int signo)
{
    ssm_loop *L = user;
    for (ssm_session *s = L->sessions; s; s = s->next)
        session_on_signal(s, signo);
}

/* The websocket protocol heads the first vhost: lws reports TLS certificate
 * verification there (transport.h). */
static const struct lws_protocols *main_protocols(void)
{
    static struct lws_protocols list[5];
    list[0] = *ssm_transport_protocol();
    list[1] = *ssm_stdio_protocol();
    list[2] = *ssm_signals_protocol();
    list[3] = *ssm_ptimer_protocol();
    memset(&list[4], 0, sizeof list[4]);
    return list;
}

/* Dead-peer detection is lws's validity check: after half the silence
 * budget without a pong lws sends a ws ping; with no pong by the full
 * budget it hangs up, which is an ordinary drop (ResumeSession, redial). */
static void set_dead_peer_policy(ssm_loop *L)
{
    const char *e = getenv("SSM_PLUGIN_DEAD_PEER_SECONDS");
    long d = e && atol(e) > 0 ? atol(e) : DEFAULT_DEAD_PEER_S;
    if (d < 2)
        d = 2;
    if (d > 65535)
        d = 65535;
    memset(&L->idle_policy, 0, sizeof L->idle_policy);
    L->idle_policy.secs_since_valid_ping = (uint16_t)(d / 2);
    L->idle_policy.secs_since_valid_hangup = (uint16_t)d;
}

static const char *loop_open(ssm_loop *L)
{
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is an EPIPE error, not a kill */
    set_dead_peer_policy(L);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    /* Becomes the default of every vhost, the transports' included. */
    info.retry_and_idle_policy = &L->idle_policy;
    ssm_openssl_init();
    L->ctx = lws_create_context(&info);
    if (!L->ctx)
        return "cannot create the event loop";
    info.vhost_name = "ssm-session";
    info.protocols = main_protocols();
    /* No TLS here: a TLS vhost would parse the whole system CA bundle at start. */
    info.options &= ~(uint64_t)LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.http_proxy_address = ""; /* no client traffic on this vhost */
    L->vh = lws_create_vhost(L->ctx, &info);
    if (!L->vh)
        return "cannot create the event loop";
    if (ssm_stdout_init(L->vh, SSM_STDOUT_RING_DEFAULT) < 0 ||
        ssm_signals_init(L->vh, on_sig, L) < 0)
        return "cannot set up stdin/stdout";
    ssm_signals_watch(SIGTERM);
    ssm_signals_watch(SIGHUP);
    return NULL;
}

static void print_failure(const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "Cannot perform start session: %s\n", why);
    ssm_stdout_write_text(msg, strlen(msg));
}

static void reap(ssm_session *s)
{
    if (s->closed)
        return;
    session_close(s);
    /* A forward that ended before listening must not hold back the others'
     * ready lines. */
    port_ready_session_ended(session_id(s));
}

/* True while a session runs; closes the ones that finished. */
static bool any_running(ssm_loop *L)
{
    bool running = false;
    for (ssm_session *s = L->sessions; s; s = s->next) {
        if (!s->done)
            running = true;
        else
            reap(s);
    }
    return running;
}

int ssm_sessions_run(const ssm_cli_args *const *args, size_t n)
{
    ssm_loop L;
    memset(&L, 0, sizeof L);
    int code = 0;
    const char *fail = loop_open(&L);
    ssm_session **tail = &L.sessions;
    for (size_t i = 0; !fail && i < n; i++) {
        const char *why = NULL;
        ssm_session *s = session_create(&L, args[i], &why);
        if (!s) {
            /* One forward failing leaves the others running. */
            print_failure(why);
            port_ready_session_ended(args[i]->session_id ? args[i]->session_id : "");
            if (n == 1)
                break;
            continue;
        }
        *tail = s;
        tail = &s->next;
    }
    if (fail)
        print_failure(fail);
    while (any_running(&L))
        if (lws_service(L.ctx, 0) < 0)
            break;

    for (ssm_session *s = L.sessions; s; s = s->next) {
        if (!code && s->done)
            code = s->exit_code;
        reap(s);
    }
    ssm_stdout_flush_blocking(2000);
    ssm_stdio_restore();
    ssm_signals_shutdown();
    if (L.ctx)
        lws_context_destroy(L.ctx);
    while (L.sessions) {
        ssm_session *s = L.sessions;
        L.sessions = s->next;
        session_destroy(s);
    }
    return code;
}

int ssm_session_run(const ssm_cli_args *args)
{
    return ssm_sessions_run(&args, 1);
}
