/* libwebsockets client for the data channel. One wsi at a time. lws dials
 * (proxy, TLS, upgrade); once the connection is established we drive the
 * websocket framing ourselves (ws_direct.c): frames out are built and
 * masked here and handed to lws as raw bytes, frames in are read from a
 * duplicate of the socket and parsed by ssm_ws_frame. Until then, and if
 * that set-up fails, lws frames and parses (every frame we send is copied
 * into our own LWS_PRE-headroom buffer; lws masks in place). */
#include "transport.h"
#include "transport_priv.h"

#include <ctype.h>
#include <dirent.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* lws reports certificate verification to protocol 0 of the first vhost
 * (ssm_transport_protocol() heads the loop's protocol list), with the
 * connecting wsi: find its transport by vhost, since an AWS API call's
 * connection may be verified through here too. */
static ssm_transport *all;

static ssm_transport *by_vhost(struct lws_vhost *vh)
{
    for (ssm_transport *t = all; t; t = t->next)
        if (t->vh == vh)
            return t;
    return NULL;
}

/* ---- proxy decision ---- */

static bool is_loopback(const char *host)
{
    if (!strcasecmp(host, "localhost") || !strcmp(host, "::1") || !strcmp(host, "[::1]"))
        return true;
    size_t n = strlen(host);
    if (n > 10 && !strcasecmp(host + n - 10, ".localhost"))
        return true;
    return !strncmp(host, "127.", 4);
}

bool ssm_transport_no_proxy(const char *host, int port, const char *no_proxy)
{
    if (!host || !*host)
        return true;
    if (is_loopback(host))
        return true;
    if (!no_proxy || !*no_proxy)
        return false;
    const char *p = no_proxy;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        char ent[256];
        size_t len = (size_t)(e - p);
        if (len && len < sizeof ent) {
            memcpy(ent, p, len);
            ent[len] = 0;
            if (!strcmp(ent, "*"))
                return true;
            /* optional ":port": "[v6]:p" or "host:p" (a bare IPv6 has several ':') */
            int want_port = 0;
            char *colon = NULL;
            if (ent[0] == '[') {
                char *rb = strchr(ent, ']');
                if (rb && rb[1] == ':')
                    colon = rb + 1;
                if (rb)
                    *rb = 0;
                memmove(ent, ent + 1, strlen(ent)); /* colon still points past it */
            } else if (strchr(ent, ':') && strchr(ent, ':') == strrchr(ent, ':'))
                colon = strchr(ent, ':');
            if (colon) {
                want_port = atoi(colon + 1);
                *colon = 0;
            }
            const char *d = ent;
            if (*d == '.')
                d++;
            if (*d == '*' && d[1] == '.')
                d += 2;
            size_t hl = strlen(host), dl = strlen(d);
            bool match = false;
            if (dl && hl == dl && !strcasecmp(host, d))
                match = true;
            else if (dl && hl > dl && host[hl - dl - 1] == '.' && !strcasecmp(host + hl - dl, d))
                match = true;
            if (match && (!want_port || want_port == port))
                return true;
        }
        p = e;
    }
    return false;
}

/* "[http://][user:pass@]host[:port][/]" -> "user:pass@host:port" for
 * lws_set_proxy (user/pass percent-decoded). Returns 0 or -1 with why. */
static int proxy_for_lws(const char *in, char *out, size_t cap, const char **why)
{
    const char *p = in;
    const char *sep = strstr(p, "://");
    if (sep) {
        size_t sl = (size_t)(sep - p);
        if (sl == 4 && !strncasecmp(p, "http", 4)) {
            p = sep + 3;
        } else {
            *why = "unsupported proxy scheme (only http:// proxies can carry the data channel)";
            return -1;
        }
    }
    char tmp[512];
    size_t n = strcspn(p, "/?#");
    if (n >= sizeof tmp) {
        *why = "proxy URL too long";
        return -1;
    }
    memcpy(tmp, p, n);
    tmp[n] = 0;
    char *hostpart = tmp, *auth = NULL;
    char *at = strrchr(tmp, '@');
    if (at) {
        *at = 0;
        auth = tmp;
        hostpart = at + 1;
    }
    /* percent-decode the credentials in place */
    if (auth) {
        char *r = auth, *w = auth;
        while (*r) {
            if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
                char h[3] = {r[1], r[2], 0};
                *w++ = (char)strtol(h, NULL, 16);
                r += 3;
            } else
                *w++ = *r++;
        }
        *w = 0;
    }
    bool has_port;
    if (hostpart[0] == '[')
        has_port = strstr(hostpart, "]:") != NULL;
    else
        has_port = strchr(hostpart, ':') != NULL;
    if (!*hostpart) {
        *why = "proxy URL has no host";
        return -1;
    }
    int w = snprintf(out, cap, "%s%s%s%s", auth ? auth : "", auth ? "@" : "", hostpart,
                     has_port ? "" : ":80");
    if (w < 0 || (size_t)w >= cap) {
        *why = "proxy URL too long";
        return -1;
    }
    return 0;
}

void ssm_transport_config_from_env(ssm_transport_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    const char *v = getenv("HTTPS_PROXY");
    if (!v || !*v)
        v = getenv("https_proxy");
    cfg->proxy = (v && *v) ? v : NULL;
    v = getenv("NO_PROXY");
    if (!v || !*v)
        v = getenv("no_proxy");
    cfg->no_proxy = v;
    v = getenv("AWS_CA_BUNDLE");
    if (!v || !*v)
        v = getenv("SSL_CERT_FILE");
    cfg->ca_file = (v && *v) ? v : NULL;
}

/* The OpenDataChannel text holds the token, the headers a signature. */
static void wipe_free(char *p)
{
    if (p) {
        OPENSSL_cleanse(p, strlen(p));
        free(p);
    }
}

/* ---- lws glue ---- */

void ssm_transport_set_why(ssm_transport *t, const char *what)
{
    snprintf(t->why, sizeof t->why, "%s", what && *what ? what : "connection failed");
}

static void went_down(ssm_transport *t, bool was_open)
{
    ssm_wsd_stop(t);
    t->wsi = NULL;
    t->open = false;
    lws_sul_cancel(&t->sul_ping);
    if (t->closing) {
        t->closing = false;
        return;
    }
    if (t->ops->on_down)
        t->ops->on_down(t->user, t->why, was_open);
}

static void ping_timer(lws_sorted_usec_list_t *sul)
{
    ssm_transport *t = lws_container_of(sul, ssm_transport, sul_ping);
    if (!t->open || !t->wsi)
        return;
    t->ping_due = true;
    lws_callback_on_writable(t->wsi);
    lws_sul_schedule(t->ctx, 0, &t->sul_ping, ping_timer,
                     (lws_usec_t)t->ping_interval_s * LWS_US_PER_SEC);
}

static int on_writeable(ssm_transport *t, struct lws *wsi)
{
    if (t->direct)
        return ssm_wsd_write_now(t, wsi);
    uint8_t *body = t->tx + LWS_PRE;
    if (!t->open_sent) {
        size_t n = strlen(t->open_msg);
        if (n > t->tx_cap) {
            ssm_transport_set_why(t, "OpenDataChannel message too large");
            return -1;
        }
        memcpy(body, t->open_msg, n);
        int w = lws_write(wsi, body, n, LWS_WRITE_TEXT);
        OPENSSL_cleanse(body, n); /* the token */
        if (w < (int)n) {
            ssm_transport_set_why(t, "websocket write failed");
            return -1;
        }
        t->open_sent = true;
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (t->ping_due) {
        t->ping_due = false;
        memcpy(body, PING_PAYLOAD, sizeof PING_PAYLOAD - 1);
        if (lws_write(wsi, body, sizeof PING_PAYLOAD - 1, LWS_WRITE_PING) < 0) {
            ssm_transport_set_why(t, "websocket ping failed");
            return -1;
        }
        lws_callback_on_writable(wsi);
        return 0;
    }
    size_t n = t->ops->pull(t->user, body, t->tx_cap);
    if (n) {
        if (lws_write(wsi, body, n, LWS_WRITE_BINARY) < (int)n) {
            ssm_transport_set_why(t, "websocket write failed");
            return -1;
        }
    }
    if (t->ops->want_write(t->user))
        lws_callback_on_writable(wsi);
    return 0;
}

static void on_receive(ssm_transport *t, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        t->rx_len = 0;
        t->rx_overflow = false;
    }
    if (!t->rx_overflow) {
        if (t->rx_len + len > RX_MAX) {
            t->rx_overflow = true;
            LOGW("dropping an oversized websocket message");
        } else {
            memcpy(t->rx + t->rx_len, in, len);
            t->rx_len += len;
        }
    }
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        if (!t->rx_overflow)
            t->ops->on_message(t->user, t->rx, t->rx_len);
        t->rx_len = 0;
        t->rx_overflow = false;
    }
}

static int ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *u, void *in, size_t len)
{
    (void)u;
    ssm_transport *t = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        if (!len && u) {
            ssm_transport *v = by_vhost(lws_get_vhost(wsi));
            int e = X509_STORE_CTX_get_error((X509_STORE_CTX *)u);
            if (v)
                snprintf(v->tls_why, sizeof v->tls_why, "TLS certificate verify failed: %s",
                         X509_verify_cert_error_string(e));
        }
        return 0; /* never override the verdict */
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!t || !t->headers)
            return 0;
        char **p = (char **)in;
        size_t hl = strlen(t->headers);
        if (hl + 1 > len) {
            ssm_transport_set_why(t, "upgrade headers too long");
            return -1;
        }
        memcpy(*p, t->headers, hl);
        *p += hl;
        return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!t)
            return -1;
        t->open = true;
        t->open_sent = false;
        t->ping_due = true; /* right after connecting, then every interval */
        t->rx_len = 0;
        lws_sul_schedule(t->ctx, 0, &t->sul_ping, ping_timer,
                         (lws_usec_t)t->ping_interval_s * LWS_US_PER_SEC);
        LOGI("websocket open");
        if (ssm_wsd_start(t, wsi) < 0)
            LOGD("websocket framing stays with lws");
        lws_callback_on_writable(wsi);
        t->ops->on_open(t->user);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (t && t->wsi == wsi)
            on_receive(t, wsi, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!t || t->wsi != wsi || t->closing)
            return t && t->closing ? -1 : 0;
        return on_writeable(t, wsi);
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (t) {
            char buf[128];
            unsigned code = len >= 2 ? ((unsigned)((uint8_t *)in)[0] << 8 | ((uint8_t *)in)[1]) : 0;
            snprintf(buf, sizeof buf, "the service closed the websocket (code %u)", code);
            ssm_transport_set_why(t, buf);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (t && t->wsi == wsi) {
            if (t->tls_why[0])
                ssm_transport_set_why(t, t->tls_why);
            else if (in && strstr((const char *)in, "SSL")) {
                char buf[240];
                snprintf(buf, sizeof buf, "TLS handshake failed (%s)", (const char *)in);
                ssm_transport_set_why(t, buf);
            } else
                ssm_transport_set_why(t, in ? (const char *)in : "connection failed");
            LOGW("websocket connection error: %s", t->why);
            went_down(t, false);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (t && t->wsi == wsi) {
            ssm_wsd_drain(t); /* lws may see a reset before we read */
            if (!t->why[0])
                ssm_transport_set_why(t, "websocket closed");
            LOGW("websocket closed: %s", t->why);
            went_down(t, true);
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols ws_protocols[] = {
    {"ssm-ws", ws_cb, 0, 4096, 0, NULL, 0},
    {SSM_WSD_PROTOCOL, ssm_wsd_reader_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

const struct lws_protocols *ssm_transport_protocol(void)
{
    return &ws_protocols[0];
}

ssm_transport *ssm_transport_new(struct lws_context *ctx, const ssm_transport_config *cfg,
                                 const ssm_transport_ops *ops, void *user, const char **err)
{
    ssm_transport *t = calloc(1, sizeof *t);
    if (!t) {
        *err = "out of memory";
        return NULL;
    }
    t->ctx = ctx;
    t->ops = ops;
    t->user = user;
    t->ping_interval_s = cfg->ping_interval_s ? cfg->ping_interval_s : 300;
    t->tx_cap = cfg->max_frame < 8192 ? 8192 : cfg->max_frame;
    t->fd = -1;
    t->tm_fd = -1;
    t->tx = malloc(LWS_PRE + t->tx_cap);
    t->rx = malloc(RX_MAX);
    if (!t->tx || !t->rx) {
        *err = "out of memory";
        ssm_transport_free(t);
        return NULL;
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.vhost_name = "ssm-ws";
    info.protocols = ws_protocols;
    /* No client TLS here: loading the CA store costs tens of milliseconds
     * at launch; it is set up at the first wss:// connect (tls_setup). */
    info.options = 0;
    /* §3.1: 45 s for TCP + proxy CONNECT + TLS + upgrade. */
    info.timeout_secs = cfg->connect_timeout_s ? cfg->connect_timeout_s : 45;
    info.connect_timeout_secs = info.timeout_secs;
    info.ka_time = 15;
    info.ka_interval = 15;
    info.ka_probes = 9;
    /* lws would read http_proxy itself when we pass no proxy; that variable
     * does not apply to wss (§3.2), so hide it while the vhost is made. */
    char *saved_http_proxy = NULL;
    const char *hp = getenv("http_proxy");
    if (hp) {
        saved_http_proxy = strdup(hp);
        unsetenv("http_proxy");
    }
    t->vh = lws_create_vhost(ctx, &info);
    if (t->vh) {
        t->next = all;
        all = t;
    }
    if (saved_http_proxy) {
        setenv("http_proxy", saved_http_proxy, 1);
        free(saved_http_proxy);
    }
    if (!t->vh) {
        *err = "cannot set up the websocket client";
        ssm_transport_free(t);
        return NULL;
    }
    if (cfg->ca_file && !(t->ca_file = strdup(cfg->ca_file))) {
        *err = "out of memory";
        ssm_transport_free(t);
        return NULL;
    }
    return t;
}

void ssm_transport_free(ssm_transport *t)
{
    if (!t)
        return;
    lws_sul_cancel(&t->sul_ping);
    for (ssm_transport **pp = &all; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    ssm_wsd_stop(t);
    ssm_wsd_free(t);
    if (t->wsi)
        lws_set_opaque_user_data(t->wsi, NULL);
    free(t->tx);
    free(t->rx);
    wipe_free(t->open_msg);
    wipe_free(t->headers);
    free(t->url_copy);
    free(t->ca_file);
    SSL_CTX_free(t->tls_ctx); /* live connections hold their own references */
    free(t);
}

/* Sets the proxy for this connection, or none: HTTPS_PROXY for wss, and as
 * Go does for plain ws, HTTP_PROXY (§3.2). */
static int apply_proxy(ssm_transport *t, bool tls, const char *host, int port, const char **err)
{
    ssm_transport_config env;
    ssm_transport_config_from_env(&env);
    if (!tls) {
        const char *v = getenv("HTTP_PROXY");
        if (!v || !*v)
            v = getenv("http_proxy");
        env.proxy = (v && *v) ? v : NULL;
    }
    if (!env.proxy || ssm_transport_no_proxy(host, port, env.no_proxy)) {
        /* An empty address makes lws connect directly. */
        lws_set_proxy(t->vh, ":0");
        return 0;
    }
    char lp[512];
    if (proxy_for_lws(env.proxy, lp, sizeof lp, err) < 0)
        return -1;
    if (lws_set_proxy(t->vh, lp) < 0) {
        *err = "cannot use the configured proxy";
        return -1;
    }
    LOGI("using a proxy for the data channel");
    return 0;
}

/* True when dir holds OpenSSL hash links ("xxxxxxxx.N"): then certificates
 * can be looked up lazily, one file per issuer, instead of parsing the whole
 * bundle (about 140 certificates) up front. */
static bool has_hash_links(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        const char *n = e->d_name;
        size_t i = 0;
        while (i < 8 && isxdigit((unsigned char)n[i]))
            i++;
        found = i == 8 && n[8] == '.' && isdigit((unsigned char)n[9]);
    }
    closedir(d);
    return found;
}

void ssm_openssl_init(void)
{
    /* lws's global TLS init loads them first otherwise; once declined here,
     * later requests to load them do nothing. */
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_SSL_STRINGS |
                         OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS,
                     NULL);
}

SSL_CTX *ssm_tls_client_ctx_new(const char *ca_file, const char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        *err = "cannot set up TLS";
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file && !SSL_CTX_load_verify_file(ctx, ca_file)) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        *err = "cannot set up TLS (is the CA bundle readable PEM?)";
        return NULL;
    }
    /* A named bundle replaces the system store, as in the AWS SDKs and Go. */
    const char *dir = getenv(X509_get_default_cert_dir_env());
    if (!dir || !*dir)
        dir = X509_get_default_cert_dir();
    if (ca_file)
        ;
    else if (has_hash_links(dir))
        SSL_CTX_load_verify_dir(ctx, dir); /* lazy: only the certificates a chain needs */
    else
        SSL_CTX_set_default_verify_paths(ctx);
    ERR_clear_error();
    return ctx;
}

int ssm_tls_vhost_attach(struct lws_vhost *vh, const char *ca_file, SSL_CTX **slot,
                         const char **err)
{
    if (*slot)
        return 0;
    SSL_CTX *ctx = ssm_tls_client_ctx_new(ca_file, err);
    if (!ctx)
        return -1;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.provided_client_ssl_ctx = ctx;
    if (lws_init_vhost_client_ssl(&info, vh)) {
        SSL_CTX_free(ctx);
        *err = "cannot set up TLS";
        return -1;
    }
    *slot = ctx;
    return 0;
}

/* Client TLS for our vhost, made at the first wss:// connect. */
static int tls_setup(ssm_transport *t, const char **err)
{
    return ssm_tls_vhost_attach(t->vh, t->ca_file, &t->tls_ctx, err);
}

int ssm_transport_connect(ssm_transport *t, const char *url, const char *open_msg,
                          const char *headers, const char **err)
{
    if (t->wsi) {
        *err = "already connected";
        return -1;
    }
    wipe_free(t->open_msg);
    wipe_free(t->headers);
    free(t->url_copy);
    t->open_msg = strdup(open_msg);
    t->headers = headers && *headers ? strdup(headers) : NULL;
    t->url_copy = strdup(url);
    if (!t->open_msg || !t->url_copy) {
        *err = "out of memory";
        return -1;
    }
    /* Host header: the URL authority exactly as written (the signature covers it). */
    const char *a = strstr(url, "://");
    if (!a) {
        *err = "StreamUrl is not a ws:// or wss:// URL";
        return -1;
    }
    a += 3;
    size_t al = strcspn(a, "/?#");
    const char *at = memchr(a, '@', al);
    if (at) {
        al -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    if (al == 0 || al >= sizeof t->host_hdr) {
        *err = "StreamUrl has no usable host";
        return -1;
    }
    memcpy(t->host_hdr, a, al);
    t->host_hdr[al] = 0;

    const char *prot, *address, *path;
    int port;
    if (lws_parse_uri(t->url_copy, &prot, &address, &port, &path)) {
        *err = "cannot parse StreamUrl";
        return -1;
    }
    bool tls;
    if (!strcmp(prot, "wss"))
        tls = true;
    else if (!strcmp(prot, "ws"))
        tls = false;
    else {
        *err = "StreamUrl scheme must be wss:// or ws://";
        return -1;
    }
    if (tls && tls_setup(t, err) < 0)
        return -1;
    if (apply_proxy(t, tls, address, port, err) < 0)
        return -1;

    /* lws_parse_uri drops the leading '/'; put it back into our own buffer. */
    char *fullpath = malloc(strlen(path) + 2);
    if (!fullpath) {
        *err = "out of memory";
        return -1;
    }
    fullpath[0] = '/';
    strcpy(fullpath + 1, path);

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = t->ctx;
    ci.vhost = t->vh;
    ci.address = address;
    ci.port = port;
    ci.path = fullpath;
    ci.host = t->host_hdr;
    ci.origin = NULL;
    ci.protocol = NULL; /* no Sec-WebSocket-Protocol */
    ci.local_protocol_name = "ssm-ws";
    ci.ssl_connection = tls ? LCCSCF_USE_SSL : 0;
    ci.opaque_user_data = t;
    ci.pwsi = &t->wsi;
    t->why[0] = 0;
    t->tls_why[0] = 0;
    t->open = false;
    t->closing = false;
    struct lws *w = lws_client_connect_via_info(&ci);
    free(fullpath);
    if (!w) {
        /* lws may already have reported CONNECTION_ERROR (t->wsi NULL then). */
        t->wsi = NULL;
        *err = t->why[0] ? t->why : "cannot start the websocket connection";
        return -1;
    }
    return 0;
}

void ssm_transport_request_write(ssm_transport *t)
{
    if (!t->wsi || !t->open)
        return;
    if (t->direct && t->in_read) {
        t->write_wanted = true; /* written once the read batch is processed */
        return;
    }
    lws_callback_on_writable(t->wsi);
}

void ssm_transport_close(ssm_transport *t)
{
    if (!t->wsi)
        return;
    t->closing = true;
    ssm_wsd_stop(t);
    lws_set_timeout(t->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

bool ssm_transport_is_open(const ssm_transport *t)
{
    return t->open;
}
