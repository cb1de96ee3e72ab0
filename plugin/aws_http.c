/* Asynchronous HTTP/1.1 requests on the shared lws loop. Each request owns
 * one timerfd (ptimer.h) that fires three times: to start it (so callbacks
 * never run inside aws_http_send), at its deadline, and to deliver the
 * result. A request is detached from its wsi (opaque pointer cleared) as
 * soon as it finishes, so a finished or cancelled request is never touched
 * by later lws callbacks.
 *
 * Why a timerfd and not lws_sul: lws 4.1 runs ripe suls at the top of
 * lws_service(), before its poll(), and sizes that poll from the sul list
 * only. A result delivered from a sul therefore sets the caller's "done"
 * just before the loop sleeps until the next unrelated timer (lws's own
 * 30 s housekeeping): `while (!done) lws_service(ctx, 0)` stalled for 30 s.
 * A timerfd event is serviced after poll(), and lws_service() returns right
 * after it. */
#include <openssl/ssl.h>

#include "aws_http.h"
#include "ptimer.h"
#include "transport.h"
#include "aws_sigv4.h" /* aws_url_parse */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>

struct aws_http {
    struct lws_context *ctx;
    struct lws_vhost *direct, *proxied;
    /* TLS is set up on a vhost only before its first https request: parsing
     * a CA bundle costs tens of milliseconds and megabytes of heap that a
     * session which never calls AWS must not pay. */
    SSL_CTX *tls_direct, *tls_proxied;
    char *ca_file;
    char *no_proxy;
    aws_http_req *reqs; /* in flight, doubly linked */
};

struct aws_http_req {
    aws_http *h;
    aws_http_req *prev, *next;
    struct lws *wsi;
    ssm_ptimer *timer;
    enum { REQ_QUEUED, REQ_RUNNING, REQ_DONE } phase; /* what the timer does next */
    const char *error; /* REQ_DONE: NULL, or error_buf */
    char error_buf[160];
    aws_http_cb cb;
    void *user;
    char method[8];
    aws_url url;
    char *path_query;
    char *headers;
    uint8_t *body; /* LWS_PRE headroom in front */
    size_t body_len, body_sent;
    char *resp;
    size_t resp_len, resp_cap, max_resp;
    unsigned timeout_ms;
    int status;
    char request_id[128], error_type[128]; /* response headers the API errors quote */
};

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len);
static int fd_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len);

#define HTTP_PROTOCOL "aws-http"
#define FD_PROTOCOL "aws-fd"

/* Our HTTP client protocol, the timers' and the watched descriptors' (lws
 * keeps a pointer to the list). */
static const struct lws_protocols *vhost_protocols(void)
{
    static struct lws_protocols list[4];
    if (!list[0].name) {
        list[0] = (struct lws_protocols){HTTP_PROTOCOL, http_cb, 0, 0, 0, NULL, 0};
        list[1] = *ssm_ptimer_protocol();
        list[2] = (struct lws_protocols){FD_PROTOCOL, fd_cb, 0, 0, 0, NULL, 0};
    }
    return list;
}

void aws_http_config_from_env(aws_http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    const char *v = getenv("AWS_CA_BUNDLE");
    cfg->ca_file = v && *v ? v : NULL;
    v = getenv("HTTPS_PROXY");
    if (!v || !*v)
        v = getenv("https_proxy");
    cfg->proxy = v && *v ? v : NULL;
    v = getenv("NO_PROXY");
    if (!v || !*v)
        v = getenv("no_proxy");
    cfg->no_proxy = v && *v ? v : NULL;
}

bool aws_http_no_proxy(const char *host, int port, const char *no_proxy)
{
    if (!strcasecmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1"))
        return true;
    if (!no_proxy)
        return false;
    size_t hl = strlen(host);
    const char *p = no_proxy;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        if (!n)
            break;
        char ent[256];
        if (n < sizeof ent) {
            memcpy(ent, p, n);
            ent[n] = '\0';
            int eport = 0;
            char *colon = strrchr(ent, ':');
            if (colon && !strchr(ent, ']') && colon == strchr(ent, ':')) {
                eport = atoi(colon + 1);
                *colon = '\0';
            }
            const char *e = ent[0] == '*' && ent[1] == '.' ? ent + 1 : ent;
            size_t el = strlen(e);
            bool hit = !strcmp(e, "*");
            if (!hit && el && (!eport || eport == port)) {
                const char *bare = *e == '.' ? e + 1 : e;
                size_t bl = strlen(bare);
                hit = !strcasecmp(host, bare) ||
                      (hl > bl && !strcasecmp(host + hl - bl, bare) && host[hl - bl - 1] == '.');
            }
            if (hit)
                return true;
        }
        p += n;
    }
    return false;
}

static struct lws_vhost *make_vhost(struct lws_context *ctx, const char *name, const char *ca,
                                    const char *proxy)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = vhost_protocols();
    info.vhost_name = name;
    (void)ca; /* TLS comes later, in ssm_tls_vhost_attach() */
    char proxybuf[512];
    if (proxy) {
        if (!strncasecmp(proxy, "http://", 7))
            proxy += 7;
        snprintf(proxybuf, sizeof proxybuf, "%s", proxy);
        size_t l = strlen(proxybuf);
        while (l && proxybuf[l - 1] == '/')
            proxybuf[--l] = '\0';
        info.http_proxy_address = proxybuf;
    }
    /* lws picks up $http_proxy for any vhost without one: hide it from the
     * direct vhost (NO_PROXY destinations, plain IMDS/ECS endpoints). */
    char *saved = NULL;
    const char *env = getenv("http_proxy");
    if (!proxy && env) {
        saved = strdup(env);
        unsetenv("http_proxy");
    }
    struct lws_vhost *vh = lws_create_vhost(ctx, &info);
    if (saved) {
        setenv("http_proxy", saved, 1);
        free(saved);
    }
    return vh;
}

aws_http *aws_http_new(struct lws_context *ctx, const aws_http_config *cfg)
{
    aws_http_config env;
    if (!cfg) {
        aws_http_config_from_env(&env);
        cfg = &env;
    }
    aws_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->ctx = ctx;
    h->direct = make_vhost(ctx, "aws-http", cfg->ca_file, NULL);
    if (cfg->proxy)
        h->proxied = make_vhost(ctx, "aws-http-proxy", cfg->ca_file, cfg->proxy);
    h->no_proxy = cfg->no_proxy ? strdup(cfg->no_proxy) : NULL;
    h->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    if (!h->direct || (cfg->proxy && !h->proxied)) {
        free(h->ca_file);
        free(h->no_proxy);
        free(h);
        return NULL;
    }
    return h;
}

ssm_ptimer *aws_http_timer_new(aws_http *h, ssm_ptimer_cb cb, void *user)
{
    return h && cb ? ssm_ptimer_new(h->direct, cb, user) : NULL;
}

static void req_free(aws_http_req *r)
{
    ssm_ptimer_free(r->timer);
    aws_url_free(&r->url);
    free(r->path_query);
    if (r->headers) { /* may carry Authorization / tokens */
        OPENSSL_cleanse(r->headers, strlen(r->headers));
        free(r->headers);
    }
    if (r->body) {
        OPENSSL_cleanse(r->body, LWS_PRE + r->body_len);
        free(r->body);
    }
    if (r->resp) {
        OPENSSL_cleanse(r->resp, r->resp_cap);
        free(r->resp);
    }
    free(r);
}

/* Lets go of r's wsi: lws kills it asynchronously and no longer finds r. */
static void req_drop_wsi(aws_http_req *r)
{
    if (r->wsi) {
        lws_set_opaque_user_data(r->wsi, NULL);
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        r->wsi = NULL;
    }
}

static void req_unlink(aws_http_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (r->h->reqs == r)
        r->h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Ends the exchange now; the result goes out from the timer on the next
 * loop turn (see the top of this file), never from inside an lws callback. */
static void req_finish(aws_http_req *r, const char *error)
{
    if (r->phase == REQ_DONE)
        return;
    req_drop_wsi(r);
    r->phase = REQ_DONE;
    if (error) {
        snprintf(r->error_buf, sizeof r->error_buf, "%s", error);
        r->error = r->error_buf;
    }
    ssm_ptimer_arm(r->timer, 0);
}

static void req_deliver(aws_http_req *r)
{
    req_unlink(r);
    aws_http_response resp = {
        .status = r->status,
        .body = r->resp ? r->resp : "",
        .body_len = r->resp_len,
        .error = r->error,
        .request_id = r->request_id,
        .error_type = r->error_type,
    };
    r->cb(r->user, &resp);
    req_free(r);
}

void aws_http_cancel(aws_http_req *r)
{
    if (!r)
        return;
    req_drop_wsi(r);
    req_unlink(r);
    req_free(r);
}

void aws_http_free(aws_http *h)
{
    if (!h)
        return;
    while (h->reqs)
        aws_http_cancel(h->reqs);
    /* The vhosts stay until the context goes: freeing them here could pull
     * them from under an lws callback that is running right now. Live
     * connections hold their own references to the SSL_CTXs. */
    SSL_CTX_free(h->tls_direct);
    SSL_CTX_free(h->tls_proxied);
    free(h->ca_file);
    free(h->no_proxy);
    free(h);
}

static void req_start(aws_http_req *r)
{
    aws_http *h = r->h;
    r->phase = REQ_RUNNING;
    ssm_ptimer_arm(r->timer, r->timeout_ms); /* the whole exchange's deadline */
    bool use_proxy = h->proxied && !aws_http_no_proxy(r->url.host, r->url.port, h->no_proxy);
    const char *tls_err = NULL;
    if (r->url.tls && ssm_tls_vhost_attach(use_proxy ? h->proxied : h->direct, h->ca_file,
                                           use_proxy ? &h->tls_proxied : &h->tls_direct,
                                           &tls_err)) {
        req_finish(r, tls_err);
        return;
    }
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = h->ctx;
    i.vhost = use_proxy ? h->proxied : h->direct;
    i.address = r->url.host;
    i.port = r->url.port;
    i.path = r->path_query;
    i.host = r->url.authority;
    i.method = r->method;
    i.protocol = HTTP_PROTOCOL;
    i.local_protocol_name = HTTP_PROTOCOL;
    i.alpn = "http/1.1";
    i.ssl_connection = (r->url.tls ? LCCSCF_USE_SSL : 0) | LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    i.opaque_user_data = r;
    i.pwsi = &r->wsi;
    /* CLIENT_CONNECTION_ERROR may run inside this call: then r is done. */
    if (!lws_client_connect_via_info(&i))
        req_finish(r, "connect failed");
}

static void on_timer(void *user)
{
    aws_http_req *r = user;
    switch (r->phase) {
    case REQ_QUEUED:
        req_start(r);
        break;
    case REQ_RUNNING:
        req_finish(r, "timeout");
        break;
    case REQ_DONE:
        req_deliver(r);
        break;
    }
}

aws_http_req *aws_http_send(aws_http *h, const aws_http_request *rq, aws_http_cb cb, void *user)
{
    if (!h || !rq || !rq->url || !cb || (rq->body_len && !rq->body))
        return NULL;
    aws_http_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->h = h;
    r->cb = cb;
    r->user = user;
    snprintf(r->method, sizeof r->method, "%s", rq->method ? rq->method : "GET");
    r->timeout_ms = rq->timeout_ms ? rq->timeout_ms : AWS_HTTP_DEFAULT_TIMEOUT_MS;
    r->max_resp = rq->max_response ? rq->max_response : AWS_HTTP_DEFAULT_MAX_RESPONSE;
    if (aws_url_parse(rq->url, &r->url) != 0 ||
        !(!strcmp(r->url.scheme, "http") || !strcmp(r->url.scheme, "https"))) {
        aws_url_free(&r->url);
        free(r);
        return NULL;
    }
    size_t pq = strlen(r->url.path) + strlen(r->url.query) + 2;
    r->path_query = malloc(pq);
    if (r->path_query)
        snprintf(r->path_query, pq, "%s%s%s", r->url.path, *r->url.query ? "?" : "", r->url.query);
    r->headers = strdup(rq->headers ? rq->headers : "");
    r->body = malloc(LWS_PRE + rq->body_len + 1);
    r->timer = aws_http_timer_new(h, on_timer, r);
    if (!r->path_query || !r->headers || !r->body || !r->timer) {
        req_free(r);
        return NULL;
    }
    if (rq->body_len)
        memcpy(r->body + LWS_PRE, rq->body, rq->body_len);
    r->body_len = rq->body_len;
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    ssm_ptimer_arm(r->timer, 0);
    return r;
}

/* "Name: value\r\n" lines -> lws header calls. */
static int add_headers(struct lws *wsi, aws_http_req *r, unsigned char **p, unsigned char *end)
{
    const char *s = r->headers;
    while (*s) {
        const char *eol = strstr(s, "\r\n");
        size_t ll = eol ? (size_t)(eol - s) : strlen(s);
        const char *colon = memchr(s, ':', ll);
        if (colon) {
            char name[128];
            size_t nl = (size_t)(colon - s) + 1; /* keep the ':' as lws wants */
            if (nl >= sizeof name)
                return -1;
            memcpy(name, s, nl);
            name[nl] = '\0';
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                            (const unsigned char *)v, (int)(s + ll - v), p, end))
                return -1;
        }
        s += ll + (eol ? 2 : 0);
    }
    if (strcmp(r->method, "GET") != 0) {
        char cl[24];
        int n = snprintf(cl, sizeof cl, "%zu", r->body_len);
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"content-length:",
                                        (const unsigned char *)cl, n, p, end))
            return -1;
        if (r->body_len) {
            lws_client_http_body_pending(wsi, 1);
            lws_callback_on_writable(wsi);
        }
    }
    return 0;
}

static int append_body(aws_http_req *r, const void *in, size_t len)
{
    if (r->resp_len + len > r->max_resp)
        return -1;
    if (r->resp_len + len + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 4096;
        while (cap < r->resp_len + len + 1)
            cap *= 2;
        char *n = malloc(cap); /* not realloc: the old copy gets wiped */
        if (!n)
            return -1;
        if (r->resp) {
            memcpy(n, r->resp, r->resp_len);
            OPENSSL_cleanse(r->resp, r->resp_cap);
            free(r->resp);
        }
        r->resp = n;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, in, len);
    r->resp_len += len;
    r->resp[r->resp_len] = '\0';
    return 0;
}

/* A response header by its lower-case "name:"; -1 (dst "") when absent or
 * longer than dst. */
static int copy_header(struct lws *wsi, const char *name, char *dst, size_t cap)
{
    dst[0] = '\0';
    int nl = (int)strlen(name);
    int l = lws_hdr_custom_length(wsi, name, nl);
    if (l <= 0 || (size_t)l >= cap)
        return -1;
    if (lws_hdr_custom_copy(wsi, dst, (int)cap, name, nl) < 0) {
        dst[0] = '\0';
        return -1;
    }
    return 0;
}

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    (void)user;
    aws_http_req *r = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (r) {
            char why[160];
            /* lws words a TLS failure from SSL_get_error()'s value only;
             * the certificate check says what was wrong. */
            SSL *ssl = lws_get_ssl(wsi);
            long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
            if (v != X509_V_OK)
                snprintf(why, sizeof why, "TLS certificate verify failed: %s",
                         X509_verify_cert_error_string(v));
            else
                snprintf(why, sizeof why, "%s", in ? (const char *)in : "connection error");
            r->wsi = NULL;
            lws_set_opaque_user_data(wsi, NULL);
            req_finish(r, why);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (!r)
            return -1;
        return add_headers(wsi, r, (unsigned char **)in, (unsigned char *)in + len) ? -1 : 0;
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
        if (!r || r->body_sent >= r->body_len)
            return 0;
        size_t chunk = r->body_len - r->body_sent;
        if (chunk > 4096)
            chunk = 4096;
        bool last = r->body_sent + chunk == r->body_len;
        /* The bytes before this chunk were sent already: they serve as LWS_PRE. */
        if (lws_write(wsi, r->body + LWS_PRE + r->body_sent, chunk,
                      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)chunk)
            return -1;
        r->body_sent += chunk;
        if (last)
            lws_client_http_body_pending(wsi, 0);
        else
            lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (r) {
            r->status = (int)lws_http_client_http_response(wsi);
            if (copy_header(wsi, "x-amzn-requestid:", r->request_id, sizeof r->request_id) < 0)
                copy_header(wsi, "x-amz-request-id:", r->request_id, sizeof r->request_id);
            copy_header(wsi, "x-amzn-errortype:", r->error_type, sizeof r->error_type);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 4096];
        char *px = buf + LWS_PRE;
        int lenx = (int)sizeof buf - LWS_PRE;
        if (lws_http_client_read(wsi, &px, &lenx) < 0)
            return -1;
        return 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (r && append_body(r, in, len) != 0) {
            req_finish(r, "response too large"); /* also schedules the kill */
            return -1;
        }
        return 0;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (r)
            req_finish(r, NULL);
        return -1; /* one request per connection: close it */
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (r) {
            r->wsi = NULL;
            lws_set_opaque_user_data(wsi, NULL);
            /* No length framing: the close ends the body. */
            req_finish(r, r->status ? NULL : "connection closed");
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- watched descriptors ---- */

struct aws_http_fd {
    struct lws *wsi;
    aws_http_fd_cb cb;
    void *user;
};

static int fd_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    aws_http_fd *w = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (!w)
            return -1; /* released: let lws close it now rather than poll it */
        w->cb(w->user, false);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (w) {
            lws_set_opaque_user_data(wsi, NULL);
            w->wsi = NULL;
            w->cb(w->user, true);
        }
        return 0;
    default:
        return 0;
    }
}

aws_http_fd *aws_http_fd_watch(aws_http *h, int fd, aws_http_fd_cb cb, void *user)
{
    if (!h || fd < 0 || !cb)
        return NULL;
    aws_http_fd *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->cb = cb;
    w->user = user;
    lws_sock_file_fd_type d;
    d.filefd = fd;
    w->wsi = lws_adopt_descriptor_vhost(h->direct, LWS_ADOPT_RAW_FILE_DESC, d, FD_PROTOCOL, NULL);
    if (!w->wsi) {
        free(w);
        return NULL;
    }
    lws_set_opaque_user_data(w->wsi, w);
    return w;
}

void aws_http_fd_free(aws_http_fd *w)
{
    if (!w)
        return;
    if (w->wsi) { /* lws closes the descriptor with its wsi, on its next turn */
        lws_set_opaque_user_data(w->wsi, NULL);
        lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    free(w);
}
