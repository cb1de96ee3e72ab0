/* A small asynchronous HTTP/1.1 client on the session's libwebsockets loop,
 * for the AWS APIs and credential endpoints. TLS is verified (system store or
 * AWS_CA_BUNDLE); HTTPS_PROXY/NO_PROXY are honoured; responses are bounded;
 * every request has a deadline.
 *
 * Callbacks run from a timerfd event, after lws's poll(): the lws_service()
 * call that ran one returns right after it, so a caller looping
 * `while (!done) lws_service(ctx, 0);` needs no tick of its own. */
#ifndef SSM_AWS_HTTP_H
#define SSM_AWS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "ptimer.h"

struct lws_context;
typedef struct aws_http aws_http;
typedef struct aws_http_req aws_http_req;

typedef struct aws_http_config {
    const char *ca_file;  /* PEM bundle replacing the system store, or NULL */
    const char *proxy;    /* "[http://][user:pass@]host[:port]" or NULL */
    const char *no_proxy; /* NO_PROXY list or NULL */
} aws_http_config;

/* Fills cfg from AWS_CA_BUNDLE, HTTPS_PROXY/https_proxy, NO_PROXY/no_proxy
 * (pointers refer to the environment). */
void aws_http_config_from_env(aws_http_config *cfg);

/* Adds this client's vhosts to ctx (created with
 * LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT). NULL on failure. */
aws_http *aws_http_new(struct lws_context *ctx, const aws_http_config *cfg);
/* Cancels everything in flight (no callbacks) and removes the vhosts. Call
 * before lws_context_destroy(). */
void aws_http_free(aws_http *h);

#define AWS_HTTP_DEFAULT_MAX_RESPONSE (1u << 20)
#define AWS_HTTP_DEFAULT_TIMEOUT_MS 30000u

typedef struct aws_http_request {
    const char *method;   /* "GET", "POST", "PUT" */
    const char *url;      /* http:// or https:// */
    const char *headers;  /* extra "Name: value\r\n"..., or NULL (Host is added) */
    const void *body;
    size_t body_len;
    unsigned timeout_ms;  /* whole exchange; 0 = AWS_HTTP_DEFAULT_TIMEOUT_MS */
    size_t max_response;  /* 0 = AWS_HTTP_DEFAULT_MAX_RESPONSE */
} aws_http_request;

typedef struct aws_http_response {
    int status;        /* HTTP status, 0 when no response arrived */
    const char *body;  /* NUL-terminated for convenience; body_len excludes it */
    size_t body_len;
    const char *error; /* NULL on a complete response; else a short cause
                        * ("timeout", "response too large", lws's connect error) */
    const char *request_id; /* x-amzn-RequestId (else x-amz-request-id), "" when absent */
    const char *error_type; /* x-amzn-ErrorType, "" when absent */
} aws_http_response;

/* r and the strings it points to are valid only during the callback. */
typedef void (*aws_http_cb)(void *user, const aws_http_response *r);

/* Starts a request; the callback runs once, later, on the loop. Everything
 * in rq is copied. NULL when the request cannot even start (bad URL, OOM):
 * then the callback never runs. */
aws_http_req *aws_http_send(aws_http *h, const aws_http_request *rq, aws_http_cb cb, void *user);
/* The callback will not run; the connection is dropped. */
void aws_http_cancel(aws_http_req *r);

/* A timer on this client's vhost (ptimer.h: a timerfd, so its callback runs
 * after poll() like the requests' own). For the users of this client that
 * continue work "on the next loop turn". NULL on failure; free it with
 * ssm_ptimer_free() before the lws context is destroyed. */
ssm_ptimer *aws_http_timer_new(aws_http *h, ssm_ptimer_cb cb, void *user);

/* A descriptor watched on this client's vhost (a child's stdout pipe): cb
 * runs from the loop when fd is readable (hup false) and once when lws drops
 * it on hang-up or error (hup true; fd is closed by then). The watcher owns
 * fd from here on: aws_http_fd_free() closes it (lws does, on its next turn).
 * cb may free the watcher. NULL on failure (fd is then left open). */
typedef struct aws_http_fd aws_http_fd;
typedef void (*aws_http_fd_cb)(void *user, bool hup);
aws_http_fd *aws_http_fd_watch(aws_http *h, int fd, aws_http_fd_cb cb, void *user);
void aws_http_fd_free(aws_http_fd *w);

/* True when host[:port] must bypass the proxy: loopback always, else a
 * NO_PROXY entry matches ("*", exact host, ".suffix" or domain suffix,
 * optional ":port"). */
bool aws_http_no_proxy(const char *host, int port, const char *no_proxy);

#endif
