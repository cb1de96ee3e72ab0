/* AWS Signature Version 4, header form (PROTOCOL-NEWEST.md §1.3, PROTOCOL.md
 * §14.1). Pure functions: no I/O, time comes in as an argument. */
#ifndef SSM_AWS_SIGV4_H
#define SSM_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define AWS_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct aws_sigv4_header {
    const char *name, *value;
} aws_sigv4_header;

typedef struct aws_sigv4_input {
    const char *method;  /* "GET", "POST" */
    const char *host;    /* value of the signed Host header */
    const char *path;    /* raw path as it appears in the URL; "" means "/" */
    const char *query;   /* raw query without '?', NULL/"" for none */
    const aws_sigv4_header *headers; /* further headers to sign (not host, */
    size_t n_headers;                /* x-amz-date, x-amz-security-token)   */
    const void *body;    /* NULL with body_len 0: the empty-payload hash */
    size_t body_len;
    const char *region, *service;
    const char *access_key_id, *secret_access_key;
    const char *session_token; /* NULL/"": not signed, not sent */
    time_t now;                /* wall clock, seconds since the epoch (UTC) */
} aws_sigv4_input;

typedef struct aws_sigv4_output {
    char amz_date[17];       /* YYYYMMDDTHHMMSSZ */
    char authorization[1024];
    char signature[65];
} aws_sigv4_output;

/* Signs. creq/sts (optional, may be NULL) receive the canonical request and
 * string to sign when they fit, for tests and debugging. Returns 0, or -1 on
 * bad input (missing fields, header name with ':' or control characters,
 * result too long). */
int aws_sigv4_sign(const aws_sigv4_input *in, aws_sigv4_output *out, char *creq,
                   size_t creq_cap, char *sts, size_t sts_cap);

/* Canonical pieces, exposed for tests. Each returns a malloc'd string or NULL. */
char *aws_sigv4_canonical_uri(const char *raw_path);     /* encodes once more */
char *aws_sigv4_canonical_query(const char *raw_query); /* form-decode, strict re-encode */

/* Lowercase hex SHA-256 of data into out[65]. */
void aws_sha256_hex(const void *data, size_t n, char out[65]);

/* A URL split into pieces pointing at caller-owned copies (all NUL-terminated;
 * absent pieces are ""). */
typedef struct aws_url {
    char scheme[16];
    char host[256];      /* without port; IPv6 without brackets */
    char authority[272]; /* host[:port] exactly as written, minus userinfo */
    int port;            /* explicit or scheme default */
    bool tls;            /* https / wss */
    char *path;          /* malloc'd raw path ("/" when empty) */
    char *query;         /* malloc'd raw query without '?' */
} aws_url;
/* Returns 0 or -1 (unsupported scheme, bad port, oversized host). */
int aws_url_parse(const char *url, aws_url *out);
void aws_url_free(aws_url *u);

/* The websocket upgrade case: GET <url> with only Host (and the SigV4
 * headers) signed, empty payload hash, no X-Amz-Content-Sha256. */
int aws_sigv4_sign_get_url(const char *url, const char *region, const char *service,
                           const char *access_key_id, const char *secret_access_key,
                           const char *session_token, time_t now, aws_sigv4_output *out);

#endif
