/* AWS identity for the session runtime: signing the websocket upgrade
 * (PROTOCOL-NEWEST.md §1) and the three JSON-1.1 API calls the plugin makes
 * (PROTOCOL.md §14: ResumeSession, TerminateSession, KMS GenerateDataKey).
 *
 * Everything asynchronous runs on the session's libwebsockets loop. Rules:
 *  - every async call returns 0 and later invokes its callback exactly once
 *    from the loop (never from inside the call itself), or returns -1 and
 *    never calls it;
 *  - aws_ctx_free() cancels what is in flight; cancelled callbacks never run;
 *  - pointers handed to callbacks are valid only during the callback;
 *  - callbacks run from a timerfd event, after lws's poll(), so the
 *    lws_service() call that ran one returns right after it: a caller may
 *    drive a call with `while (!done) lws_service(ctx, 0);` and no tick.
 *
 * The lws_context must have been created with
 * LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT (wss needs it anyway). aws_ctx adds
 * its own client vhosts (CA bundle, proxy) to that context; the session's
 * protocols list needs nothing from here. */
#ifndef SSM_AWS_API_H
#define SSM_AWS_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct lws_context;
typedef struct aws_ctx aws_ctx;

typedef struct aws_ctx_config {
    const char *region;       /* argv[2]: signing region for ssm, kms, ssmmessages */
    const char *profile;      /* argv[4]; NULL or "" -> AWS_PROFILE, AWS_DEFAULT_PROFILE, "default" */
    const char *ssm_endpoint; /* argv[6]; NULL or "" -> https://ssm.<region>.<suffix>.
                               * Used for SSM calls only, never KMS or credentials. */
    unsigned creds_retry_ms;  /* negative cache: 0 -> AWS_CREDS_RETRY_MS */
} aws_ctx_config;

/* After the credential chain found nothing, lookups in this ctx fail at once
 * (unsigned upgrade, CredentialsError) for this long instead of running the
 * chain again: first-connection retries and reconnects come seconds apart and
 * each run may cost IMDS timeouts and an `aws` CLI process. */
#define AWS_CREDS_RETRY_MS 30000u

/* Reads the environment once (AWS_*, SSM_PLUGIN_SKIP_CLIENT_CONFIGURE).
 * Returns NULL on allocation failure. */
aws_ctx *aws_ctx_new(struct lws_context *lws, const aws_ctx_config *cfg);
void aws_ctx_free(aws_ctx *ctx);

/* Outcome of an API call. status 0 = success. On failure `type` is the
 * service's error code (body "__type"/"code", else X-Amzn-ErrorType, without
 * "prefix#" or ":suffix"; "UnknownError" when none) or a local code
 * ("CredentialsError", "NetworkError", "Timeout", "BadResponse"), `message`
 * its text, and `text` a one-line summary meant for users and for the
 * HandshakeResponse error string, shaped as aws-sdk-go-v2 prints it:
 * "operation error KMS: GenerateDataKey, https response error StatusCode: 400,
 * RequestID: <x-amzn-RequestId>, NotFoundException: <message>" for codes the
 * operation's model declares, "..., api error AccessDeniedException: <message>"
 * for others; up to 4 KiB, the message never cut short of that. Local
 * failures: "operation error KMS: GenerateDataKey, <type>: <message>". Never
 * contains secrets. */
typedef struct aws_api_error {
    int status;      /* 0 ok, -1 failed */
    int http_status; /* 0 when no HTTP response arrived */
    const char *type, *message, *text;
} aws_api_error;

/* ---- WebSocket upgrade signing ---- */

/* Extra headers for the upgrade request. Add each present one in
 * LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER. The signature covers the Host
 * header as the URL's authority exactly as written (minus any userinfo;
 * host:port when the URL has a port): give lws that same string as Host. */
typedef struct aws_ws_auth {
    char authorization[1024]; /* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
    char amz_date[17];       /* X-Amz-Date: YYYYMMDDTHHMMSSZ */
    char *security_token;    /* X-Amz-Security-Token, or NULL; owned by this struct */
} aws_ws_auth;
void aws_ws_auth_clear(aws_ws_auth *a); /* wipes and frees */
/* Formats a as "Name: value\r\n" lines (the transport's headers format).
 * Returns the length, or -1 when it does not fit. Wipe buf after use. */
int aws_ws_auth_headers(const aws_ws_auth *a, char *buf, size_t cap);

/* auth is NULL when the upgrade goes out unsigned: presigned URL,
 * SSM_PLUGIN_SKIP_CLIENT_CONFIGURE=true, or no credentials (best effort,
 * §1.2). The callback owns nothing: copy what it needs. */
typedef void (*aws_ws_auth_cb)(void *user, const aws_ws_auth *auth);
/* Call before every (re)connect: resolves credentials (cached; refreshed
 * when near expiry, and always re-resolved after aws_creds_invalidate(); a
 * failed resolution is not retried for AWS_CREDS_RETRY_MS) and signs
 * GET <stream_url> with the current wall clock. Resolution never blocks the
 * loop: credential_process and the CLI export run as child processes
 * watched by the loop. */
int aws_ws_prepare(aws_ctx *ctx, const char *stream_url, aws_ws_auth_cb cb, void *user);
/* True when the URL carries X-Amz-* presign query keys (exact match). */
bool aws_url_is_presigned(const char *url);
/* Why the last credential resolution failed (for logs), or NULL. */
const char *aws_ctx_credentials_error(const aws_ctx *ctx);
/* Forget cached credentials (e.g. before a resume: PROTOCOL-NEWEST §3.3).
 * A recent failure stays cached (AWS_CREDS_RETRY_MS). */
void aws_creds_invalidate(aws_ctx *ctx);

/* ---- API calls ---- */

/* ResumeSession. Drops cached credentials first, so this call and the
 * aws_ws_prepare() of the reconnect use freshly resolved ones (§3.3 of
 * PROTOCOL-NEWEST). token NULL or "" means the session timed out on the
 * service side; stream_url NULL/"" means keep the old URL. */
typedef void (*aws_resume_cb)(void *user, const aws_api_error *err, const char *token,
                              const char *stream_url);
int aws_resume_session(aws_ctx *ctx, const char *session_id, aws_resume_cb cb, void *user);

typedef void (*aws_terminate_cb)(void *user, const aws_api_error *err);
int aws_terminate_session(aws_ctx *ctx, const char *session_id, aws_terminate_cb cb, void *user);

/* GenerateDataKey with NumberOfBytes 64 and EncryptionContext
 * {aws:ssm:SessionId, aws:ssm:TargetId[, aws:ssm:RandomChallenge when
 * challenge is non-empty]} (§9.2, §9.5). On success plaintext is 64 bytes
 * (wiped after the callback returns) and ciphertext_b64 is the blob exactly
 * as KMS returned it, for the HandshakeResponse. */
typedef void (*aws_kms_cb)(void *user, const aws_api_error *err, const uint8_t *plaintext,
                           size_t plaintext_len, const char *ciphertext_b64);
int aws_kms_generate_data_key(aws_ctx *ctx, const char *key_id, const char *session_id,
                              const char *target_id, const char *challenge, aws_kms_cb cb,
                              void *user);

/* StartSession (standalone mode): request_json is the request body object
 * (Target, DocumentName, Parameters, Reason). On success the three strings
 * are the response's (any may be NULL when missing); the token is wiped
 * after the callback returns. Returns -1 when request_json is not an object. */
typedef void (*aws_start_cb)(void *user, const aws_api_error *err, const char *session_id,
                             const char *token, const char *stream_url);
int aws_start_session(aws_ctx *ctx, const char *request_json, aws_start_cb cb, void *user);

#endif
