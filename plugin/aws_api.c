/* aws_ctx: credential cache and asynchronous resolution, upgrade signing, and
 * the three JSON-1.1 calls, all on the session's lws loop via aws_http.
 *
 * Every operation (aws_op) is listed in its ctx so aws_ctx_free() can cancel
 * it. Operations continue from their own timer armed for the next loop turn,
 * never from inside another operation's callback, so a user callback may free
 * the ctx. That timer is a timerfd from aws_http, not an lws_sul: a callback
 * run from a sul runs before lws's poll(), which then sleeps on (up to 30 s)
 * although the caller's work is done (see aws_http.c). */
#include "aws_api.h"
#include "aws_creds.h"
#include "aws_http.h"
#include "aws_sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define API_TIMEOUT_MS 15000u
/* An error text carries the service's whole message (a real AccessDenied
 * with two ARNs is ~300 bytes); longer ones are cut here, never mid-call. */
#define API_TEXT_MAX 4096

enum op_kind { OP_WS, OP_RESUME, OP_TERMINATE, OP_KMS, OP_START };

typedef struct aws_op {
    aws_ctx *ctx;
    struct aws_op *prev, *next;
    enum op_kind kind;
    ssm_ptimer *timer; /* continues the op on the next loop turn */
    bool waiting_creds, cred_tried;
    char *url;                     /* OP_WS */
    char *target, *endpoint, *body; /* API calls */
    const char *service;
    aws_http_req *req;
    void *user;
    union {
        aws_ws_auth_cb ws;
        aws_resume_cb resume;
        aws_terminate_cb terminate;
        aws_kms_cb kms;
        aws_start_cb start;
    } cb;
} aws_op;

struct aws_ctx {
    aws_http *http;
    char *region, *profile, *ssm_endpoint;
    bool skip_ws_signing;
    aws_credentials cache;
    aws_creds_plan plan;    /* the resolution in progress */
    aws_creds_fetch *fetch; /* its network part, while running */
    bool resolving;
    char cred_error[256];
    /* Negative cache: after a failed resolution, lookups fail at once until
     * this CLOCK_MONOTONIC ms (0: none). Connect retries must not re-run the
     * chain (IMDS timeouts, the CLI export) each time. */
    uint64_t no_creds_until_ms;
    unsigned retry_ms;
    aws_op *ops;
};

static void op_continue(void *user);

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

aws_ctx *aws_ctx_new(struct lws_context *lws, const aws_ctx_config *cfg)
{
    aws_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->http = aws_http_new(lws, NULL);
    c->region = strdup(cfg && cfg->region ? cfg->region : "");
    c->profile = dup_or_null(cfg ? cfg->profile : NULL);
    c->ssm_endpoint = dup_or_null(cfg ? cfg->ssm_endpoint : NULL);
    c->retry_ms = cfg && cfg->creds_retry_ms ? cfg->creds_retry_ms : AWS_CREDS_RETRY_MS;
    const char *skip = getenv("SSM_PLUGIN_SKIP_CLIENT_CONFIGURE");
    c->skip_ws_signing = skip && !strcmp(skip, "true"); /* exact match */
    if (!c->http || !c->region) {
        aws_ctx_free(c);
        return NULL;
    }
    return c;
}

static void op_unlink(aws_op *op)
{
    aws_ctx *c = op->ctx;
    if (op->prev)
        op->prev->next = op->next;
    else if (c->ops == op)
        c->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
}

static void op_free(aws_op *op)
{
    ssm_ptimer_free(op->timer);
    aws_http_cancel(op->req);
    free(op->url);
    free(op->target);
    free(op->endpoint);
    free(op->body);
    free(op);
}

void aws_ctx_free(aws_ctx *c)
{
    if (!c)
        return;
    while (c->ops) {
        aws_op *op = c->ops;
        op_unlink(op);
        op_free(op);
    }
    aws_creds_fetch_free(c->fetch);
    aws_creds_plan_free(&c->plan);
    aws_credentials_clear(&c->cache);
    aws_http_free(c->http);
    free(c->region);
    free(c->profile);
    free(c->ssm_endpoint);
    free(c);
}

void aws_creds_invalidate(aws_ctx *c)
{
    if (c && !c->resolving)
        aws_credentials_clear(&c->cache);
}

void aws_ws_auth_clear(aws_ws_auth *a)
{
    if (!a)
        return;
    if (a->security_token) {
        OPENSSL_cleanse(a->security_token, strlen(a->security_token));
        free(a->security_token);
    }
    OPENSSL_cleanse(a, sizeof *a);
}

int aws_ws_auth_headers(const aws_ws_auth *a, char *buf, size_t cap)
{
    if (!a || !buf)
        return -1;
    int n = snprintf(buf, cap, "Authorization: %s\r\nX-Amz-Date: %s\r\n", a->authorization,
                     a->amz_date);
    if (n >= 0 && (size_t)n < cap && a->security_token)
        n += snprintf(buf + n, cap - (size_t)n, "X-Amz-Security-Token: %s\r\n", a->security_token);
    if (n < 0 || (size_t)n >= cap) {
        OPENSSL_cleanse(buf, cap);
        return -1;
    }
    return n;
}

bool aws_url_is_presigned(const char *url)
{
    static const char *keys[] = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
                                 "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature",
                                 "X-Amz-Security-Token"};
    const char *q = url ? strchr(url, '?') : NULL;
    if (!q)
        return false;
    q++;
    while (*q && *q != '#') {
        size_t n = strcspn(q, "=&#");
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strlen(keys[i]) == n && !strncmp(q, keys[i], n))
                return true;
        q += strcspn(q, "&#");
        if (*q == '&')
            q++;
    }
    return false;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool negative_cached(const aws_ctx *ctx)
{
    return ctx->no_creds_until_ms && mono_ms() < ctx->no_creds_until_ms;
}

static void resolution_done(void *user, const aws_credentials *c, const char *err)
{
    aws_ctx *ctx = user;
    if (c) {
        aws_credentials_copy(&ctx->cache, c);
        ctx->no_creds_until_ms = 0;
    } else {
        snprintf(ctx->cred_error, sizeof ctx->cred_error, "%s", err ? err : "no credentials");
        ctx->no_creds_until_ms = mono_ms() + ctx->retry_ms;
    }
    ctx->resolving = false;
    ctx->fetch = NULL; /* it frees itself after this callback */
    /* Waiters continue from their own timers, after this stack unwinds. */
    for (aws_op *op = ctx->ops; op; op = op->next)
        if (op->waiting_creds) {
            op->waiting_creds = false;
            ssm_ptimer_arm(op->timer, 0);
        }
}

/* Makes op wait for credentials; starts a resolution when none is running. */
static void need_creds(aws_op *op)
{
    aws_ctx *ctx = op->ctx;
    op->waiting_creds = true;
    if (ctx->resolving)
        return;
    aws_creds_opts o = {.profile = ctx->profile, .region = ctx->region,
                        .allow_cli_export = true, .allow_imds = true, .defer_process = true};
    ctx->cred_error[0] = '\0';
    aws_creds_plan_free(&ctx->plan);
    aws_creds_plan_resolve(&o, time(NULL), &ctx->plan);
    ctx->resolving = true;
    /* May finish inside this call (no network step); waiters are deferred. */
    ctx->fetch = aws_creds_fetch_start(ctx->http, &ctx->plan, ctx->region, resolution_done, ctx);
    if (ctx->resolving && !ctx->fetch)
        resolution_done(ctx, NULL, "out of memory");
}

/* ---------------- operations ---------------- */

static aws_op *op_new(aws_ctx *ctx, enum op_kind kind, void *user)
{
    aws_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->timer = aws_http_timer_new(ctx->http, op_continue, op);
    if (!op->timer) {
        free(op);
        return NULL;
    }
    op->ctx = ctx;
    op->kind = kind;
    op->user = user;
    op->next = ctx->ops;
    if (ctx->ops)
        ctx->ops->prev = op;
    ctx->ops = op;
    return op;
}

static const char *const op_names[] = {"", "SSM: ResumeSession", "SSM: TerminateSession",
                                       "KMS: GenerateDataKey", "SSM: StartSession"};

/* Delivers a failure with its one-line text; op is freed. */
static void fail_op_text(aws_op *op, int http_status, const char *type, const char *message,
                         const char *text)
{
    aws_api_error e = {.status = -1, .http_status = http_status, .type = type,
                       .message = message, .text = text};
    op_unlink(op);
    switch (op->kind) {
    case OP_RESUME:
        op->cb.resume(op->user, &e, NULL, NULL);
        break;
    case OP_TERMINATE:
        op->cb.terminate(op->user, &e);
        break;
    case OP_KMS:
        op->cb.kms(op->user, &e, NULL, 0, NULL);
        break;
    case OP_START:
        op->cb.start(op->user, &e, NULL, NULL, NULL);
        break;
    case OP_WS:
        op->cb.ws(op->user, NULL);
        break;
    }
    op->req = NULL;
    op_free(op);
}

/* A local failure (no HTTP response): "operation error KMS: GenerateDataKey, <type>: <msg>". */
static void fail_op(aws_op *op, int http_status, const char *type, const char *message)
{
    char text[API_TEXT_MAX];
    snprintf(text, sizeof text, "operation error %s, %s: %s", op_names[op->kind], type, message);
    fail_op_text(op, http_status, type, message, text);
}

/* The error codes each operation's model declares (aws-sdk-go-v2's per
 * operation deserializer switch, matched case-insensitively). Others come out
 * as smithy's GenericAPIError, "api error <Code>: <Message>". */
static bool modelled_error(enum op_kind kind, const char *code)
{
    static const char *const kms_gdk[] = {
        "DependencyTimeoutException", "DisabledException", "InvalidGrantTokenException",
        "InvalidKeyUsageException", "KeyUnavailableException", "KMSInternalException",
        "KMSInvalidStateException", "NotFoundException", NULL};
    static const char *const ssm_resume[] = {"DoesNotExistException", "InternalServerError", NULL};
    static const char *const ssm_terminate[] = {"InternalServerError", NULL};
    static const char *const ssm_start[] = {"InvalidDocument", "TargetNotConnected",
                                            "InternalServerError", NULL};
    const char *const *list = kind == OP_KMS         ? kms_gdk
                              : kind == OP_RESUME    ? ssm_resume
                              : kind == OP_TERMINATE ? ssm_terminate
                              : kind == OP_START     ? ssm_start
                                                     : NULL;
    for (; list && *list; list++)
        if (!strcasecmp(*list, code))
            return true;
    return false;
}

/* smithy's SanitizeErrorCode: "prefix#Code:suffix" -> "Code" (the ':' cut
 * first, so a '#' inside the suffix does not count). */
static void sanitize_code(const char *in, char *out, size_t cap)
{
    size_t n = strcspn(in, ":");
    for (size_t i = n; i > 0; i--)
        if (in[i - 1] == '#') {
            in += i;
            n -= i;
            break;
        }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, in, n);
    out[n] = '\0';
}

/* An HTTP error response, reported as aws-sdk-go-v2 does:
 * "operation error KMS: GenerateDataKey, https response error StatusCode: 400,
 * RequestID: <x-amzn-RequestId>, [api error ]<Code>: <Message>". */
static void fail_http(aws_op *op, const aws_http_response *r)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    /* The SDK's defaults: code from X-Amzn-ErrorType, else the body's
     * __type/code; message "UnknownError" unless the body has one. */
    const char *type = r->error_type && *r->error_type ? r->error_type : NULL;
    const cJSON *v = cJSON_IsObject(j) ? cJSON_GetObjectItem(j, "__type") : NULL;
    if (!cJSON_IsString(v))
        v = cJSON_IsObject(j) ? cJSON_GetObjectItem(j, "code") : NULL;
    if (cJSON_IsString(v) && v->valuestring[0])
        type = v->valuestring;
    const cJSON *m = cJSON_IsObject(j) ? cJSON_GetObjectItem(j, "message") : NULL;
    const char *msg = cJSON_IsString(m) && m->valuestring[0] ? m->valuestring : NULL;
    char code[128];
    sanitize_code(type ? type : "UnknownError", code, sizeof code);
    bool modelled = modelled_error(op->kind, code);
    /* A modelled error prints its message as is ("" when absent). */
    const char *message = msg ? msg : modelled ? "" : "UnknownError";
    char *text = malloc(API_TEXT_MAX);
    if (text)
        snprintf(text, API_TEXT_MAX,
                 "operation error %s, https response error StatusCode: %d, RequestID: %s, %s%s: %s",
                 op_names[op->kind], r->status, r->request_id ? r->request_id : "",
                 modelled ? "" : "api error ", code, message);
    fail_op_text(op, r->status, code, message, text ? text : "operation error: out of memory");
    free(text);
    cJSON_Delete(j);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static void api_response(void *user, const aws_http_response *r)
{
    aws_op *op = user;
    op->req = NULL;
    if (r->error) {
        fail_op(op, 0, strcmp(r->error, "timeout") ? "NetworkError" : "Timeout", r->error);
        return;
    }
    if (r->status < 200 || r->status > 299) {
        fail_http(op, r);
        return;
    }
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        fail_op(op, r->status, "BadResponse", "response is not a JSON object");
        return;
    }
    aws_api_error ok = {.status = 0, .http_status = r->status, .type = "", .message = "", .text = ""};
    op_unlink(op);
    if (op->kind == OP_RESUME) {
        op->cb.resume(op->user, &ok, jstr(j, "TokenValue"), jstr(j, "StreamUrl"));
    } else if (op->kind == OP_TERMINATE) {
        op->cb.terminate(op->user, &ok);
    } else if (op->kind == OP_START) {
        op->cb.start(op->user, &ok, jstr(j, "SessionId"), jstr(j, "TokenValue"),
                     jstr(j, "StreamUrl"));
        /* The tree holds the token: wipe it before it is freed. */
        char *tok = (char *)jstr(j, "TokenValue");
        if (tok)
            OPENSSL_cleanse(tok, strlen(tok));
    } else {
        const char *pt = jstr(j, "Plaintext"), *blob = jstr(j, "CiphertextBlob");
        uint8_t key[96];
        int n = -1;
        size_t ptl = pt ? strlen(pt) : 0;
        if (pt && blob && ptl == 88) /* base64 of 64 bytes */
            n = EVP_DecodeBlock(key, (const unsigned char *)pt, (int)ptl);
        if (n == 66 && pt[ptl - 1] == '=' && pt[ptl - 2] == '=') { /* 64 + 2 pad bytes */
            op->cb.kms(op->user, &ok, key, 64, blob);
        } else {
            aws_api_error e = {.status = -1, .http_status = r->status, .type = "BadResponse",
                               .message = "Plaintext is not 64 bytes of base64",
                               .text = "operation error KMS: GenerateDataKey, BadResponse: "
                                       "Plaintext is not 64 bytes of base64"};
            op->cb.kms(op->user, &e, NULL, 0, NULL);
        }
        OPENSSL_cleanse(key, sizeof key);
        if (pt)
            OPENSSL_cleanse((char *)pt, ptl);
    }
    cJSON_Delete(j);
    op_free(op);
}

static void api_send(aws_op *op)
{
    aws_ctx *ctx = op->ctx;
    const aws_credentials *c = &ctx->cache;
    aws_url u;
    if (aws_url_parse(op->endpoint, &u) != 0) {
        fail_op(op, 0, "InvalidEndpoint", "cannot parse the endpoint URL");
        return;
    }
    aws_sigv4_header h[] = {{"Content-Type", "application/x-amz-json-1.1"},
                            {"X-Amz-Target", op->target}};
    aws_sigv4_input in = {
        .method = "POST", .host = u.authority, .path = u.path, .query = u.query,
        .headers = h, .n_headers = 2, .body = op->body, .body_len = strlen(op->body),
        .region = ctx->region, .service = op->service,
        .access_key_id = c->access_key_id, .secret_access_key = c->secret_access_key,
        .session_token = c->session_token, .now = time(NULL),
    };
    aws_sigv4_output so;
    int rc = aws_sigv4_sign(&in, &so, NULL, 0, NULL, 0);
    aws_url_free(&u);
    if (rc != 0) {
        fail_op(op, 0, "SigningError", "cannot sign the request");
        return;
    }
    size_t hl = 1024 + strlen(op->target) + (c->session_token ? strlen(c->session_token) : 0);
    char *headers = malloc(hl);
    if (!headers) {
        fail_op(op, 0, "OutOfMemory", "out of memory");
        return;
    }
    int n = snprintf(headers, hl,
                     "Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: %s\r\n"
                     "X-Amz-Date: %s\r\nAuthorization: %s\r\n",
                     op->target, so.amz_date, so.authorization);
    if (c->session_token)
        snprintf(headers + n, hl - (size_t)n, "X-Amz-Security-Token: %s\r\n", c->session_token);
    aws_http_request rq = {.method = "POST", .url = op->endpoint, .headers = headers,
                           .body = op->body, .body_len = strlen(op->body),
                           .timeout_ms = API_TIMEOUT_MS, .max_response = 256 * 1024};
    op->req = aws_http_send(ctx->http, &rq, api_response, op);
    OPENSSL_cleanse(headers, strlen(headers));
    free(headers);
    if (!op->req)
        fail_op(op, 0, "InvalidEndpoint", "cannot start the request");
}

static void ws_sign(aws_op *op)
{
    aws_ctx *ctx = op->ctx;
    const aws_credentials *c = &ctx->cache;
    aws_sigv4_output so;
    aws_ws_auth auth;
    memset(&auth, 0, sizeof auth);
    bool ok = aws_sigv4_sign_get_url(op->url, ctx->region, "ssmmessages", c->access_key_id,
                                     c->secret_access_key, c->session_token, time(NULL), &so) == 0;
    if (ok) {
        memcpy(auth.authorization, so.authorization, sizeof auth.authorization);
        memcpy(auth.amz_date, so.amz_date, sizeof auth.amz_date);
        auth.security_token = c->session_token ? strdup(c->session_token) : NULL;
        ok = !c->session_token || auth.security_token;
    }
    OPENSSL_cleanse(&so, sizeof so);
    op_unlink(op);
    op->cb.ws(op->user, ok ? &auth : NULL);
    aws_ws_auth_clear(&auth);
    op_free(op);
}

/* Runs when an op is started or its credentials arrived. */
static void op_continue(void *user)
{
    aws_op *op = user;
    aws_ctx *ctx = op->ctx;
    if (op->kind == OP_WS && !op->url) { /* presigned or skipped: unsigned */
        op_unlink(op);
        op->cb.ws(op->user, NULL);
        op_free(op);
        return;
    }
    time_t now = time(NULL);
    bool have = ctx->cache.access_key_id &&
                (ctx->cache.expiration == 0 || ctx->cache.expiration > now);
    /* Before a resolution: refresh early, unless one failed moments ago
     * (negative cache). After one: take what it gave. */
    if (!op->cred_tried && !aws_credentials_usable(&ctx->cache, now) && !negative_cached(ctx)) {
        op->cred_tried = true;
        need_creds(op);
        return;
    }
    if (!have) {
        if (op->kind == OP_WS) {
            op_unlink(op);
            op->cb.ws(op->user, NULL); /* best effort: the upgrade goes unsigned */
            op_free(op);
        } else {
            fail_op(op, 0, "CredentialsError", ctx->cred_error[0] ? ctx->cred_error : "no credentials");
        }
        return;
    }
    if (op->kind == OP_WS)
        ws_sign(op);
    else
        api_send(op);
}

const char *aws_ctx_credentials_error(const aws_ctx *ctx)
{
    return ctx && ctx->cred_error[0] ? ctx->cred_error : NULL;
}

int aws_ws_prepare(aws_ctx *ctx, const char *stream_url, aws_ws_auth_cb cb, void *user)
{
    if (!ctx || !stream_url || !cb)
        return -1;
    aws_op *op = op_new(ctx, OP_WS, user);
    if (!op)
        return -1;
    op->cb.ws = cb;
    if (!ctx->skip_ws_signing && !aws_url_is_presigned(stream_url)) {
        op->url = strdup(stream_url);
        if (!op->url) {
            op_unlink(op);
            op_free(op);
            return -1;
        }
    }
    ssm_ptimer_arm(op->timer, 0);
    return 0;
}

static aws_op *api_op(aws_ctx *ctx, enum op_kind kind, void *user, const char *service,
                      const char *target, char *endpoint, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    aws_op *op = endpoint && text ? op_new(ctx, kind, user) : NULL;
    if (!op) {
        free(endpoint);
        free(text);
        return NULL;
    }
    op->service = service;
    op->target = strdup(target);
    op->endpoint = endpoint;
    op->body = text;
    if (!op->target) {
        op_unlink(op);
        op_free(op);
        return NULL;
    }
    ssm_ptimer_arm(op->timer, 0);
    return op;
}

static char *ssm_endpoint(aws_ctx *ctx)
{
    /* argv[6] applies to SSM only (PROTOCOL-NEWEST §1.6). */
    if (ctx->ssm_endpoint)
        return strdup(ctx->ssm_endpoint);
    return aws_endpoint_for("SSM", "ssm", ctx->region);
}

static cJSON *session_body(const char *sid)
{
    cJSON *b = cJSON_CreateObject();
    if (b && !cJSON_AddStringToObject(b, "SessionId", sid)) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

int aws_resume_session(aws_ctx *ctx, const char *session_id, aws_resume_cb cb, void *user)
{
    if (!ctx || !session_id || !cb)
        return -1;
    /* Fresh credentials for every resume (PROTOCOL-NEWEST §3.3): the user may
     * have renewed short-lived keys since the session started. */
    aws_creds_invalidate(ctx);
    aws_op *op = api_op(ctx, OP_RESUME, user, "ssm", "AmazonSSM.ResumeSession",
                        ssm_endpoint(ctx), session_body(session_id));
    if (!op)
        return -1;
    op->cb.resume = cb;
    return 0;
}

int aws_terminate_session(aws_ctx *ctx, const char *session_id, aws_terminate_cb cb, void *user)
{
    if (!ctx || !session_id || !cb)
        return -1;
    aws_op *op = api_op(ctx, OP_TERMINATE, user, "ssm", "AmazonSSM.TerminateSession",
                        ssm_endpoint(ctx), session_body(session_id));
    if (!op)
        return -1;
    op->cb.terminate = cb;
    return 0;
}

int aws_kms_generate_data_key(aws_ctx *ctx, const char *key_id, const char *session_id,
                              const char *target_id, const char *challenge, aws_kms_cb cb,
                              void *user)
{
    if (!ctx || !key_id || !session_id || !target_id || !cb)
        return -1;
    cJSON *b = cJSON_CreateObject(), *ec = cJSON_CreateObject();
    bool ok = b && ec && cJSON_AddStringToObject(ec, "aws:ssm:SessionId", session_id) &&
              cJSON_AddStringToObject(ec, "aws:ssm:TargetId", target_id) &&
              (!challenge || !*challenge ||
               cJSON_AddStringToObject(ec, "aws:ssm:RandomChallenge", challenge));
    if (ok) {
        cJSON_AddItemToObject(b, "EncryptionContext", ec);
        ec = NULL;
        ok = cJSON_AddStringToObject(b, "KeyId", key_id) &&
             cJSON_AddNumberToObject(b, "NumberOfBytes", 64);
    }
    cJSON_Delete(ec);
    if (!ok) {
        cJSON_Delete(b);
        return -1;
    }
    /* KMS never uses argv[6]: default resolution (+ AWS_ENDPOINT_URL_KMS for tests). */
    aws_op *op = api_op(ctx, OP_KMS, user, "kms", "TrentService.GenerateDataKey",
                        aws_endpoint_for("KMS", "kms", ctx->region), b);
    if (!op)
        return -1;
    op->cb.kms = cb;
    return 0;
}

int aws_start_session(aws_ctx *ctx, const char *request_json, aws_start_cb cb, void *user)
{
    if (!ctx || !request_json || !cb)
        return -1;
    cJSON *body = cJSON_Parse(request_json);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return -1;
    }
    aws_op *op = api_op(ctx, OP_START, user, "ssm", "AmazonSSM.StartSession", ssm_endpoint(ctx),
                        body);
    if (!op)
        return -1;
    op->cb.start = cb;
    return 0;
}
