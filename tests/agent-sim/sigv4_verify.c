/* SigV4 (header form) verification, written from the AWS documentation and
 * PROTOCOL-NEWEST.md §1.3: canonical request, string to sign, derived key.
 * The canonical query comes from lws's decoded URI args: lws form-decodes
 * them ('+' -> ' ', %XX -> byte), which is exactly the SDKs' first step, so
 * re-encoding them strictly gives the SDKs' canonical query. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "sigv4.h"
#include "sim.h"

#define CANON_MAX 8192
#define MAX_SIGNED 16
#define MAX_ARGS 16

static void hexify(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256(p, n, h);
    hexify(h, sizeof h, out);
}

static void hmac(const uint8_t *key, size_t klen, const char *msg, uint8_t out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const uint8_t *)msg, strlen(msg), out, &n);
}

/* Appends with bound checking; *len becomes cap on overflow (caught later). */
static void put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n >= cap) {
        *len = cap;
        return;
    }
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

static void put_encoded(char *buf, size_t cap, size_t *len, const char *s, int keep_slash)
{
    static const char d[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
            put(buf, cap, len, (const char *)&ch, 1);
        } else {
            char e[3] = {'%', d[ch >> 4], d[ch & 15]};
            put(buf, cap, len, e, 3);
        }
    }
}

/* A request header by lower-case name: lws's known tokens first, then custom. */
static int header_value(struct lws *wsi, const char *lname, char *out, int cap)
{
    size_t n = strlen(lname);
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const unsigned char *name = lws_token_to_string((enum lws_token_indexes)t);
        if (name && strncasecmp((const char *)name, lname, n) == 0 && name[n] == ':')
            return lws_hdr_copy(wsi, out, cap, (enum lws_token_indexes)t);
    }
    char key[80];
    if (n + 2 > sizeof key)
        return -1;
    memcpy(key, lname, n);
    key[n] = ':';
    key[n + 1] = '\0';
    return lws_hdr_custom_copy(wsi, out, cap, key, (int)n + 1);
}

/* Trims and collapses runs of spaces, as the canonical header value. */
static void put_header_value(char *buf, size_t cap, size_t *len, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t end = strlen(v);
    while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
        end--;
    int space = 0;
    for (size_t i = 0; i < end; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            space = 1;
            continue;
        }
        if (space)
            put(buf, cap, len, " ", 1);
        space = 0;
        put(buf, cap, len, &v[i], 1);
    }
}

struct qarg {
    char enc[512];
};

static int cmp_arg(const void *a, const void *b)
{
    /* Sorting "key=value" strings by key then value: '=' (0x3d) sorts after
     * every character a strictly encoded key can contain except letters and
     * digits, so compare the key parts first. */
    const char *x = ((const struct qarg *)a)->enc, *y = ((const struct qarg *)b)->enc;
    size_t kx = strcspn(x, "="), ky = strcspn(y, "=");
    int c = strncmp(x, y, kx < ky ? kx : ky);
    if (c != 0)
        return c;
    if (kx != ky)
        return kx < ky ? -1 : 1;
    return strcmp(x + kx, y + ky);
}

static void canonical_query(struct lws *wsi, char *buf, size_t cap, size_t *len)
{
    static struct qarg args[MAX_ARGS];
    int n = 0;
    char frag[512];
    for (int i = 0; n < MAX_ARGS; i++) {
        if (lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
            break;
        char *eq = strchr(frag, '=');
        const char *v = "";
        if (eq) {
            *eq = '\0';
            v = eq + 1;
        }
        size_t l = 0;
        args[n].enc[0] = '\0';
        put_encoded(args[n].enc, sizeof args[n].enc, &l, frag, 0);
        put(args[n].enc, sizeof args[n].enc, &l, "=", 1);
        put_encoded(args[n].enc, sizeof args[n].enc, &l, v, 0);
        n++;
    }
    qsort(args, (size_t)n, sizeof args[0], cmp_arg);
    for (int i = 0; i < n; i++) {
        if (i)
            put(buf, cap, len, "&", 1);
        put(buf, cap, len, args[i].enc, strlen(args[i].enc));
    }
}

/* "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 *  SignedHeaders=a;b, Signature=hex" */
static int parse_authorization(const char *a, char *cred, size_t ccap, char *sh, size_t shcap, char *sig,
                               size_t sigcap)
{
    static const char alg[] = "AWS4-HMAC-SHA256 ";
    if (strncmp(a, alg, sizeof alg - 1) != 0)
        return -1;
    const char *p = a + sizeof alg - 1;
    struct {
        const char *name;
        char *out;
        size_t cap;
    } parts[] = {{"Credential=", cred, ccap}, {"SignedHeaders=", sh, shcap}, {"Signature=", sig, sigcap}};
    for (size_t i = 0; i < 3; i++) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t nl = strlen(parts[i].name);
        if (strncmp(p, parts[i].name, nl) != 0)
            return -1;
        p += nl;
        size_t v = strcspn(p, ", ");
        if (v == 0 || v >= parts[i].cap)
            return -1;
        memcpy(parts[i].out, p, v);
        parts[i].out[v] = '\0';
        p += v;
    }
    return 0;
}

static int amz_date_ok(const char *d)
{
    if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)d[i]))
            return 0;
    return 1;
}

/* Seconds since the epoch of a valid x-amz-date (UTC). */
static long long amz_date_epoch(const char *d)
{
    int y = atoi((char[]){d[0], d[1], d[2], d[3], 0}), mo = atoi((char[]){d[4], d[5], 0}),
        da = atoi((char[]){d[6], d[7], 0}), h = atoi((char[]){d[9], d[10], 0}),
        mi = atoi((char[]){d[11], d[12], 0}), s = atoi((char[]){d[13], d[14], 0});
    /* days from civil (Howard Hinnant's algorithm) */
    y -= mo <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + da - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600 + mi * 60 + s;
}

static const char *verify(struct lws *wsi, const char *method, const char *body, size_t body_len,
                          struct sim_sigv4_result *r)
{
    char auth[1024], cred[256], sig[128], amzdate[32];
    if (lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
        return "no Authorization header";
    r->present = 1;
    if (parse_authorization(auth, cred, sizeof cred, r->signed_headers, sizeof r->signed_headers, sig,
                            sizeof sig) != 0)
        return "malformed Authorization header";
    /* Credential = AK/DATE/REGION/SERVICE/aws4_request */
    char *f[5];
    char *save = NULL, *tok = strtok_r(cred, "/", &save);
    int nf = 0;
    for (; tok && nf < 5; tok = strtok_r(NULL, "/", &save))
        f[nf++] = tok;
    if (nf != 5 || tok != NULL || strcmp(f[4], "aws4_request") != 0)
        return "malformed credential scope";
    snprintf(r->access_key, sizeof r->access_key, "%s", f[0]);
    snprintf(r->region, sizeof r->region, "%s", f[2]);
    snprintf(r->service, sizeof r->service, "%s", f[3]);
    if (header_value(wsi, "x-amz-date", amzdate, sizeof amzdate) <= 0 || !amz_date_ok(amzdate))
        return "missing or malformed X-Amz-Date";
    if (strncmp(amzdate, f[1], 8) != 0 || strlen(f[1]) != 8)
        return "scope date differs from X-Amz-Date";
    long long skew = amz_date_epoch(amzdate) - (long long)(sim_wall_ms() / 1000);
    if (skew > 900 || skew < -900)
        return "X-Amz-Date more than 15 minutes off";
    const struct sim_key *k = sim_keys_find(r->access_key);
    if (k == NULL)
        return "unknown access key";

    /* Signed headers must include host and x-amz-date, and the session token
     * when the key has one. */
    char names[256];
    snprintf(names, sizeof names, "%s", r->signed_headers);
    const char *hn[MAX_SIGNED];
    int nh = 0, has_host = 0, has_date = 0, has_tok = 0;
    for (tok = strtok_r(names, ";", &save); tok && nh < MAX_SIGNED; tok = strtok_r(NULL, ";", &save)) {
        if (nh > 0 && strcmp(hn[nh - 1], tok) >= 0)
            return "SignedHeaders not sorted";
        for (const char *c = tok; *c; c++)
            if (isupper((unsigned char)*c))
                return "SignedHeaders not lower case";
        has_host |= strcmp(tok, "host") == 0;
        has_date |= strcmp(tok, "x-amz-date") == 0;
        has_tok |= strcmp(tok, "x-amz-security-token") == 0;
        hn[nh++] = tok;
    }
    if (!has_host || !has_date)
        return "host and x-amz-date must be signed";
    const char *want_tok = sim_key_token(k);
    if (want_tok[0]) {
        char got[600];
        if (!has_tok)
            return "x-amz-security-token not signed";
        if (header_value(wsi, "x-amz-security-token", got, sizeof got) <= 0 || strcmp(got, want_tok) != 0)
            return "wrong security token";
    }

    static char canon[CANON_MAX];
    size_t len = 0;
    canon[0] = '\0';
    char uri[512];
    if (lws_hdr_copy(wsi, uri, sizeof uri, strcmp(method, "GET") == 0 ? WSI_TOKEN_GET_URI : WSI_TOKEN_POST_URI) < 0)
        return "no request URI";
    uri[strcspn(uri, "?")] = '\0';
    put(canon, sizeof canon, &len, method, strlen(method));
    put(canon, sizeof canon, &len, "\n", 1);
    put_encoded(canon, sizeof canon, &len, uri[0] ? uri : "/", 1);
    put(canon, sizeof canon, &len, "\n", 1);
    canonical_query(wsi, canon, sizeof canon, &len);
    put(canon, sizeof canon, &len, "\n", 1);
    for (int i = 0; i < nh; i++) {
        char v[1024];
        if (header_value(wsi, hn[i], v, sizeof v) < 0)
            return "a signed header is missing";
        put(canon, sizeof canon, &len, hn[i], strlen(hn[i]));
        put(canon, sizeof canon, &len, ":", 1);
        put_header_value(canon, sizeof canon, &len, v);
        put(canon, sizeof canon, &len, "\n", 1);
    }
    put(canon, sizeof canon, &len, "\n", 1);
    put(canon, sizeof canon, &len, r->signed_headers, strlen(r->signed_headers));
    put(canon, sizeof canon, &len, "\n", 1);
    char ph[65];
    sha256_hex(body ? body : "", body ? body_len : 0, ph);
    put(canon, sizeof canon, &len, ph, 64);
    if (len >= sizeof canon)
        return "canonical request too long";

    char ch[65], sts[512];
    sha256_hex(canon, len, ch);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amzdate, f[1], r->region,
             r->service, ch);
    char kseed[256];
    snprintf(kseed, sizeof kseed, "AWS4%s", sim_key_secret(k));
    uint8_t kd[32], kr[32], ks[32], kk[32], out[32];
    hmac((const uint8_t *)kseed, strlen(kseed), f[1], kd);
    hmac(kd, 32, r->region, kr);
    hmac(kr, 32, r->service, ks);
    hmac(ks, 32, "aws4_request", kk);
    hmac(kk, 32, sts, out);
    OPENSSL_cleanse(kseed, sizeof kseed);
    char want[65];
    hexify(out, 32, want);
    if (strlen(sig) != 64 || CRYPTO_memcmp(want, sig, 64) != 0)
        return "signature mismatch";
    return NULL;
}

void sim_sigv4_verify(struct lws *wsi, const char *method, const char *body, size_t body_len, int is_ws,
                      struct sim_sigv4_result *r)
{
    memset(r, 0, sizeof *r);
    r->error = verify(wsi, method, body, body_len, r);
    r->ok = r->error == NULL;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "kind", is_ws ? "ws" : "api");
    cJSON_AddBoolToObject(f, "present", r->present);
    cJSON_AddBoolToObject(f, "ok", r->ok);
    cJSON_AddStringToObject(f, "access_key", r->access_key);
    cJSON_AddStringToObject(f, "service", r->service);
    cJSON_AddStringToObject(f, "region", r->region);
    cJSON_AddStringToObject(f, "signed_headers", r->signed_headers);
    if (r->error)
        cJSON_AddStringToObject(f, "error", r->error);
    if (is_ws) {
        /* What lws's decoding left of the cell-number's raw '+': a space means
         * the client sent '+' (or %20), a '+' means it escaped it as %2B. */
        char arg[128];
        const char *cell = lws_get_urlarg_by_name(wsi, "cell-number=", arg, (int)sizeof arg);
        if (cell)
            cJSON_AddStringToObject(f, "cell_plus", strchr(cell, ' ') ? "raw" : strchr(cell, '+') ? "escaped" : "none");
    }
    sim_record_global("sigv4", f);
}
