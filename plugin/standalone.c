/* Standalone mode's run: StartSession on a short-lived event loop, then the
 * very same session as the drop-in path (ssm_session_run). */
#include "standalone.h"

#include "aws_api.h"
#include "cli.h"
#include "log.h"
#include "port_listen.h"
#include "session.h"
#include "standalone_exit.h"
#include "stdio_fd.h"
#include "terminal.h"
#include "transport.h"

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

typedef struct start_call {
    bool done;
    int exit_code; /* 0 on success */
    char *session_id, *token, *stream_url;
    char error[600];
} start_call;

/* The StartSession calls of one run (one, or one per --forward) share a
 * short-lived lws context. */
typedef struct start_batch {
    struct lws_context *lws;
    aws_ctx *aws;
    start_call *calls;
    unsigned n, pending;
} start_batch;

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void call_clear(start_call *c)
{
    wipe_free(c->session_id);
    wipe_free(c->token);
    wipe_free(c->stream_url);
    c->session_id = c->token = c->stream_url = NULL;
}

typedef struct call_ref {
    start_batch *b;
    start_call *c;
} call_ref;

static void call_done(start_batch *b, start_call *c)
{
    if (!c->done) {
        c->done = true;
        b->pending--;
    }
}

static void on_started(void *user, const aws_api_error *err, const char *sid, const char *token,
                       const char *url)
{
    call_ref *r = user;
    start_call *c = r->c;
    call_done(r->b, c);
    if (err->status != 0) {
        /* The AWS CLI's wording; text never holds secrets. */
        bool creds = !strcmp(err->type, "CredentialsError");
        c->exit_code = creds ? SSM_SA_EXIT_CONFIG : SSM_SA_EXIT_API;
        if (creds)
            snprintf(c->error, sizeof c->error, "Unable to locate credentials: %s", err->message);
        else
            snprintf(c->error, sizeof c->error,
                     "An error occurred (%s) when calling the StartSession operation: %s",
                     err->type, err->message);
        return;
    }
    if (!sid || !token || !url || !*sid || !*url) {
        c->exit_code = SSM_SA_EXIT_API;
        snprintf(c->error, sizeof c->error,
                 "StartSession response lacks SessionId, TokenValue or StreamUrl");
        return;
    }
    c->session_id = strdup(sid);
    c->token = strdup(token);
    c->stream_url = strdup(url);
    if (!c->session_id || !c->token || !c->stream_url) {
        c->exit_code = SSM_SA_EXIT_API;
        snprintf(c->error, sizeof c->error, "out of memory");
    }
}

static void on_terminated(void *user, const aws_api_error *err)
{
    call_ref *r = user;
    (void)err; /* best effort: the service times the session out anyway */
    call_done(r->b, r->c);
}

/* aws_api delivers every result after poll() returned (its timers are
 * timerfds), so a bare service loop neither stalls nor spins. */
static void run_until_done(start_batch *b)
{
    while (b->pending) /* aws_api times every call out itself */
        if (lws_service(b->lws, 0) < 0)
            break;
}

/* Runs the StartSession calls (bodies[i] for calls[i]) at once. When one
 * fails, the ones that started are terminated again: all or nothing. */
static void call_start_sessions(const char *region, const ssm_sa_opts *o, char **bodies,
                                start_call *calls, unsigned n)
{
    if (n > SSM_SA_MAX_FORWARDS)
        n = SSM_SA_MAX_FORWARDS;
    start_batch b = {.calls = calls, .n = n};
    call_ref refs[SSM_SA_MAX_FORWARDS];
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    ssm_openssl_init();
    b.lws = lws_create_context(&info);
    aws_ctx_config cfg = {.region = region, .profile = o->profile, .ssm_endpoint = o->endpoint};
    b.aws = b.lws ? aws_ctx_new(b.lws, &cfg) : NULL;
    for (unsigned i = 0; i < n; i++) {
        refs[i] = (call_ref){&b, &calls[i]};
        b.pending++;
        if (!b.aws || aws_start_session(b.aws, bodies[i], on_started, &refs[i]) != 0) {
            call_done(&b, &calls[i]);
            calls[i].exit_code = SSM_SA_EXIT_API;
            snprintf(calls[i].error, sizeof calls[i].error,
                     "cannot start the StartSession request");
        }
    }
    if (b.lws)
        run_until_done(&b);
    bool failed = false;
    for (unsigned i = 0; i < n; i++) {
        if (!calls[i].done) {
            calls[i].exit_code = SSM_SA_EXIT_API;
            snprintf(calls[i].error, sizeof calls[i].error,
                     "event loop failed during StartSession");
        }
        failed |= calls[i].exit_code != 0;
    }
    for (unsigned i = 0; failed && b.aws && i < n; i++) {
        if (calls[i].exit_code != 0 || !calls[i].session_id)
            continue;
        calls[i].done = false;
        b.pending++;
        if (aws_terminate_session(b.aws, calls[i].session_id, on_terminated, &refs[i]) != 0)
            call_done(&b, &calls[i]);
    }
    if (b.lws)
        run_until_done(&b);
    aws_ctx_free(b.aws);
    if (b.lws)
        lws_context_destroy(b.lws);
}

static int usage_error(const char *why)
{
    fprintf(stderr, "session-manager-plugin start-session: error: %s\n", why);
    ssm_sa_usage(stderr);
    return SSM_SA_EXIT_USAGE;
}

/* The drop-in path's arguments, as if the AWS CLI had passed them. */
static int fill_args(ssm_cli_args *a, start_call *c, const char *region, const ssm_sa_opts *o)
{
    memset(a, 0, sizeof *a);
    a->session_id = c->session_id;
    a->token = c->token;
    a->stream_url = c->stream_url;
    c->session_id = c->token = c->stream_url = NULL;
    a->region = strdup(region);
    a->operation = strdup("StartSession");
    a->profile = dup_or_empty(o->profile);
    a->endpoint = dup_or_empty(o->endpoint);
    a->target = dup_or_empty(o->target);
    return a->region && a->operation && a->profile && a->endpoint && a->target ? 0 : -1;
}

/* The request bodies: the one session of the options, or one per --forward. */
static int make_bodies(const ssm_sa_opts *o, char **bodies, unsigned n, char *err, size_t cap)
{
    for (unsigned i = 0; i < n; i++) {
        bodies[i] = o->nforward ? ssm_sa_forward_json(o, i, err, cap)
                                : ssm_sa_request_json(o, err, cap);
        if (!bodies[i])
            return -1;
    }
    return 0;
}

/* Runs the started sessions on one loop; returns the exit status. */
static int run_sessions(start_call *calls, unsigned n, const char *region, const ssm_sa_opts *o,
                        FILE *out)
{
    ssm_cli_args args[SSM_SA_MAX_FORWARDS];
    const ssm_cli_args *argp[SSM_SA_MAX_FORWARDS];
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        argp[i] = &args[i];
        if (fill_args(&args[i], &calls[i], region, o) != 0)
            rc = -1;
    }
    if (rc == 0) {
        for (unsigned i = 0; i < n; i++)
            fprintf(out, "\nStarting session with SessionId: %s\n", args[i].session_id);
        fflush(out); /* everything after this goes through the stdout ring */
        ssm_exit_code_reset();
        port_ready_expect(n);
        rc = ssm_sessions_run(argp, n);
    } else {
        fputs("Cannot perform start session: out of memory\n", out);
        rc = 1;
    }
    for (unsigned i = 0; i < n; i++)
        ssm_cli_args_free(&args[i]);
    ssm_term_restore();
    ssm_stdio_restore();
    int remote;
    if (ssm_exit_code_get(&remote))
        rc = remote;
    return rc;
}

int ssm_sa_main(int argc, char **argv, FILE *out)
{
    ssm_sa_opts o;
    char err[300];
    if (ssm_sa_parse(argc, argv, &o, err, sizeof err) != 0)
        return usage_error(err);
    if (o.help) {
        ssm_sa_usage(out);
        return 0;
    }
    unsigned n = o.nforward ? o.nforward : 1;
    char *bodies[SSM_SA_MAX_FORWARDS] = {0};
    if (make_bodies(&o, bodies, n, err, sizeof err) != 0) {
        for (unsigned i = 0; i < n; i++)
            free(bodies[i]);
        return usage_error(err);
    }
    char *region = ssm_sa_region(o.region, o.profile);
    if (!region) {
        for (unsigned i = 0; i < n; i++)
            free(bodies[i]);
        fprintf(stderr, "You must specify a region. You can also configure your region by "
                        "running \"aws configure\".\n");
        return SSM_SA_EXIT_CONFIG;
    }
    /* The port handlers read the listen address from the environment, as in
     * drop-in mode. */
    if (o.listen_address)
        setenv("SSM_PLUGIN_LISTEN_ADDRESS", o.listen_address, 1);

    start_call calls[SSM_SA_MAX_FORWARDS];
    memset(calls, 0, sizeof calls);
    call_start_sessions(region, &o, bodies, calls, n);
    for (unsigned i = 0; i < n; i++)
        free(bodies[i]);
    int rc = 0;
    for (unsigned i = 0; i < n; i++)
        if (calls[i].exit_code != 0) {
            if (n > 1)
                fprintf(stderr, "\n--forward %s: %s\n", o.forward[i], calls[i].error);
            else
                fprintf(stderr, "\n%s\n", calls[i].error);
            if (!rc)
                rc = calls[i].exit_code;
        }
    if (rc == 0)
        rc = run_sessions(calls, n, region, &o, out);
    for (unsigned i = 0; i < n; i++)
        call_clear(&calls[i]);
    free(region);
    return rc;
}
