/* SigV4 header signing, matching the Go SDKs the official plugin uses:
 * canonical URI = the raw path percent-encoded once more; canonical query =
 * the raw query form-decoded ('+' is a space) then strictly re-encoded and
 * sorted by key, then value; canonical headers lowercased, trimmed, inner spaces
 * collapsed, duplicates joined with ','. */
#include "aws_sigv4.h"
#include "ssm_text.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ---- a small growable string ---- */

typedef struct sb {
    char *p;
    size_t n, cap;
    bool oom;
} sb;

static void sb_putn(sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_puts(sb *b, const char *s) { sb_putn(b, s, strlen(s)); }
static void sb_putc(sb *b, char c) { sb_putn(b, &c, 1); }
static char *sb_take(sb *b)
{
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (!b->p)
        sb_putn(b, "", 0);
    return b->p;
}

/* ---- encoding ---- */

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static void pct_encode(sb *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            sb_putc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_putn(b, e, 3);
        }
    }
}


/* Form-decodes s[0..n) into b; false on a bad %-escape (Go drops the pair). */
static bool form_decode(sb *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            sb_putc(b, ' ');
        } else if (s[i] == '%') {
            if (i + 2 >= n)
                return false;
            int h = ssm_hexval(s[i + 1]), l = ssm_hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return false;
            sb_putc(b, (char)(h << 4 | l));
            i += 2;
        } else {
            sb_putc(b, s[i]);
        }
    }
    return true;
}

char *aws_sigv4_canonical_uri(const char *raw_path)
{
    sb b = {0};
    if (!raw_path || !*raw_path)
        sb_putc(&b, '/');
    else
        pct_encode(&b, raw_path, strlen(raw_path), true);
    return sb_take(&b);
}

typedef struct qpair {
    char *k, *v;
    size_t order;
} qpair;

static int qpair_cmp(const void *a, const void *b)
{
    /* By encoded key, then encoded value (the Go SDKs sort each key's values
     * too); identical pairs keep their order. */
    const qpair *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    if (!c)
        c = strcmp(x->v, y->v);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

char *aws_sigv4_canonical_query(const char *raw_query)
{
    if (!raw_query)
        raw_query = "";
    size_t cap = 1;
    for (const char *p = raw_query; *p; p++)
        cap += *p == '&';
    qpair *pairs = calloc(cap, sizeof *pairs);
    if (!pairs)
        return NULL;
    size_t np = 0;
    bool oom = false;
    const char *p = raw_query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        /* Go's ParseQuery rejects pairs containing ';' and skips empty ones. */
        if (len && !memchr(p, ';', len)) {
            size_t kl = eq ? (size_t)(eq - p) : len;
            sb k = {0}, v = {0};
            bool ok = form_decode(&k, p, kl);
            if (ok && eq)
                ok = form_decode(&v, eq + 1, len - kl - 1);
            sb_putn(&k, "", 0);
            sb_putn(&v, "", 0);
            if (k.oom || v.oom)
                oom = true;
            /* Keep the strictly re-encoded forms: sorting is by encoded key. */
            sb ek = {0}, ev = {0};
            if (ok && !oom) {
                pct_encode(&ek, k.p, k.n, false);
                pct_encode(&ev, v.p, v.n, false);
                sb_putn(&ek, "", 0);
                sb_putn(&ev, "", 0);
                oom = ek.oom || ev.oom;
            }
            free(k.p);
            free(v.p);
            if (ok && !oom) {
                pairs[np].k = ek.p;
                pairs[np].v = ev.p;
                pairs[np].order = np;
                np++;
            } else {
                free(ek.p);
                free(ev.p);
            }
        }
        if (!end)
            break;
        p = end + 1;
    }
    qsort(pairs, np, sizeof *pairs, qpair_cmp);
    sb out = {0};
    for (size_t i = 0; i < np; i++) {
        if (i)
            sb_putc(&out, '&');
        sb_puts(&out, pairs[i].k);
        sb_putc(&out, '=');
        sb_puts(&out, pairs[i].v);
    }
    for (size_t i = 0; i < np; i++) {
        free(pairs[i].k);
        free(pairs[i].v);
    }
    free(pairs);
    if (oom) {
        free(out.p);
        return NULL;
    }
    return sb_take(&out);
}

/* ---- hashing ---- */

static void to_hex(const uint8_t *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void aws_sha256_hex(const void *data, size_t n, char out[65])
{
    uint8_t md[32];
    unsigned len = 0;
    if (EVP_Digest(data ? data : "", n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        memset(md, 0, sizeof md);
    to_hex(md, 32, out);
}

static bool hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
    unsigned len = 0;
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
                &len) != NULL &&
           len == 32;
}

/* ---- headers ---- */

typedef struct chdr {
    char *name;  /* lowercased */
    char *value; /* trimmed, spaces collapsed */
    size_t order;
} chdr;

static int chdr_cmp(const void *a, const void *b)
{
    const chdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order; /* duplicates keep their order */
}

static bool valid_header_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s == ':' || (unsigned char)*s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    if (d)
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return d;
}

static char *collapse_dup(const char *s)
{
    sb b = {0};
    while (*s == ' ' || *s == '\t')
        s++;
    bool space = false;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            space = true;
            continue;
        }
        if (space && b.n)
            sb_putc(&b, ' ');
        space = false;
        sb_putc(&b, *s);
    }
    return sb_take(&b);
}

static void fmt_amz_date(time_t now, char out[17])
{
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int aws_sigv4_sign(const aws_sigv4_input *in, aws_sigv4_output *out, char *creq_out,
                   size_t creq_cap, char *sts_out, size_t sts_cap)
{
    if (!in || !out || !in->method || !in->host || !in->region || !in->service ||
        !in->access_key_id || !in->secret_access_key || !*in->access_key_id ||
        (in->n_headers && !in->headers) || in->n_headers > 64)
        return -1;
    memset(out, 0, sizeof *out);
    fmt_amz_date(in->now, out->amz_date);
    char date[9];
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';
    bool token = in->session_token && *in->session_token;

    int rc = -1;
    size_t nh = 0;
    chdr *h = calloc(in->n_headers + 3, sizeof *h);
    char *curi = NULL, *cq = NULL, *creq = NULL, *sts = NULL;
    if (!h)
        return -1;
    h[nh].name = strdup("host");
    h[nh++].value = collapse_dup(in->host);
    h[nh].name = strdup("x-amz-date");
    h[nh++].value = strdup(out->amz_date);
    if (token) {
        h[nh].name = strdup("x-amz-security-token");
        h[nh++].value = collapse_dup(in->session_token);
    }
    for (size_t i = 0; i < in->n_headers; i++) {
        const char *nm = in->headers[i].name;
        if (!valid_header_name(nm) || !in->headers[i].value || !strcasecmp(nm, "host") ||
            !strcasecmp(nm, "x-amz-date") || !strcasecmp(nm, "x-amz-security-token"))
            goto done; /* those three are ours to set */
        h[nh].name = lower_dup(in->headers[i].name);
        h[nh++].value = collapse_dup(in->headers[i].value);
    }
    for (size_t i = 0; i < nh; i++) {
        if (!h[i].name || !h[i].value)
            goto done;
        h[i].order = i;
    }
    qsort(h, nh, sizeof *h, chdr_cmp); /* equal names: joined below in given order */

    curi = aws_sigv4_canonical_uri(in->path);
    cq = aws_sigv4_canonical_query(in->query);
    if (!curi || !cq)
        goto done;
    char payload[65];
    aws_sha256_hex(in->body, in->body_len, payload);

    sb c = {0}, signed_names = {0};
    sb_puts(&c, in->method);
    sb_putc(&c, '\n');
    sb_puts(&c, curi);
    sb_putc(&c, '\n');
    sb_puts(&c, cq);
    sb_putc(&c, '\n');
    for (size_t i = 0; i < nh; i++) {
        bool same_as_prev = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;
        if (same_as_prev) {
            sb_putc(&c, ',');
        } else {
            if (i > 0)
                sb_putc(&c, '\n');
            sb_puts(&c, h[i].name);
            sb_putc(&c, ':');
            if (signed_names.n)
                sb_putc(&signed_names, ';');
            sb_puts(&signed_names, h[i].name);
        }
        sb_puts(&c, h[i].value);
    }
    sb_puts(&c, "\n\n");
    sb_putn(&signed_names, "", 0);
    if (signed_names.oom) {
        free(signed_names.p);
        free(sb_take(&c));
        goto done;
    }
    sb_puts(&c, signed_names.p);
    sb_putc(&c, '\n');
    sb_puts(&c, payload);
    creq = sb_take(&c);
    if (!creq) {
        free(signed_names.p);
        goto done;
    }

    char creq_hash[65], scope[256];
    aws_sha256_hex(creq, strlen(creq), creq_hash);
    int sl = snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, in->region, in->service);
    sb s = {0};
    sb_puts(&s, "AWS4-HMAC-SHA256\n");
    sb_puts(&s, out->amz_date);
    sb_putc(&s, '\n');
    sb_puts(&s, scope);
    sb_putc(&s, '\n');
    sb_puts(&s, creq_hash);
    sts = sb_take(&s);
    if (!sts || sl < 0 || (size_t)sl >= sizeof scope) {
        free(signed_names.p);
        goto done;
    }

    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request") */
    size_t sklen = strlen(in->secret_access_key);
    char *k0 = malloc(sklen + 5);
    uint8_t k1[32], k2[32], k3[32], k4[32], sig[32];
    bool ok = false;
    if (k0) {
        memcpy(k0, "AWS4", 4);
        memcpy(k0 + 4, in->secret_access_key, sklen + 1);
        ok = hmac(k0, sklen + 4, date, k1) && hmac(k1, 32, in->region, k2) &&
             hmac(k2, 32, in->service, k3) && hmac(k3, 32, "aws4_request", k4) &&
             hmac(k4, 32, sts, sig);
        OPENSSL_cleanse(k0, sklen + 5);
        free(k0);
    }
    OPENSSL_cleanse(k1, 32);
    OPENSSL_cleanse(k2, 32);
    OPENSSL_cleanse(k3, 32);
    OPENSSL_cleanse(k4, 32);
    if (ok) {
        to_hex(sig, 32, out->signature);
        int n = snprintf(out->authorization, sizeof out->authorization,
                         "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                         in->access_key_id, scope, signed_names.p, out->signature);
        ok = n > 0 && (size_t)n < sizeof out->authorization;
    }
    free(signed_names.p);
    if (!ok)
        goto done;
    if (creq_out && creq_cap > strlen(creq))
        memcpy(creq_out, creq, strlen(creq) + 1);
    if (sts_out && sts_cap > strlen(sts))
        memcpy(sts_out, sts, strlen(sts) + 1);
    rc = 0;
done:
    for (size_t i = 0; i < nh; i++) {
        free(h[i].name);
        if (h[i].value)
            OPENSSL_cleanse(h[i].value, strlen(h[i].value));
        free(h[i].value);
    }
    free(h);
    free(curi);
    free(cq);
    free(creq);
    free(sts);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- URLs ---- */

int aws_url_parse(const char *url, aws_url *u)
{
    memset(u, 0, sizeof *u);
    if (!url)
        return -1;
    const char *sep = strstr(url, "://");
    if (!sep || (size_t)(sep - url) >= sizeof u->scheme)
        return -1;
    for (size_t i = 0; i < (size_t)(sep - url); i++)
        u->scheme[i] = (char)tolower((unsigned char)url[i]);
    int defport;
    if (!strcmp(u->scheme, "https") || !strcmp(u->scheme, "wss")) {
        u->tls = true;
        defport = 443;
    } else if (!strcmp(u->scheme, "http") || !strcmp(u->scheme, "ws")) {
        defport = 80;
    } else {
        return -1;
    }
    const char *a = sep + 3;
    size_t alen = strcspn(a, "/?#");
    const char *rest = a + alen;
    const char *at = memchr(a, '@', alen); /* drop userinfo */
    if (at) {
        alen -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    if (alen == 0)
        return -1;
    const char *hs = a, *he, *port = NULL;
    if (*a == '[') {
        const char *rb = memchr(a, ']', alen);
        if (!rb)
            return -1;
        hs = a + 1;
        he = rb;
        if (rb + 1 < a + alen) {
            if (rb[1] != ':')
                return -1;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(a, ':', alen);
        he = colon ? colon : a + alen;
        port = colon ? colon + 1 : NULL;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof u->host)
        return -1;
    memcpy(u->host, hs, hl);
    u->port = defport;
    if (port) {
        size_t pl = (size_t)(a + alen - port);
        if (pl == 0 || pl > 5)
            return -1;
        int v = 0;
        for (size_t i = 0; i < pl; i++) {
            if (!isdigit((unsigned char)port[i]))
                return -1;
            v = v * 10 + (port[i] - '0');
        }
        if (v < 1 || v > 65535)
            return -1;
        u->port = v;
    }
    /* The Host we send and sign: the authority exactly as written, so the
     * signature always covers the header that goes out (the websocket
     * transport sends the same string). */
    if (alen >= sizeof u->authority)
        return -1;
    memcpy(u->authority, a, alen);
    size_t pathl = strcspn(rest, "?#");
    u->path = pathl ? strndup(rest, pathl) : strdup("/");
    const char *q = rest[pathl] == '?' ? rest + pathl + 1 : NULL;
    u->query = q ? strndup(q, strcspn(q, "#")) : strdup("");
    if (!u->path || !u->query) {
        aws_url_free(u);
        return -1;
    }
    return 0;
}

void aws_url_free(aws_url *u)
{
    if (!u)
        return;
    free(u->path);
    free(u->query);
    u->path = u->query = NULL;
}

int aws_sigv4_sign_get_url(const char *url, const char *region, const char *service,
                           const char *access_key_id, const char *secret_access_key,
                           const char *session_token, time_t now, aws_sigv4_output *out)
{
    aws_url u;
    if (aws_url_parse(url, &u) != 0)
        return -1;
    aws_sigv4_input in = {
        .method = "GET",
        .host = u.authority,
        .path = u.path,
        .query = u.query,
        .region = region ? region : "",
        .service = service,
        .access_key_id = access_key_id,
        .secret_access_key = secret_access_key,
        .session_token = session_token,
        .now = now,
    };
    int rc = aws_sigv4_sign(&in, out, NULL, 0, NULL, 0);
    aws_url_free(&u);
    return rc;
}
