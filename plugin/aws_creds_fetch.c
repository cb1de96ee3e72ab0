/* Runs a credential plan's network steps (aws_creds.h) asynchronously over
 * aws_http: STS AssumeRole (after fetching its source) and
 * AssumeRoleWithWebIdentity, SSO (with token refresh), ECS, IMDSv2. */
#include "aws_creds.h"
#include "aws_http.h"
#include "aws_sigv4.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#define STS_TIMEOUT_MS 10000u
#define IMDS_TIMEOUT_MS 1000u

/* One plan node being fetched. */
typedef struct cjob {
    aws_creds_fetch *ctx;
    struct cjob *parent;
    aws_creds_plan *plan;
    aws_credentials source; /* ASSUME_ROLE: the source's result */
    int stage;              /* IMDS: 0 token, 1 role name, 2 credentials */
    char *imds_token, *imds_role;
    aws_http_req *req;
    aws_proc *proc;         /* PROCESS, or the CLI export after IMDS failed */
    char first_err[200];    /* IMDS: its error, kept while the CLI export runs */
    struct cjob *child;
} cjob;

struct aws_creds_fetch {
    aws_http *http;
    char *region; /* default STS region */
    aws_creds_fetch_cb cb;
    void *user;
    cjob *root;
    bool in_start, finished;
};

static void cjob_free(cjob *j)
{
    if (!j)
        return;
    cjob_free(j->child);
    aws_http_cancel(j->req);
    aws_proc_free(j->proc);
    aws_credentials_clear(&j->source);
    if (j->imds_token) {
        OPENSSL_cleanse(j->imds_token, strlen(j->imds_token));
        free(j->imds_token);
    }
    free(j->imds_role);
    free(j);
}


static void cjob_run(cjob *j);
static void cjob_done(cjob *j, const aws_credentials *c, const char *err);
static void sso_refresh(cjob *j);

static cjob *cjob_new(aws_creds_fetch *ctx, cjob *parent, aws_creds_plan *plan)
{
    cjob *j = calloc(1, sizeof *j);
    if (j) {
        j->ctx = ctx;
        j->parent = parent;
        j->plan = plan;
    }
    return j;
}

static void sts_response(void *user, const aws_http_response *r)
{
    cjob *j = user;
    j->req = NULL;
    aws_credentials c = {0};
    char err[200] = "";
    if (r->error)
        snprintf(err, sizeof err, "STS: %s", r->error);
    else if (aws_sts_parse_response(r->body, r->body_len, &c, err, sizeof err) == 0)
        c.source = j->plan->step == AWS_STEP_WEB_IDENTITY ? "sts-web-identity" : "sts-assume-role";
    cjob_done(j, c.access_key_id ? &c : NULL, err);
    aws_credentials_clear(&c);
}

static void sts_call(cjob *j, const aws_credentials *signer)
{
    aws_creds_plan *p = j->plan;
    bool web = p->step == AWS_STEP_WEB_IDENTITY;
    char *endpoint = aws_endpoint_for("STS", "sts", p->region ? p->region : j->ctx->region);
    char *body = web ? aws_sts_web_identity_body(p) : aws_sts_assume_role_body(p);
    aws_url u;
    if (!endpoint || !body || aws_url_parse(endpoint, &u) != 0) {
        free(endpoint);
        free(body);
        cjob_done(j, NULL, "STS: bad endpoint or request");
        return;
    }
    const char *ctype = "application/x-www-form-urlencoded; charset=utf-8";
    char *headers = NULL;
    aws_sigv4_output so;
    bool ok = true;
    if (!web) { /* AssumeRole is signed with the source credentials */
        aws_sigv4_header h[] = {{"Content-Type", ctype}};
        aws_sigv4_input in = {
            .method = "POST", .host = u.authority, .path = u.path, .query = u.query,
            .headers = h, .n_headers = 1, .body = body, .body_len = strlen(body),
            .region = p->region ? p->region : j->ctx->region, .service = "sts",
            .access_key_id = signer->access_key_id, .secret_access_key = signer->secret_access_key,
            .session_token = signer->session_token, .now = time(NULL),
        };
        ok = aws_sigv4_sign(&in, &so, NULL, 0, NULL, 0) == 0;
    }
    /* Sized from what goes in: the Authorization value grows with the
     * source's access key id, which a credential source chooses. */
    size_t hl = 128 + strlen(ctype) + (ok && !web ? strlen(so.authorization) + sizeof so.amz_date : 0) +
                (!web && signer && signer->session_token ? strlen(signer->session_token) : 0);
    headers = ok ? malloc(hl) : NULL;
    if (headers) {
        int n = snprintf(headers, hl, "Content-Type: %s\r\n", ctype);
        if (!web)
            n += snprintf(headers + n, hl - (size_t)n, "Authorization: %s\r\nX-Amz-Date: %s\r\n",
                          so.authorization, so.amz_date);
        if (!web && signer->session_token)
            snprintf(headers + n, hl - (size_t)n, "X-Amz-Security-Token: %s\r\n",
                     signer->session_token);
    }
    aws_http_request rq = {.method = "POST", .url = endpoint, .headers = headers, .body = body,
                           .body_len = body ? strlen(body) : 0, .timeout_ms = STS_TIMEOUT_MS};
    j->req = headers ? aws_http_send(j->ctx->http, &rq, sts_response, j) : NULL;
    if (headers) {
        OPENSSL_cleanse(headers, strlen(headers));
        free(headers);
    }
    if (!web)
        OPENSSL_cleanse(&so, sizeof so); /* the signature */
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    free(endpoint);
    aws_url_free(&u);
    if (!j->req)
        cjob_done(j, NULL, "STS: request failed to start");
}

static void source_done(cjob *child, const aws_credentials *c, const char *err)
{
    cjob *j = child->parent;
    j->child = NULL;
    if (!c) {
        char e[256];
        snprintf(e, sizeof e, "%s", err ? err : "source credentials unavailable");
        cjob_free(child);
        cjob_done(j, NULL, e);
        return;
    }
    aws_credentials_copy(&j->source, c);
    cjob_free(child);
    sts_call(j, &j->source);
}

static void simple_json_response(void *user, const aws_http_response *r)
{
    cjob *j = user;
    j->req = NULL;
    aws_credentials c = {0};
    char err[200] = "";
    const char *what = j->plan->step == AWS_STEP_SSO ? "SSO" : "container credentials";
    if (r->error)
        snprintf(err, sizeof err, "%s: %s", what, r->error);
    else if (j->plan->step == AWS_STEP_SSO)
        aws_sso_parse_role_credentials(r->body, r->body_len, &c, err, sizeof err);
    else if (r->status != 200)
        snprintf(err, sizeof err, "%s: HTTP %d", what, r->status);
    else
        aws_creds_parse_container_json(r->body, r->body_len, "ecs", &c, err, sizeof err);
    cjob_done(j, c.access_key_id ? &c : NULL, err);
    aws_credentials_clear(&c);
}

static void imds_step(cjob *j);

static void imds_response(void *user, const aws_http_response *r)
{
    cjob *j = user;
    j->req = NULL;
    if (r->error || r->status != 200) {
        char err[200];
        if (j->stage == 0 && !r->error && r->status != 403) {
            j->stage = 1; /* no token service: IMDSv1 */
            imds_step(j);
            return;
        }
        snprintf(err, sizeof err, "IMDS: %s", r->error ? r->error : "HTTP error");
        if (!r->error)
            snprintf(err, sizeof err, "IMDS: HTTP %d", r->status);
        cjob_done(j, NULL, err);
        return;
    }
    if (j->stage == 0) {
        j->imds_token = strndup(r->body, r->body_len);
    } else if (j->stage == 1) {
        size_t n = strcspn(r->body, "\r\n");
        j->imds_role = n ? strndup(r->body, n) : NULL;
        if (!j->imds_role) {
            cjob_done(j, NULL, "IMDS: no instance role");
            return;
        }
    } else {
        aws_credentials c = {0};
        char err[200] = "";
        aws_creds_parse_container_json(r->body, r->body_len, "imds", &c, err, sizeof err);
        cjob_done(j, c.access_key_id ? &c : NULL, err);
        aws_credentials_clear(&c);
        return;
    }
    j->stage++;
    imds_step(j);
}

static void imds_step(cjob *j)
{
    const char *base = j->plan->imds_endpoint;
    char url[1024], headers[2048] = "";
    aws_http_request rq = {.method = "GET", .url = url, .headers = headers,
                           .timeout_ms = IMDS_TIMEOUT_MS, .max_response = 64 * 1024};
    if (j->stage == 0) {
        rq.method = "PUT";
        snprintf(url, sizeof url, "%s/latest/api/token", base);
        snprintf(headers, sizeof headers, "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n");
    } else {
        if (j->stage == 1)
            snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
        else
            snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", base,
                     j->imds_role);
        if (j->imds_token && strlen(j->imds_token) < 1024)
            snprintf(headers, sizeof headers, "X-aws-ec2-metadata-token: %s\r\n", j->imds_token);
    }
    j->req = aws_http_send(j->ctx->http, &rq, imds_response, j);
    OPENSSL_cleanse(headers, sizeof headers);
    if (!j->req)
        cjob_done(j, NULL, "IMDS: request failed to start");
}

static void sso_refreshed(void *user, const aws_http_response *r)
{
    cjob *j = user;
    j->req = NULL;
    aws_creds_plan *p = j->plan;
    char err[200] = "";
    if (r->error)
        snprintf(err, sizeof err, "SSO token refresh: %s", r->error);
    else if (aws_sso_oidc_apply(r->body, r->body_len, time(NULL), p->sso_refresh, err,
                                sizeof err) == 0)
        p->sso_access_token = strdup(p->sso_refresh->access_token);
    if (!p->sso_access_token) {
        char e[256];
        snprintf(e, sizeof e, "%s; run 'aws sso login'", err[0] ? err : "SSO token refresh failed");
        cjob_done(j, NULL, e);
        return;
    }
    cjob_run(j); /* now with a fresh access token: GetRoleCredentials */
}

/* An expired SSO access token with a live refresh token: SSO-OIDC CreateToken. */
static void sso_refresh(cjob *j)
{
    aws_creds_plan *p = j->plan;
    char *base = aws_endpoint_for("SSO_OIDC", "oidc", p->region);
    char *body = aws_sso_oidc_refresh_body(p->sso_refresh);
    char url[1024];
    snprintf(url, sizeof url, "%s/token", base ? base : "");
    aws_http_request rq = {.method = "POST", .url = url,
                           .headers = "Content-Type: application/json\r\n", .body = body,
                           .body_len = body ? strlen(body) : 0, .timeout_ms = STS_TIMEOUT_MS,
                           .max_response = 64 * 1024};
    j->req = base && body ? aws_http_send(j->ctx->http, &rq, sso_refreshed, j) : NULL;
    if (body) {
        OPENSSL_cleanse(body, strlen(body));
        free(body);
    }
    free(base);
    if (!j->req)
        cjob_done(j, NULL, "SSO token refresh: request failed to start");
}

static void proc_done(void *user, const aws_credentials *c, const char *err)
{
    cjob *j = user;
    j->proc = NULL; /* it frees itself after this callback */
    aws_creds_plan *p = j->plan;
    char e[256];
    if (j->first_err[0]) /* the CLI after IMDS: IMDS's reason is the one to give */
        snprintf(e, sizeof e, "%s", j->first_err);
    else if (p->process_is_cli)
        snprintf(e, sizeof e, "%s", p->error[0] ? p->error : "no credentials");
    else
        snprintf(e, sizeof e, "credential_process: %s", err ? err : "failed");
    cjob_done(j, c, c ? NULL : e);
}

static void proc_run(cjob *j)
{
    aws_creds_plan *p = j->plan;
    const char *source = p->process_is_cli ? "aws configure export-credentials"
                                           : "credential_process";
    j->proc = aws_proc_start(j->ctx->http, p->process_cmd, p->process_timeout_s, source,
                             proc_done, j);
    if (!j->proc)
        cjob_done(j, NULL, "out of memory");
}

static void cjob_run(cjob *j)
{
    aws_creds_plan *p = j->plan;
    switch (p->step) {
    case AWS_STEP_READY:
        cjob_done(j, &p->creds, NULL);
        return;
    case AWS_STEP_ASSUME_ROLE:
        j->child = cjob_new(j->ctx, j, p->source);
        if (!j->child) {
            cjob_done(j, NULL, "out of memory");
            return;
        }
        cjob_run(j->child);
        return;
    case AWS_STEP_WEB_IDENTITY:
        sts_call(j, NULL);
        return;
    case AWS_STEP_SSO: {
        if (p->sso_refresh && !p->sso_access_token) {
            sso_refresh(j);
            return;
        }
        char *base = aws_endpoint_for("SSO", "portal.sso", p->region);
        char url[1024], headers[8192];
        snprintf(url, sizeof url, "%s/federation/credentials?account_id=%s&role_name=%s",
                 base ? base : "", p->sso_account_id, p->sso_role_name);
        snprintf(headers, sizeof headers, "x-amz-sso_bearer_token: %s\r\n", p->sso_access_token);
        aws_http_request rq = {.method = "GET", .url = url, .headers = headers,
                               .timeout_ms = STS_TIMEOUT_MS};
        j->req = base ? aws_http_send(j->ctx->http, &rq, simple_json_response, j) : NULL;
        OPENSSL_cleanse(headers, sizeof headers);
        free(base);
        if (!j->req)
            cjob_done(j, NULL, "SSO: request failed to start");
        return;
    }
    case AWS_STEP_ECS: {
        char headers[8192] = "";
        if (p->authorization)
            snprintf(headers, sizeof headers, "Authorization: %s\r\n", p->authorization);
        aws_http_request rq = {.method = "GET", .url = p->url, .headers = headers,
                               .timeout_ms = 5000, .max_response = 64 * 1024};
        j->req = aws_http_send(j->ctx->http, &rq, simple_json_response, j);
        OPENSSL_cleanse(headers, sizeof headers);
        if (!j->req)
            cjob_done(j, NULL, "container credentials: bad URL");
        return;
    }
    case AWS_STEP_IMDS:
        imds_step(j);
        return;
    case AWS_STEP_PROCESS:
        proc_run(j);
        return;
    default:
        cjob_done(j, NULL, p->error[0] ? p->error : "no credentials");
    }
}

static void cjob_done(cjob *j, const aws_credentials *c, const char *err)
{
    if (j->parent) {
        source_done(j, c, err);
        return;
    }
    aws_creds_fetch *f = j->ctx;
    /* IMDS was a guess (nothing else configured): try the CLI before giving
     * up, asynchronously like every other step. */
    if (!c && j->plan->step == AWS_STEP_IMDS && j->plan->process_cmd && !j->first_err[0]) {
        snprintf(j->first_err, sizeof j->first_err, "%s", err && *err ? err : "IMDS failed");
        j->req = NULL;
        proc_run(j);
        return;
    }
    /* The fetch ends here: the caller gets the result and the job tree goes. */
    j->req = NULL;
    f->finished = true;
    f->cb(f->user, c, c ? NULL : (err && *err ? err : "no credentials"));
    if (!f->in_start) /* else aws_creds_fetch_start() frees it */
        aws_creds_fetch_free(f);
}

aws_creds_fetch *aws_creds_fetch_start(aws_http *http, aws_creds_plan *plan, const char *region,
                                       aws_creds_fetch_cb cb, void *user)
{
    aws_creds_fetch *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->http = http;
    f->region = strdup(region ? region : "");
    f->cb = cb;
    f->user = user;
    f->root = cjob_new(f, NULL, plan);
    if (!f->region || !f->root) {
        aws_creds_fetch_free(f);
        return NULL;
    }
    f->in_start = true;
    cjob_run(f->root);
    f->in_start = false;
    if (f->finished) { /* no network step: the callback already ran */
        aws_creds_fetch_free(f);
        return NULL;
    }
    return f;
}

void aws_creds_fetch_free(aws_creds_fetch *f)
{
    if (!f)
        return;
    cjob_free(f->root);
    free(f->region);
    free(f);
}
