/* Internals shared by session.c and session_aws.c (not for handlers). */
#ifndef SSM_SESSION_PRIV_H
#define SSM_SESSION_PRIV_H

#include <libwebsockets.h>

#include "cli.h"
#include "session.h"
#include "ssm_channel.h"
#include "ssm_kms.h"
#include "transport.h"

struct aws_ctx;

/* The one event loop of the process and the sessions it carries
 * (session_loop.c): one, or several port sessions in standalone mode. */
typedef struct ssm_loop {
    struct lws_context *ctx;
    struct lws_vhost *vh;       /* stdio, signals, timers */
    lws_retry_bo_t idle_policy; /* dead-peer: ws ping after silence, hang up */
    ssm_session *sessions;
} ssm_loop;

struct ssm_session {
    ssm_loop *loop;
    ssm_session *next;    /* the loop's list */
    bool closed;          /* session_close() ran */
    const ssm_cli_args *args;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    ssm_transport *tp;
    ssm_chan *chan;
    struct aws_ctx *aws;
    struct aws_call *aws_calls; /* in-flight seam calls (session_aws.c) */

    char client_id[37];
    char *token, *url;

    /* connection */
    bool ever_open;       /* the first connection succeeded once */
    unsigned attempt;     /* failed attempts in the current (re)connect round */
    unsigned retry_base_ms;
    uint64_t down_since;  /* when the open connection dropped (ms) */
    uint64_t reconnect_budget_ms;
    char last_why[256];   /* why the last reconnect attempt failed */
    bool connecting;
    lws_sorted_usec_list_t sul_retry, sul_end, sul_budget;
    struct ssm_ptimer *chan_timer; /* retransmission/pacing: precise (see ptimer.h) */
    lws_sorted_usec_list_t sul_trim; /* gives idle buffer pages back (session.c) */
    bool trim_armed;
    bool notify_sent; /* on_send_space() once the send backlog is empty */
    uint64_t last_traffic_ms;

    /* handshake and handler */
    bool type_known, hs_seen;
    ssm_hs_request hs;
    const ssm_handler_ops *handler;
    void *hstate;
    bool handler_started;

    /* KMS session encryption (§9) */
    bool kms_wait;         /* GenerateDataKey in flight: the response waits */
    bool kms_on;           /* Output is sealed, Output/StdErr/ExitCode opened */
    int kms_status;        /* enum ssm_action_status of the KMSEncryption action */
    char kms_error[2048];
    char *kms_cipher_b64;
    ssm_kms kms;
    uint8_t *kms_buf;      /* one frame of seal/open scratch */
    size_t kms_buf_cap;

    /* ending */
    bool ending, done, terminating;
    int exit_code;
    char *end_message;
};

/* The loop's side of a session (session.c). create starts connecting;
 * NULL with *fail on failure. close releases its connection, handler,
 * timer and API calls (the loop calls it once the session is done);
 * destroy frees the rest after the lws context is gone. */
ssm_session *session_create(ssm_loop *L, const ssm_cli_args *args, const char **fail);
void session_on_signal(ssm_session *s, int signo);
void session_close(ssm_session *s);
void session_destroy(ssm_session *s);

/* Seams to plugin/aws_*.c (session_aws.c). Each done callback runs once. */
int sess_aws_init(ssm_session *s);
void sess_aws_free(ssm_session *s);
/* Extra upgrade headers for url ("Name: value\r\n"*, or NULL unsigned). */
void sess_aws_upgrade_headers(ssm_session *s, const char *url,
                              void (*done)(ssm_session *s, const char *headers));
/* ResumeSession: status 0 and token (NULL/"" = timed out) and url (NULL/""
 * = keep); status -1 and why on failure. */
void sess_aws_resume(ssm_session *s, void (*done)(ssm_session *s, int status, const char *token,
                                                  const char *url, const char *why));
void sess_aws_terminate(ssm_session *s, void (*done)(ssm_session *s));
/* KMS GenerateDataKey (§9.2, §9.5): why NULL on success with the 64-byte
 * plaintext (wiped after the call) and the blob for the response. */
void sess_aws_kms(ssm_session *s, const char *key_id, const char *challenge,
                  void (*done)(ssm_session *s, const char *why, const uint8_t *key, size_t n,
                               const char *ciphertext_b64));

#endif
