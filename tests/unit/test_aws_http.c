/* aws_http and aws_api against a small HTTP/1.1 server on a thread: request
 * shape, SigV4 on the wire, error JSON, timeouts, bounds, cancellation,
 * credential resolution through fake STS and IMDS endpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "loopback_listener.h"
#include "aws_api.h"
#include "aws_creds.h"
#include "aws_http.h"
#include "aws_sigv4.h"

/* ---------------- fake server ---------------- */

typedef struct captured {
    char method[8], path[512];
    char headers[8192]; /* raw header block, lowercased names kept as sent */
    char body[8192];
} captured;

typedef struct reply {
    int status;
    const char *body;
    int mode; /* 0 normal, 1 silent (never answer), 2 huge */
} reply;

typedef reply (*route_fn)(const captured *rq);

static struct {
    int lfd, port;
    pthread_t th;
    route_fn route;
    captured reqs[16];
    int nreq;
    volatile int stop;
    SSL_CTX *tls; /* non-NULL: serve HTTPS */
} srv;
/* Extra "Name: value\r\n" response headers for the next replies, or NULL. */
static const char *volatile srv_extra_headers;

static ssize_t io_read(SSL *ssl, int fd, void *b, size_t n)
{
    return ssl ? SSL_read(ssl, b, (int)n) : read(fd, b, n);
}

static ssize_t io_write(SSL *ssl, int fd, const void *b, size_t n)
{
    return ssl ? SSL_write(ssl, b, (int)n) : write(fd, b, n);
}

static const char *hdr(const captured *c, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = c->headers; *l;) {
        const char *eol = strstr(l, "\r\n");
        size_t ll = eol ? (size_t)(eol - l) : strlen(l);
        if (ll > nl && !strncasecmp(l, name, nl) && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(l + ll - v), v);
            return out;
        }
        if (!eol)
            break;
        l = eol + 2;
    }
    return NULL;
}

static void *server_main(void *arg)
{
    (void)arg;
    while (!srv.stop) {
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        SSL *ssl = NULL;
        if (srv.tls) {
            struct timeval tv = {.tv_sec = 2};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            ssl = SSL_new(srv.tls);
            SSL_set_fd(ssl, fd);
            if (SSL_accept(ssl) != 1) { /* e.g. the client rejected our certificate */
                SSL_free(ssl);
                close(fd);
                continue;
            }
        }
        char buf[32768];
        size_t n = 0;
        char *end = NULL;
        while (!end && n < sizeof buf - 1) {
            ssize_t r = io_read(ssl, fd, buf + n, sizeof buf - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = '\0';
            end = strstr(buf, "\r\n\r\n");
        }
        if (!end) {
            SSL_free(ssl);
            close(fd);
            continue;
        }
        captured *c = &srv.reqs[srv.nreq < 16 ? srv.nreq : 15];
        memset(c, 0, sizeof *c);
        sscanf(buf, "%7s %511s", c->method, c->path);
        char *h0 = strstr(buf, "\r\n") + 2;
        snprintf(c->headers, sizeof c->headers, "%.*s", (int)(end + 2 - h0), h0);
        char cl[32];
        size_t want = hdr(c, "content-length", cl, sizeof cl) ? (size_t)atoi(cl) : 0;
        size_t have = n - (size_t)(end + 4 - buf);
        memcpy(c->body, end + 4, have < sizeof c->body ? have : sizeof c->body - 1);
        while (have < want && have < sizeof c->body - 1) {
            ssize_t r = io_read(ssl, fd, c->body + have, sizeof c->body - 1 - have);
            if (r <= 0)
                break;
            have += (size_t)r;
        }
        srv.nreq++;
        reply rp = srv.route(c);
        if (rp.mode == 1) {
            /* Say nothing until the client gives up and closes. */
            struct timeval tv = {.tv_sec = 0, .tv_usec = 50000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            char sink[256];
            while (!srv.stop && read(fd, sink, sizeof sink) != 0)
                ;
        } else if (rp.mode == 2) {
            char head[256];
            int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n");
            if (write(fd, head, (size_t)hl) > 0) {
                static char zeros[65536];
                for (int i = 0; i < 46 && write(fd, zeros, sizeof zeros) > 0; i++)
                    ;
            }
        } else {
            char head[1024];
            const char *b = rp.body ? rp.body : "";
            int hl = snprintf(head, sizeof head,
                              "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%s"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                              rp.status, srv_extra_headers ? srv_extra_headers : "", strlen(b));
            if (io_write(ssl, fd, head, (size_t)hl) == hl && *b)
                (void)!io_write(ssl, fd, b, strlen(b));
        }
        if (ssl) {
            SSL_shutdown(ssl);
            SSL_free(ssl);
        }
        close(fd);
    }
    return NULL;
}

static void server_start_tls(route_fn route, SSL_CTX *tls)
{
    memset(&srv, 0, sizeof srv);
    srv.route = route;
    srv.tls = tls;
    srv.lfd = loopback_listener(&srv.port);
    assert_true(srv.lfd >= 0);
    pthread_create(&srv.th, NULL, server_main, NULL);
}

static void server_start(route_fn route) { server_start_tls(route, NULL); }

static void server_stop(void)
{
    srv.stop = 1;
    pthread_join(srv.th, NULL);
    close(srv.lfd);
}

/* ---------------- lws loop ---------------- */

static struct lws_context *lws;
static int done;

static int dummy_cb(struct lws *w, enum lws_callback_reasons r, void *u, void *in, size_t l)
{
    (void)w, (void)r, (void)u, (void)in, (void)l;
    return 0;
}
static const struct lws_protocols dummy_protocols[] = {{"dummy", dummy_cb, 0, 0, 0, NULL, 0},
                                                       {NULL, NULL, 0, 0, 0, NULL, 0}};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Services the loop until `want` callbacks ran or max_ms of real time passed
 * (lws_service() may return at once, so count wall time, not iterations). */
static lws_sorted_usec_list_t tick_sul;
static void tick(lws_sorted_usec_list_t *s) { (void)s; }

static void run_loop(int want, int max_ms)
{
    long long end = now_ms() + max_ms;
    while (done < want && now_ms() < end) {
        lws_sul_schedule(lws, 0, &tick_sul, tick, 10 * LWS_US_PER_MS); /* bounds the poll */
        lws_service(lws, 0);
    }
    lws_sul_cancel(&tick_sul);
}

static int setup(void **st)
{
    (void)st;
    static const char *unset[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                  "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM",
                                  "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_STS", "HTTPS_PROXY",
                                  "https_proxy", "http_proxy", "SSM_PLUGIN_SKIP_CLIENT_CONFIGURE",
                                  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                  "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONFIG_FILE",
                                  "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                  "AWS_WEB_IDENTITY_TOKEN_FILE"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    setenv("HOME", "/nonexistent-home-for-tests", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = dummy_protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    lws = lws_create_context(&info);
    assert_non_null(lws);
    done = 0;
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    lws_context_destroy(lws);
    return 0;
}

/* ---------------- aws_http ---------------- */

static aws_http_response last;
static char last_body[65536], last_error[160];

/* The response's strings live only during the callback: keep copies. */
static void keep(void *user, const aws_http_response *r)
{
    (void)user;
    last = *r;
    snprintf(last_body, sizeof last_body, "%.*s", (int)r->body_len, r->body);
    last.body = last_body;
    if (r->error) {
        snprintf(last_error, sizeof last_error, "%s", r->error);
        last.error = last_error;
    }
    done++;
}

static reply echo_route(const captured *rq)
{
    if (!strcmp(rq->path, "/silent"))
        return (reply){.mode = 1};
    if (!strcmp(rq->path, "/huge"))
        return (reply){.mode = 2};
    if (!strcmp(rq->path, "/bad"))
        return (reply){400, "{\"__type\":\"x\",\"message\":\"nope\"}", 0};
    return (reply){200, "{\"ok\":true}", 0};
}

static void url_for(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", srv.port, path);
}

static void test_http_post_and_errors(void **st)
{
    (void)st;
    server_start(echo_route);
    aws_http *h = aws_http_new(lws, NULL);
    assert_non_null(h);
    char url[128];
    url_for(url, sizeof url, "/a/b?x=1");
    const char *body = "{\"SessionId\":\"s-1\"}";
    aws_http_request rq = {.method = "POST", .url = url, .headers = "X-Amz-Target: T.Op\r\n"
                           "Content-Type: application/x-amz-json-1.1\r\n",
                           .body = body, .body_len = strlen(body), .timeout_ms = 3000};
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    assert_int_equal(done, 0); /* never inside send */
    run_loop(1, 3000);
    assert_int_equal(done, 1);
    assert_null(last.error);
    assert_int_equal(last.status, 200);
    assert_string_equal(last.body, "{\"ok\":true}");
    captured *c = &srv.reqs[0];
    char v[256];
    assert_string_equal(c->method, "POST");
    assert_string_equal(c->path, "/a/b?x=1");
    assert_string_equal(hdr(c, "x-amz-target", v, sizeof v), "T.Op");
    char hostport[64];
    snprintf(hostport, sizeof hostport, "127.0.0.1:%d", srv.port);
    assert_string_equal(hdr(c, "host", v, sizeof v), hostport);
    assert_string_equal(c->body, body);

    url_for(url, sizeof url, "/bad");
    rq.url = url;
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(2, 3000);
    assert_int_equal(last.status, 400);
    assert_null(last.error);
    assert_non_null(strstr(last.body, "nope"));

    url_for(url, sizeof url, "/silent");
    rq.timeout_ms = 300;
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(3, 3000);
    assert_int_equal(done, 3);
    assert_string_equal(last.error, "timeout");

    url_for(url, sizeof url, "/huge");
    rq.timeout_ms = 5000;
    rq.max_response = 100000;
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(4, 5000);
    assert_int_equal(done, 4);
    assert_string_equal(last.error, "response too large");

    /* Cancelled: the callback never runs. */
    url_for(url, sizeof url, "/ok");
    aws_http_req *r = aws_http_send(h, &rq, keep, NULL);
    aws_http_cancel(r);
    run_loop(5, 300);
    assert_int_equal(done, 4);

    assert_null(aws_http_send(h, &(aws_http_request){.url = "ftp://x/"}, keep, NULL));
    assert_null(aws_http_send(h, &(aws_http_request){.url = "nonsense"}, keep, NULL));
    aws_http_free(h);
    server_stop();

    /* Nothing listens there any more: a connect error, no status. */
    h = aws_http_new(lws, NULL);
    url_for(url, sizeof url, "/");
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(5, 3000);
    assert_int_equal(done, 5);
    assert_non_null(last.error);
    assert_int_equal(last.status, 0);
    /* In flight at free: cancelled quietly. */
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    aws_http_free(h);
    run_loop(6, 200);
    assert_int_equal(done, 5);
}

/* A throwaway self-signed certificate for 127.0.0.1 / localhost. */
static SSL_CTX *make_tls_server(const char *pem_path, const char *san_list)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san_list);
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, bc, -1);
    X509_EXTENSION_free(bc);
    X509_sign(x, key, EVP_sha256());
    FILE *f = fopen(pem_path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx, x);
    SSL_CTX_use_PrivateKey(ctx, key);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

static void test_https_verification(void **st)
{
    (void)st;
    char pem[] = "/tmp/test_aws_http_ca_XXXXXX";
    close(mkstemp(pem));
    SSL_CTX *tls = make_tls_server(pem, "DNS:localhost,IP:127.0.0.1");
    server_start_tls(echo_route, tls);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/ok", srv.port);
    aws_http_request rq = {.method = "POST", .url = url, .body = "{}", .body_len = 2,
                           .timeout_ms = 3000};

    /* Trusted through the CA bundle (AWS_CA_BUNDLE's role). */
    aws_http_config cfg = {.ca_file = pem};
    aws_http *h = aws_http_new(lws, &cfg);
    assert_non_null(h);
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(1, 3000);
    assert_int_equal(done, 1);
    assert_null(last.error);
    assert_int_equal(last.status, 200);
    assert_string_equal(srv.reqs[0].body, "{}");
    aws_http_free(h);

    /* The system store does not know this certificate: refused. */
    aws_http_config sys = {0};
    h = aws_http_new(lws, &sys);
    assert_non_null(h);
    int before = srv.nreq;
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(2, 3000);
    assert_int_equal(done, 2);
    assert_non_null(last.error);
    assert_int_equal(last.status, 0);
    assert_int_equal(srv.nreq, before); /* no request got through */
    aws_http_free(h);
    server_stop();
    SSL_CTX_free(tls);

    /* Trusted issuer, wrong name: refused as well. (A new file: lws shares
     * client TLS contexts between vhosts with the same CA path.) */
    unlink(pem);
    char pem2[] = "/tmp/test_aws_http_ca2_XXXXXX";
    close(mkstemp(pem2));
    cfg.ca_file = pem2;
    tls = make_tls_server(pem2, "DNS:other.example");
    server_start_tls(echo_route, tls);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/ok", srv.port);
    h = aws_http_new(lws, &cfg);
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(3, 3000);
    assert_int_equal(done, 3);
    assert_non_null(last.error);
    assert_int_equal(srv.nreq, 0);
    aws_http_free(h);
    server_stop();
    SSL_CTX_free(tls);
    unlink(pem2);
}

/* A one-connection-at-a-time HTTP CONNECT proxy that records what it saw. */
static struct {
    int lfd, port, tunnels;
    char connect_line[256], auth[256];
    pthread_t th;
    volatile int stop;
} px;

static void *proxy_main(void *arg)
{
    (void)arg;
    while (!px.stop) {
        int c = accept(px.lfd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[4096];
        size_t n = 0;
        while (n < sizeof buf - 1 && !strstr(buf, "\r\n\r\n")) {
            ssize_t r = read(c, buf + n, sizeof buf - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = '\0';
        }
        char host[128];
        int port = 0;
        if (sscanf(buf, "CONNECT %127[^:]:%d", host, &port) != 2) {
            close(c);
            continue;
        }
        snprintf(px.connect_line, sizeof px.connect_line, "%.*s", (int)strcspn(buf, "\r"), buf);
        const char *pa = strcasestr(buf, "\nProxy-Authorization:");
        if (pa)
            snprintf(px.auth, sizeof px.auth, "%.*s", (int)strcspn(pa + 1, "\r"), pa + 1);
        int t = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(t, (struct sockaddr *)&a, sizeof a) != 0) {
            close(t);
            close(c);
            continue;
        }
        px.tunnels++;
        const char *ok = "HTTP/1.1 200 Connection established\r\n\r\n";
        (void)!write(c, ok, strlen(ok));
        struct pollfd p[2] = {{.fd = c, .events = POLLIN}, {.fd = t, .events = POLLIN}};
        while (!px.stop && poll(p, 2, 100) >= 0) {
            int i;
            for (i = 0; i < 2; i++)
                if (p[i].revents) {
                    ssize_t r = read(p[i].fd, buf, sizeof buf);
                    if (r <= 0 || write(p[1 - i].fd, buf, (size_t)r) != r)
                        break;
                }
            if (i < 2)
                break;
        }
        close(t);
        close(c);
    }
    return NULL;
}

static void test_proxy(void **st)
{
    (void)st;
    server_start(echo_route);
    memset(&px, 0, sizeof px);
    px.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(px.lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(px.lfd, (struct sockaddr *)&a, &al);
    px.port = ntohs(a.sin_port);
    listen(px.lfd, 4);
    struct timeval tv = {.tv_usec = 100000};
    setsockopt(px.lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pthread_create(&px.th, NULL, proxy_main, NULL);

    char proxy[128], url[128];
    snprintf(proxy, sizeof proxy, "http://user:pw@127.0.0.1:%d/", px.port);
    aws_http_config cfg = {.proxy = proxy, .no_proxy = "example.com, .direct.test"};
    aws_http *h = aws_http_new(lws, &cfg);
    assert_non_null(h);
    /* Loopback always goes direct. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", srv.port);
    aws_http_request rq = {.method = "GET", .url = url, .timeout_ms = 3000};
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(1, 3000);
    assert_int_equal(done, 1);
    assert_int_equal(last.status, 200);
    assert_int_equal(px.tunnels, 0);
    /* Anything else is tunnelled; the proxy resolves the name (this one
     * exists only in the test proxy) and sees the credentials. */
    snprintf(url, sizeof url, "http://api.proxied.test:%d/ok", srv.port);
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(2, 3000);
    assert_int_equal(done, 2);
    assert_null(last.error);
    assert_int_equal(last.status, 200);
    assert_int_equal(px.tunnels, 1);
    char want[128];
    snprintf(want, sizeof want, "CONNECT api.proxied.test:%d HTTP/1.1", srv.port);
    assert_string_equal(px.connect_line, want);
    assert_non_null(strstr(px.auth, "dXNlcjpwdw==")); /* basic user:pw */
    /* NO_PROXY match: direct, so the fake name does not resolve. */
    snprintf(url, sizeof url, "http://api.direct.test:%d/ok", srv.port);
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(3, 3000);
    assert_int_equal(done, 3);
    assert_non_null(last.error);
    assert_int_equal(px.tunnels, 1);
    aws_http_free(h);

    /* lws would pick up $http_proxy for the direct vhost; it must not. */
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    aws_http_config none = {0};
    h = aws_http_new(lws, &none);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", srv.port);
    assert_non_null(aws_http_send(h, &rq, keep, NULL));
    run_loop(4, 3000);
    assert_int_equal(done, 4);
    assert_int_equal(last.status, 200);
    assert_string_equal(getenv("http_proxy"), "http://127.0.0.1:1"); /* restored */
    unsetenv("http_proxy");
    aws_http_free(h);

    px.stop = 1;
    pthread_join(px.th, NULL);
    close(px.lfd);
    server_stop();
}

static void test_no_proxy(void **st)
{
    (void)st;
    assert_true(aws_http_no_proxy("localhost", 80, NULL));
    assert_true(aws_http_no_proxy("127.0.0.1", 80, NULL));
    assert_false(aws_http_no_proxy("kms.us-east-1.amazonaws.com", 443, NULL));
    assert_true(aws_http_no_proxy("kms.us-east-1.amazonaws.com", 443, "foo, .amazonaws.com"));
    assert_true(aws_http_no_proxy("kms.us-east-1.amazonaws.com", 443, "amazonaws.com"));
    assert_false(aws_http_no_proxy("evilamazonaws.com", 443, "amazonaws.com"));
    assert_true(aws_http_no_proxy("a.b", 443, "*"));
    assert_true(aws_http_no_proxy("a.b", 443, "a.b:443"));
    assert_false(aws_http_no_proxy("a.b", 443, "a.b:8443"));
    assert_true(aws_http_no_proxy("x.a.b", 443, "*.a.b"));
}

/* ---------------- aws_api ---------------- */

static captured api_seen;
static const char *api_reply_body;
static int api_reply_status;

static reply api_route(const captured *rq)
{
    api_seen = *rq;
    return (reply){api_reply_status, api_reply_body, 0};
}

/* Recomputes the signature from what arrived and compares. */
static void assert_signed_ok(const captured *c, const char *service, const char *secret,
                             const char *token)
{
    char auth[1024], date[32], host[128], target[128], ctype[128], tok[512];
    assert_non_null(hdr(c, "authorization", auth, sizeof auth));
    assert_non_null(hdr(c, "x-amz-date", date, sizeof date));
    hdr(c, "host", host, sizeof host);
    hdr(c, "x-amz-target", target, sizeof target);
    hdr(c, "content-type", ctype, sizeof ctype);
    if (token) {
        assert_non_null(hdr(c, "x-amz-security-token", tok, sizeof tok));
        assert_string_equal(tok, token);
    } else {
        assert_null(hdr(c, "x-amz-security-token", tok, sizeof tok));
    }
    assert_null(hdr(c, "x-amz-content-sha256", tok, sizeof tok));
    struct tm tm = {0};
    sscanf(date, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
           &tm.tm_min, &tm.tm_sec);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    aws_sigv4_header h[] = {{"Content-Type", ctype}, {"X-Amz-Target", target}};
    char akid[64];
    sscanf(auth, "AWS4-HMAC-SHA256 Credential=%63[^/]", akid);
    aws_sigv4_input in = {
        .method = "POST", .host = host, .path = "/", .headers = h, .n_headers = 2,
        .body = c->body, .body_len = strlen(c->body), .region = "eu-west-1", .service = service,
        .access_key_id = akid, .secret_access_key = secret, .session_token = token,
        .now = timegm(&tm),
    };
    aws_sigv4_output o;
    assert_int_equal(aws_sigv4_sign(&in, &o, NULL, 0, NULL, 0), 0);
    assert_string_equal(auth, o.authorization);
}

static struct {
    int status, http_status;
    char type[128], text[4096], token[256], url[256], blob[256];
    uint8_t key[64];
    size_t key_len;
} got;

static void on_resume(void *u, const aws_api_error *e, const char *token, const char *url)
{
    (void)u;
    got.status = e->status;
    got.http_status = e->http_status;
    snprintf(got.type, sizeof got.type, "%s", e->type);
    snprintf(got.text, sizeof got.text, "%s", e->text);
    snprintf(got.token, sizeof got.token, "%s", token ? token : "(null)");
    snprintf(got.url, sizeof got.url, "%s", url ? url : "(null)");
    done++;
}

static void on_kms(void *u, const aws_api_error *e, const uint8_t *pt, size_t n, const char *blob)
{
    (void)u;
    got.status = e->status;
    snprintf(got.text, sizeof got.text, "%s", e->text);
    got.key_len = n;
    if (pt && n <= 64)
        memcpy(got.key, pt, n);
    snprintf(got.blob, sizeof got.blob, "%s", blob ? blob : "(null)");
    done++;
}

static void on_terminate(void *u, const aws_api_error *e)
{
    (void)u;
    got.status = e->status;
    snprintf(got.type, sizeof got.type, "%s", e->type);
    done++;
}

static void test_api_calls(void **st)
{
    (void)st;
    server_start(api_route);
    char ep[128];
    url_for(ep, sizeof ep, "");
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret/+key", 1);
    setenv("AWS_SESSION_TOKEN", "sess+tok/en=", 1);
    setenv("AWS_ENDPOINT_URL_KMS", ep, 1);
    aws_ctx_config cfg = {.region = "eu-west-1", .profile = "", .ssm_endpoint = ep};
    aws_ctx *ctx = aws_ctx_new(lws, &cfg);
    assert_non_null(ctx);

    api_reply_status = 200;
    api_reply_body = "{\"SessionId\":\"s-1\",\"StreamUrl\":\"wss://new/x\",\"TokenValue\":\"TOK2\"}";
    assert_int_equal(aws_resume_session(ctx, "s-1", on_resume, NULL), 0);
    run_loop(1, 3000);
    assert_int_equal(done, 1);
    assert_int_equal(got.status, 0);
    assert_string_equal(got.token, "TOK2");
    assert_string_equal(got.url, "wss://new/x");
    char v[256];
    assert_string_equal(hdr(&api_seen, "x-amz-target", v, sizeof v), "AmazonSSM.ResumeSession");
    assert_string_equal(hdr(&api_seen, "content-type", v, sizeof v), "application/x-amz-json-1.1");
    assert_string_equal(api_seen.body, "{\"SessionId\":\"s-1\"}");
    assert_signed_ok(&api_seen, "ssm", "secret/+key", "sess+tok/en=");

    /* A timed-out session: no token. */
    api_reply_body = "{\"SessionId\":\"s-1\"}";
    assert_int_equal(aws_resume_session(ctx, "s-1", on_resume, NULL), 0);
    run_loop(2, 3000);
    assert_int_equal(got.status, 0);
    assert_string_equal(got.token, "(null)");

    /* Service error JSON. */
    api_reply_status = 400;
    api_reply_body = "{\"__type\":\"com.amazon.coral.service#AccessDeniedException\","
                     "\"message\":\"User is not authorized\"}";
    assert_int_equal(aws_terminate_session(ctx, "s-1", on_terminate, NULL), 0);
    run_loop(3, 3000);
    assert_int_equal(got.status, -1);
    assert_string_equal(got.type, "AccessDeniedException");
    assert_string_equal(hdr(&api_seen, "x-amz-target", v, sizeof v), "AmazonSSM.TerminateSession");

    /* GenerateDataKey: request body and 64-byte key. */
    uint8_t key[64];
    for (int i = 0; i < 64; i++)
        key[i] = (uint8_t)(i * 3);
    char b64[128], resp[512];
    EVP_EncodeBlock((unsigned char *)b64, key, 64);
    snprintf(resp, sizeof resp, "{\"CiphertextBlob\":\"QkxPQg==\",\"KeyId\":\"k\",\"Plaintext\":\"%s\"}", b64);
    api_reply_status = 200;
    api_reply_body = resp;
    assert_int_equal(aws_kms_generate_data_key(ctx, "alias/k", "s-1", "i-0abc", "Y2hhbGxlbmdl",
                                               on_kms, NULL), 0);
    run_loop(4, 3000);
    assert_int_equal(got.status, 0);
    assert_int_equal(got.key_len, 64);
    assert_memory_equal(got.key, key, 64);
    assert_string_equal(got.blob, "QkxPQg==");
    cJSON *j = cJSON_Parse(api_seen.body);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "NumberOfBytes")->valueint, 64);
    assert_string_equal(cJSON_GetObjectItem(j, "KeyId")->valuestring, "alias/k");
    cJSON *ec = cJSON_GetObjectItem(j, "EncryptionContext");
    assert_int_equal(cJSON_GetArraySize(ec), 3);
    assert_string_equal(cJSON_GetObjectItem(ec, "aws:ssm:SessionId")->valuestring, "s-1");
    assert_string_equal(cJSON_GetObjectItem(ec, "aws:ssm:TargetId")->valuestring, "i-0abc");
    assert_string_equal(cJSON_GetObjectItem(ec, "aws:ssm:RandomChallenge")->valuestring, "Y2hhbGxlbmdl");
    cJSON_Delete(j);
    assert_string_equal(hdr(&api_seen, "x-amz-target", v, sizeof v), "TrentService.GenerateDataKey");
    assert_signed_ok(&api_seen, "kms", "secret/+key", "sess+tok/en=");

    /* Without a challenge: two entries. A short Plaintext is refused. */
    api_reply_body = "{\"CiphertextBlob\":\"QQ==\",\"Plaintext\":\"QUJD\"}";
    assert_int_equal(aws_kms_generate_data_key(ctx, "k", "s-1", "i-0abc", NULL, on_kms, NULL), 0);
    run_loop(5, 3000);
    assert_int_equal(got.status, -1);
    assert_int_equal(got.key_len, 0);
    j = cJSON_Parse(api_seen.body);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "EncryptionContext")), 2);
    cJSON_Delete(j);

    api_reply_status = 400;
    api_reply_body = "{\"__type\":\"NotFoundException\",\"message\":\"Key 'k' does not exist\"}";
    assert_int_equal(aws_kms_generate_data_key(ctx, "k", "s-1", "i-0abc", "", on_kms, NULL), 0);
    run_loop(6, 3000);
    assert_int_equal(got.status, -1);
    /* A code the operation models: "<Code>: <Message>"; no x-amzn-RequestId
     * header gives an empty RequestID, as in aws-sdk-go-v2. */
    assert_string_equal(got.text, "operation error KMS: GenerateDataKey, https response error "
                                  "StatusCode: 400, RequestID: , NotFoundException: Key 'k' does "
                                  "not exist");

    /* A code it does not model: "api error <Code>: <Message>", with the whole
     * message (a real AccessDenied names two ARNs; it used to be cut at 255). */
    char longmsg[1200], body[1400], want[2048];
    snprintf(longmsg, sizeof longmsg,
             "User: arn:aws:sts::111122223333:assumed-role/SessionManagerUserWithAVeryLongName/"
             "someone@example.com is not authorized to perform: kms:GenerateDataKey on resource: "
             "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab "
             "because no identity-based policy allows the kms:GenerateDataKey action");
    size_t ml = strlen(longmsg);
    while (ml < 900) { /* pad with words past any old bound */
        snprintf(longmsg + ml, sizeof longmsg - ml, " word%zu", ml);
        ml = strlen(longmsg);
    }
    snprintf(body, sizeof body, "{\"__type\":\"AccessDeniedException\",\"Message\":\"%s\"}", longmsg);
    api_reply_body = body;
    srv_extra_headers = "x-amzn-RequestId: 5f1e6b0c-aaaa-bbbb-cccc-0123456789ab\r\n";
    assert_int_equal(aws_kms_generate_data_key(ctx, "k", "s-1", "i-0abc", "", on_kms, NULL), 0);
    run_loop(7, 3000);
    snprintf(want, sizeof want,
             "operation error KMS: GenerateDataKey, https response error StatusCode: 400, "
             "RequestID: 5f1e6b0c-aaaa-bbbb-cccc-0123456789ab, api error AccessDeniedException: %s",
             longmsg);
    assert_string_equal(got.text, want);

    /* Code from X-Amzn-ErrorType (sanitized) when the body has none, matched
     * case-insensitively against the model; a modelled error without a
     * message prints an empty one, an unmodelled one "UnknownError". */
    srv_extra_headers = "X-Amzn-ErrorType: KMSInvalidStateException:http://internal/\r\n";
    api_reply_status = 409;
    api_reply_body = "{}";
    assert_int_equal(aws_kms_generate_data_key(ctx, "k", "s-1", "i-0abc", "", on_kms, NULL), 0);
    run_loop(8, 3000);
    assert_string_equal(got.text, "operation error KMS: GenerateDataKey, https response error "
                                  "StatusCode: 409, RequestID: , KMSInvalidStateException: ");
    srv_extra_headers = NULL;
    api_reply_status = 500;
    api_reply_body = "not json";
    assert_int_equal(aws_kms_generate_data_key(ctx, "k", "s-1", "i-0abc", "", on_kms, NULL), 0);
    run_loop(9, 3000);
    assert_string_equal(got.text, "operation error KMS: GenerateDataKey, https response error "
                                  "StatusCode: 500, RequestID: , api error UnknownError: "
                                  "UnknownError");

    /* In flight at free: no callback. */
    assert_int_equal(aws_resume_session(ctx, "s-1", on_resume, NULL), 0);
    aws_ctx_free(ctx);
    run_loop(10, 200);
    assert_int_equal(done, 9);
    server_stop();
}

static struct {
    int calls;
    bool signed_;
    char authorization[1024], date[32], token[256], lines[2048];
} ws;

static void on_ws(void *u, const aws_ws_auth *a)
{
    (void)u;
    ws.calls++;
    ws.signed_ = a != NULL;
    if (a) {
        snprintf(ws.authorization, sizeof ws.authorization, "%s", a->authorization);
        snprintf(ws.date, sizeof ws.date, "%s", a->amz_date);
        snprintf(ws.token, sizeof ws.token, "%s", a->security_token ? a->security_token : "");
        assert_true(aws_ws_auth_headers(a, ws.lines, sizeof ws.lines) > 0);
        char tiny[16];
        assert_int_equal(aws_ws_auth_headers(a, tiny, sizeof tiny), -1);
    }
    done++;
}

static void test_ws_prepare(void **st)
{
    (void)st;
    setenv("AWS_ACCESS_KEY_ID", "AKIDWS", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wsecret", 1);
    setenv("AWS_SESSION_TOKEN", "wstoken", 1);
    aws_ctx_config cfg = {.region = "ap-south-1"};
    aws_ctx *ctx = aws_ctx_new(lws, &cfg);
    const char *url = "wss://ssmmessages.ap-south-1.amazonaws.com/v1/data-channel/s-1?role=publish_subscribe&cell-number=AB+C";
    memset(&ws, 0, sizeof ws);
    assert_int_equal(aws_ws_prepare(ctx, url, on_ws, NULL), 0);
    assert_int_equal(ws.calls, 0);
    run_loop(1, 2000);
    assert_int_equal(ws.calls, 1);
    assert_true(ws.signed_);
    assert_string_equal(ws.token, "wstoken");
    struct tm tm = {0};
    sscanf(ws.date, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
           &tm.tm_min, &tm.tm_sec);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    aws_sigv4_output o;
    assert_int_equal(aws_sigv4_sign_get_url(url, "ap-south-1", "ssmmessages", "AKIDWS", "wsecret",
                                            "wstoken", timegm(&tm), &o), 0);
    assert_string_equal(ws.authorization, o.authorization);
    char lines[2048];
    snprintf(lines, sizeof lines, "Authorization: %s\r\nX-Amz-Date: %s\r\nX-Amz-Security-Token: wstoken\r\n",
             o.authorization, o.amz_date);
    assert_string_equal(ws.lines, lines);
    assert_non_null(strstr(ws.authorization, "/ap-south-1/ssmmessages/aws4_request, "
                                             "SignedHeaders=host;x-amz-date;x-amz-security-token, "));

    /* Presigned: unsigned, no credential lookup needed. */
    assert_true(aws_url_is_presigned("wss://h/p?a=1&X-Amz-Signature=abc"));
    assert_false(aws_url_is_presigned("wss://h/p?x-amz-signature=abc")); /* case-sensitive */
    assert_false(aws_url_is_presigned("wss://h/p?a=X-Amz-Signature"));
    assert_int_equal(aws_ws_prepare(ctx, "wss://h/p?X-Amz-Credential=x", on_ws, NULL), 0);
    run_loop(2, 2000);
    assert_int_equal(ws.calls, 2);
    assert_false(ws.signed_);
    aws_ctx_free(ctx);

    /* SSM_PLUGIN_SKIP_CLIENT_CONFIGURE=true (exact) disables signing. */
    setenv("SSM_PLUGIN_SKIP_CLIENT_CONFIGURE", "TRUE", 1);
    ctx = aws_ctx_new(lws, &cfg);
    assert_int_equal(aws_ws_prepare(ctx, url, on_ws, NULL), 0);
    run_loop(3, 2000);
    assert_true(ws.signed_);
    aws_ctx_free(ctx);
    setenv("SSM_PLUGIN_SKIP_CLIENT_CONFIGURE", "true", 1);
    ctx = aws_ctx_new(lws, &cfg);
    assert_int_equal(aws_ws_prepare(ctx, url, on_ws, NULL), 0);
    run_loop(4, 2000);
    assert_false(ws.signed_);
    aws_ctx_free(ctx);
    unsetenv("SSM_PLUGIN_SKIP_CLIENT_CONFIGURE");

    /* No credentials anywhere: best effort, unsigned, and the reason is kept. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("PATH", "/nonexistent", 1); /* no `aws` CLI fallback */
    ctx = aws_ctx_new(lws, &cfg);
    assert_int_equal(aws_ws_prepare(ctx, url, on_ws, NULL), 0);
    run_loop(5, 3000);
    assert_int_equal(ws.calls, 5);
    assert_false(ws.signed_);
    assert_non_null(aws_ctx_credentials_error(ctx));
    aws_ctx_free(ctx);
}

/* STS AssumeRole and IMDS through the fake endpoint, then a signed call. */
static reply cred_route(const captured *rq)
{
    static char xml[1024];
    char v[256];
    if (!strcmp(rq->path, "/") && strstr(rq->body, "Action=AssumeRole&")) {
        snprintf(xml, sizeof xml,
                 "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAROLE</AccessKeyId>"
                 "<SecretAccessKey>rolesecret</SecretAccessKey><SessionToken>roletoken</SessionToken>"
                 "<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult>"
                 "</AssumeRoleResponse>");
        /* The source profile's keys signed it. */
        if (!hdr(rq, "authorization", v, sizeof v) || !strstr(v, "Credential=AKIDBASE/"))
            return (reply){403, "<ErrorResponse><Error><Code>Denied</Code></Error></ErrorResponse>", 0};
        return (reply){200, xml, 0};
    }
    if (!strcmp(rq->path, "/latest/api/token") && !strcmp(rq->method, "PUT"))
        return (reply){200, "IMDSTOKEN", 0};
    if (!strcmp(rq->path, "/latest/meta-data/iam/security-credentials/"))
        return (reply){hdr(rq, "x-aws-ec2-metadata-token", v, sizeof v) ? 200 : 401, "myrole\n", 0};
    if (!strcmp(rq->path, "/latest/meta-data/iam/security-credentials/myrole"))
        return (reply){200, "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAEC2\",\"SecretAccessKey\":\"ec2secret\","
                            "\"Token\":\"ec2token\",\"Expiration\":\"2099-01-01T00:00:00Z\"}", 0};
    if (!strcmp(rq->path, "/token") && !strcmp(rq->method, "POST")) {
        if (!strstr(rq->body, "\"refreshToken\":\"rt1\"") || !strstr(rq->body, "refresh_token"))
            return (reply){400, "{\"error\":\"invalid_grant\"}", 0};
        return (reply){200, "{\"accessToken\":\"fresh-at\",\"expiresIn\":3600,\"refreshToken\":\"rt2\"}", 0};
    }
    if (!strncmp(rq->path, "/federation/credentials?", 24)) {
        if (strcmp(rq->path, "/federation/credentials?account_id=111122223333&role_name=Ops") ||
            !hdr(rq, "x-amz-sso_bearer_token", v, sizeof v) || strcmp(v, "fresh-at"))
            return (reply){401, "{\"message\":\"Session token not found or invalid\"}", 0};
        return (reply){200, "{\"roleCredentials\":{\"accessKeyId\":\"ASIASSO\",\"secretAccessKey\":"
                            "\"ssosecret\",\"sessionToken\":\"ssotoken\",\"expiration\":4070908800000}}", 0};
    }
    api_seen = *rq;
    return (reply){200, "{\"SessionId\":\"s\"}", 0};
}

static void test_network_credentials(void **st)
{
    (void)st;
    server_start(cred_route);
    char ep[128], cfgpath[] = "/tmp/test_aws_http_cfg_XXXXXX";
    url_for(ep, sizeof ep, "");
    int fd = mkstemp(cfgpath);
    const char *cfgtext = "[profile base]\naws_access_key_id=AKIDBASE\naws_secret_access_key=basesecret\n"
                          "[profile admin]\nrole_arn=arn:aws:iam::1:role/A\nsource_profile=base\n";
    assert_int_equal(write(fd, cfgtext, strlen(cfgtext)), (ssize_t)strlen(cfgtext));
    close(fd);
    setenv("AWS_CONFIG_FILE", cfgpath, 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
    setenv("AWS_ENDPOINT_URL_STS", ep, 1);
    aws_ctx_config cfg = {.region = "eu-west-1", .profile = "admin", .ssm_endpoint = ep};
    aws_ctx *ctx = aws_ctx_new(lws, &cfg);
    assert_int_equal(aws_terminate_session(ctx, "s", on_terminate, NULL), 0);
    run_loop(1, 5000);
    assert_int_equal(done, 1);
    assert_int_equal(got.status, 0);
    assert_signed_ok(&api_seen, "ssm", "rolesecret", "roletoken");
    /* Cached: the next call does not go to STS again. */
    int before = srv.nreq;
    assert_int_equal(aws_terminate_session(ctx, "s", on_terminate, NULL), 0);
    run_loop(2, 5000);
    assert_int_equal(srv.nreq, before + 1);
    /* A resume looks credentials up again: STS, then ResumeSession. */
    before = srv.nreq;
    assert_int_equal(aws_resume_session(ctx, "s", on_resume, NULL), 0);
    run_loop(3, 5000);
    assert_int_equal(done, 3);
    assert_int_equal(srv.nreq, before + 2);
    assert_string_equal(hdr(&api_seen, "x-amz-target", (char[64]){0}, 64), "AmazonSSM.ResumeSession");
    aws_ctx_free(ctx);

    /* IMDSv2: token, role, credentials. */
    unsetenv("AWS_CONFIG_FILE");
    setenv("AWS_PROFILE", "nosuchprofile", 1);
    setenv("PATH", "/nonexistent", 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
    cfg.profile = "";
    ctx = aws_ctx_new(lws, &cfg);
    assert_int_equal(aws_terminate_session(ctx, "s", on_terminate, NULL), 0);
    run_loop(4, 5000);
    assert_int_equal(done, 4);
    assert_int_equal(got.status, 0);
    assert_signed_ok(&api_seen, "ssm", "ec2secret", "ec2token");
    aws_ctx_free(ctx);

    /* SSO: the cached access token has expired; refresh it over SSO-OIDC,
     * then GetRoleCredentials with the new one. */
    char home[] = "/tmp/test_aws_http_home_XXXXXX", path[512];
    assert_non_null(mkdtemp(home));
    snprintf(path, sizeof path, "%s/.aws", home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.aws/sso", home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.aws/sso/cache", home);
    assert_int_equal(mkdir(path, 0700), 0);
    uint8_t md[20];
    unsigned mdl = 0;
    EVP_Digest("corp", 4, md, &mdl, EVP_sha1(), NULL);
    int pl = snprintf(path, sizeof path, "%s/.aws/sso/cache/", home);
    for (int i = 0; i < 20; i++)
        pl += snprintf(path + pl, sizeof path - (size_t)pl, "%02x", md[i]);
    snprintf(path + pl, sizeof path - (size_t)pl, ".json");
    FILE *f = fopen(path, "w");
    fputs("{\"accessToken\":\"stale\",\"expiresAt\":\"2001-01-01T00:00:00Z\",\"clientId\":\"c\","
          "\"clientSecret\":\"s\",\"refreshToken\":\"rt1\",\"registrationExpiresAt\":\"2099-01-01T00:00:00Z\"}", f);
    fclose(f);
    char cfgfile[600];
    snprintf(cfgfile, sizeof cfgfile, "%s/config", home);
    f = fopen(cfgfile, "w");
    fputs("[profile sso]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Ops\n"
          "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n", f);
    fclose(f);
    setenv("HOME", home, 1);
    setenv("AWS_CONFIG_FILE", cfgfile, 1);
    setenv("AWS_ENDPOINT_URL_SSO_OIDC", ep, 1);
    setenv("AWS_ENDPOINT_URL_SSO", ep, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    cfg.profile = "sso";
    ctx = aws_ctx_new(lws, &cfg);
    assert_int_equal(aws_terminate_session(ctx, "s", on_terminate, NULL), 0);
    run_loop(5, 5000);
    assert_int_equal(done, 5);
    assert_int_equal(got.status, 0);
    assert_signed_ok(&api_seen, "ssm", "ssosecret", "ssotoken");
    aws_ctx_free(ctx);
    f = fopen(path, "r"); /* the refreshed token went back to the cache */
    char cache[1024] = "";
    assert_true(fread(cache, 1, sizeof cache - 1, f) > 0);
    fclose(f);
    assert_non_null(strstr(cache, "\"accessToken\":\"fresh-at\""));
    assert_non_null(strstr(cache, "\"refreshToken\":\"rt2\""));
    snprintf(path, sizeof path, "/bin/rm -rf %s", home);
    assert_int_equal(system(path), 0);
    unsetenv("AWS_ENDPOINT_URL_SSO_OIDC");
    unsetenv("AWS_ENDPOINT_URL_SSO");
    unsetenv("AWS_CONFIG_FILE");

    unsetenv("AWS_PROFILE");
    unlink(cfgpath);
    server_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_post_and_errors, setup, teardown),
        cmocka_unit_test(test_no_proxy),
        cmocka_unit_test_setup_teardown(test_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_verification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_prepare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_network_credentials, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
