/* Standalone mode's run: StartSession on a short-lived event loop, then the
 * very same session as the drop-in path (ssm_session_run). */
#include "standalone.h"

#include "aws_api.h"
#include "cli.h"
#include "log.h"
#include "session.h"
#include "standalone_exit.h"
#include "stdio_fd.h"
#include "terminal.h"

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

typedef struct start_call {
    lws_sorted_usec_list_t tick; /* first: the sul callback gets its address */
    struct lws_context *lws;
    bool done;
    int exit_code; /* 0 on success */
    char *session_id, *token, *stream_url;
    char error[600];
} start_call;

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void on_started(void *user, const aws_api_error *err, const char *sid, const char *token,
                       const char *url)
{
    start_call *c = user;
    c->done = true;
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

/* lws 4.1 can sleep its full 30 s default poll wait after a zero-delay timer
 * is scheduled from inside another timer's callback (aws_api does that when
 * credentials resolve without network): a short tick keeps the loop turning
 * for the few hundred milliseconds this call lasts. */
static void tick(lws_sorted_usec_list_t *sul)
{
    start_call *c = lws_container_of(sul, start_call, tick);
    if (!c->done)
        lws_sul_schedule(c->lws, 0, &c->tick, tick, 20 * LWS_US_PER_MS);
}

/* Runs one StartSession call to completion on its own lws context. */
static void call_start_session(const char *region, const ssm_sa_opts *o, const char *body,
                               start_call *c)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.gid = -1;
    info.uid = -1;
    struct lws_context *lws = lws_create_context(&info);
    aws_ctx_config cfg = {.region = region, .profile = o->profile, .ssm_endpoint = o->endpoint};
    aws_ctx *aws = lws ? aws_ctx_new(lws, &cfg) : NULL;
    c->lws = lws;
    if (lws)
        tick(&c->tick);
    if (!aws || aws_start_session(aws, body, on_started, c) != 0) {
        c->done = true;
        c->exit_code = SSM_SA_EXIT_API;
        snprintf(c->error, sizeof c->error, "cannot start the StartSession request");
    }
    while (!c->done) /* aws_api times the call out itself */
        if (lws_service(lws, 0) < 0)
            break;
    if (!c->done) {
        c->exit_code = SSM_SA_EXIT_API;
        snprintf(c->error, sizeof c->error, "event loop failed during StartSession");
    }
    aws_ctx_free(aws);
    if (lws) {
        lws_sul_cancel(&c->tick);
        lws_context_destroy(lws);
    }
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
    char *body = ssm_sa_request_json(&o, err, sizeof err);
    if (!body)
        return usage_error(err);
    char *region = ssm_sa_region(o.region, o.profile);
    if (!region) {
        free(body);
        fprintf(stderr, "You must specify a region. You can also configure your region by "
                        "running \"aws configure\".\n");
        return SSM_SA_EXIT_CONFIG;
    }
    /* The port handlers read the listen address from the environment, as in
     * drop-in mode. */
    if (o.listen_address)
        setenv("SSM_PLUGIN_LISTEN_ADDRESS", o.listen_address, 1);

    start_call c;
    memset(&c, 0, sizeof c);
    call_start_session(region, &o, body, &c);
    free(body);
    if (c.exit_code != 0) {
        fprintf(stderr, "\n%s\n", c.error);
        wipe_free(c.session_id);
        wipe_free(c.token);
        wipe_free(c.stream_url);
        free(region);
        return c.exit_code;
    }

    ssm_cli_args args;
    int rc = fill_args(&args, &c, region, &o);
    free(region);
    if (rc != 0) {
        ssm_cli_args_free(&args);
        fputs("Cannot perform start session: out of memory\n", out);
        return 1;
    }
    fprintf(out, "\nStarting session with SessionId: %s\n", args.session_id);
    fflush(out); /* everything after this goes through the stdout ring */
    ssm_exit_code_reset();
    rc = ssm_session_run(&args);
    ssm_cli_args_free(&args);
    ssm_term_restore();
    ssm_stdio_restore();
    int remote;
    if (ssm_exit_code_get(&remote))
        rc = remote;
    return rc;
}
