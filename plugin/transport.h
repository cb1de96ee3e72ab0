/* The websocket client: one connection at a time to the StreamUrl (ws:// or
 * wss://, used verbatim), TLS verified against the system store or a CA
 * bundle, optional HTTP CONNECT proxy, keep-alive pings. It knows nothing of
 * the protocol: the session gives it the OpenDataChannel text and pulls
 * binary frames from the channel when the socket is writable. */
#ifndef SSM_TRANSPORT_H
#define SSM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws_context;
struct lws_protocols;
typedef struct ssm_transport ssm_transport;

typedef struct ssm_transport_ops {
    /* Upgrade done; the OpenDataChannel text is already queued first. */
    void (*on_open)(void *user);
    /* One complete websocket message (text or binary). */
    void (*on_message)(void *user, const uint8_t *p, size_t n);
    /* Copy one binary frame to send into buf; return its length, 0 if none. */
    size_t (*pull)(void *user, uint8_t *buf, size_t cap);
    /* More frames are ready to pull right now. */
    bool (*want_write)(void *user);
    /* The connection attempt failed (was_open false) or an open connection
     * dropped (was_open true). The transport is idle afterwards. why is a
     * short human-readable cause. Not called after ssm_transport_close(). */
    void (*on_down)(void *user, const char *why, bool was_open);
    /* Optional: a read batch begins (true) / ends (false). The messages and
     * pulls in between happen within microseconds of each other. */
    void (*on_batch)(void *user, bool begin);
} ssm_transport_ops;

typedef struct ssm_transport_config {
    const char *ca_file;   /* PEM bundle replacing the system store, or NULL */
    const char *proxy;     /* "[http://][user:pass@]host[:port]" or NULL */
    const char *no_proxy;  /* NO_PROXY list or NULL */
    size_t max_frame;      /* largest frame pull() can produce */
    unsigned connect_timeout_s; /* TCP + proxy + TLS + upgrade; 0 = 45 */
    unsigned ping_interval_s;   /* 0 = 300 */
} ssm_transport_config;

/* Reads the proxy/CA environment into cfg per PROTOCOL.md §3.2:
 * HTTPS_PROXY/https_proxy, NO_PROXY/no_proxy, AWS_CA_BUNDLE then
 * SSL_CERT_FILE. Pointers refer to the environment. */
void ssm_transport_config_from_env(ssm_transport_config *cfg);

/* The websocket protocol: the event loop lists it first on the first vhost
 * it creates, where lws reports TLS certificate verification. */
const struct lws_protocols *ssm_transport_protocol(void);

/* Creates the client vhost. Returns NULL with *err set on failure. */
ssm_transport *ssm_transport_new(struct lws_context *ctx, const ssm_transport_config *cfg,
                                 const ssm_transport_ops *ops, void *user, const char **err);
void ssm_transport_free(ssm_transport *t);

/* Starts connecting. open_msg is copied (the first text frame); headers is
 * "Name: value\r\n"* to add to the upgrade (or NULL); copied. Returns 0, or
 * -1 with *err set (bad URL...). */
int ssm_transport_connect(ssm_transport *t, const char *url, const char *open_msg,
                          const char *headers, const char **err);
/* The channel has something to send: ask for a writable callback. */
void ssm_transport_request_write(ssm_transport *t);
/* Closes the current connection without reporting on_down. */
void ssm_transport_close(ssm_transport *t);
bool ssm_transport_is_open(const ssm_transport *t);
/* An idle connection gives back what its bursts touched: release() gets the
 * read and frame buffers (their contents are dead between batches) and
 * OpenSSL frees its record buffers (up to 64 KiB read, 16 KiB write), all
 * made again on the next read or write. */
void ssm_transport_trim(ssm_transport *t, void (*release)(void *ctx, void *p, size_t n),
                        void *ctx);

/* Initialises OpenSSL as lws would (the system openssl.cnf included) but
 * without its error-string tables: 330 KiB of RSS and 0.3 ms of every start.
 * Nothing shows those texts: certificate failures are worded from the
 * verify result, and lws 4.1 words other handshake failures from
 * SSL_get_error()'s value ("error:00000001:lib(0)::reason(1)" either way).
 * Call before lws_create_context. */
void ssm_openssl_init(void);

/* A client SSL_CTX verifying peers against ca_file when set, else the
 * system store, read lazily through OpenSSL's hashed certificate directory
 * ($SSL_CERT_DIR or the default) when it has hash links, so no bundle is
 * parsed up front; without them OpenSSL's default paths are loaded (eager).
 * NULL with *err set on failure. */
struct ssl_ctx_st *ssm_tls_client_ctx_new(const char *ca_file, const char **err);

/* Gives vh client TLS on first use: when *slot is NULL, makes a context with
 * ssm_tls_client_ctx_new(ca_file) and installs it on vh; lws still sets SNI,
 * the host name check and its verify callback per connection. The caller
 * frees *slot (SSL_CTX_free) once the vhost is no longer used. 0, or -1 with
 * *err set. */
struct lws_vhost;
int ssm_tls_vhost_attach(struct lws_vhost *vh, const char *ca_file, struct ssl_ctx_st **slot,
                         const char **err);

/* Decides whether host is exempt from proxying: loopback names/addresses
 * always; else matches a NO_PROXY entry ("*", exact, ".suffix" or "suffix"
 * domain match, optional ":port"). Pure; exposed for tests. */
bool ssm_transport_no_proxy(const char *host, int port, const char *no_proxy);

#endif
