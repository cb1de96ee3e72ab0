/* Seam between the session and the AWS API module (aws_api.h): upgrade
 * signing, ResumeSession, TerminateSession. Each call carries its own small
 * closure so overlapping calls cannot clobber each other. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_api.h"
#include "log.h"
#include "session_priv.h"

typedef struct aws_call {
    struct aws_call *next, **pprev; /* in-flight list: freed if cancelled */
    ssm_session *s;
    void (*headers_done)(ssm_session *s, const char *headers);
    void (*resume_done)(ssm_session *s, int status, const char *token, const char *url,
                        const char *why);
    void (*terminate_done)(ssm_session *s);
    void (*kms_done)(ssm_session *s, const char *why, const uint8_t *key, size_t n,
                     const char *ciphertext_b64);
} aws_call;

static aws_call *call_new(ssm_session *s)
{
    aws_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->s = s;
    c->next = s->aws_calls;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &s->aws_calls;
    s->aws_calls = c;
    return c;
}

/* Unlinks and frees: after the callback ran, or when the call never started. */
static void call_free(aws_call *c)
{
    if (!c)
        return;
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    free(c);
}

int sess_aws_init(ssm_session *s)
{
    aws_ctx_config cfg = {
        .region = s->args->region,
        .profile = s->args->profile,
        .ssm_endpoint = s->args->endpoint,
    };
    s->aws = aws_ctx_new(s->ctx, &cfg);
    return s->aws ? 0 : -1;
}

void sess_aws_free(ssm_session *s)
{
    if (s->aws)
        aws_ctx_free(s->aws); /* cancels in-flight calls: their callbacks never run */
    s->aws = NULL;
    while (s->aws_calls)
        call_free(s->aws_calls);
}

static void on_ws_auth(void *user, const aws_ws_auth *auth)
{
    aws_call *c = user;
    char hdr[2048];
    const char *h = NULL;
    if (auth) {
        int n = snprintf(hdr, sizeof hdr, "Authorization: %s\r\nX-Amz-Date: %s\r\n%s%s%s",
                         auth->authorization, auth->amz_date,
                         auth->security_token ? "X-Amz-Security-Token: " : "",
                         auth->security_token ? auth->security_token : "",
                         auth->security_token ? "\r\n" : "");
        if (n > 0 && (size_t)n < sizeof hdr)
            h = hdr;
        else
            LOGW("signed upgrade headers too long; connecting unsigned");
    } else {
        LOGI("websocket upgrade goes out unsigned");
    }
    c->headers_done(c->s, h);
    OPENSSL_cleanse(hdr, sizeof hdr);
    call_free(c);
}

void sess_aws_upgrade_headers(ssm_session *s, const char *url,
                              void (*done)(ssm_session *s, const char *headers))
{
    aws_call *c = s->aws ? call_new(s) : NULL;
    if (!c) {
        done(s, NULL);
        return;
    }
    c->headers_done = done;
    if (aws_ws_prepare(s->aws, url, on_ws_auth, c) < 0) {
        call_free(c);
        done(s, NULL);
    }
}

static void on_resume(void *user, const aws_api_error *err, const char *token,
                      const char *stream_url)
{
    aws_call *c = user;
    if (err && err->status != 0) {
        LOGW("ResumeSession failed: %s", err->text ? err->text : "error");
        c->resume_done(c->s, -1, NULL, NULL, err->text ? err->text : "ResumeSession failed");
    } else {
        c->resume_done(c->s, 0, token, stream_url, NULL);
    }
    call_free(c);
}

void sess_aws_resume(ssm_session *s, void (*done)(ssm_session *s, int status, const char *token,
                                                  const char *url, const char *why))
{
    aws_call *c = s->aws ? call_new(s) : NULL;
    if (!c) {
        done(s, -1, NULL, NULL, "ResumeSession is not available");
        return;
    }
    c->resume_done = done;
    /* Fresh credentials for each resume (PROTOCOL-NEWEST.md §3.3). */
    aws_creds_invalidate(s->aws);
    if (aws_resume_session(s->aws, s->args->session_id, on_resume, c) < 0) {
        call_free(c);
        done(s, -1, NULL, NULL, "cannot call ResumeSession");
    }
}

static void on_terminate(void *user, const aws_api_error *err)
{
    aws_call *c = user;
    if (err && err->status != 0)
        LOGW("TerminateSession failed: %s", err->text ? err->text : "error");
    else
        LOGI("TerminateSession done");
    if (c->terminate_done)
        c->terminate_done(c->s);
    call_free(c);
}

void sess_aws_terminate(ssm_session *s, void (*done)(ssm_session *s))
{
    aws_call *c = s->aws ? call_new(s) : NULL;
    if (!c || aws_terminate_session(s->aws, s->args->session_id, on_terminate, c) < 0) {
        LOGW("cannot call TerminateSession");
        call_free(c);
        if (done)
            done(s);
        return;
    }
    c->terminate_done = done;
}

static void on_kms(void *user, const aws_api_error *err, const uint8_t *plaintext,
                   size_t plaintext_len, const char *ciphertext_b64)
{
    aws_call *c = user;
    if (err && err->status != 0)
        c->kms_done(c->s, err->text ? err->text : "GenerateDataKey failed", NULL, 0, NULL);
    else
        c->kms_done(c->s, NULL, plaintext, plaintext_len, ciphertext_b64);
    call_free(c);
}

void sess_aws_kms(ssm_session *s, const char *key_id, const char *challenge,
                  void (*done)(ssm_session *s, const char *why, const uint8_t *key, size_t n,
                               const char *ciphertext_b64))
{
    aws_call *c = s->aws ? call_new(s) : NULL;
    if (!c) {
        done(s, "AWS API access is not available", NULL, 0, NULL);
        return;
    }
    c->kms_done = done;
    if (aws_kms_generate_data_key(s->aws, key_id, s->args->session_id,
                                  s->args->target ? s->args->target : "", challenge, on_kms,
                                  c) < 0) {
        call_free(c);
        done(s, "cannot call KMS GenerateDataKey", NULL, 0, NULL);
    }
}
