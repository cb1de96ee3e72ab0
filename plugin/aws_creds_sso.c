/* The SSO token cache the AWS CLI writes on `aws sso login`, and refreshing
 * an expired access token with its refresh token (SSO-OIDC CreateToken). */
#include "aws_creds.h"
#include "file_replace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define MAX_CACHE_FILE 65536

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void wipe_delete(cJSON *j)
{
    for (cJSON *c = j ? j->child : NULL; c; c = c->next)
        if (cJSON_IsString(c) && c->valuestring)
            OPENSSL_cleanse(c->valuestring, strlen(c->valuestring));
    cJSON_Delete(j);
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring && *v->valuestring ? v->valuestring : NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void aws_sso_token_clear(aws_sso_token *t)
{
    if (!t)
        return;
    free(t->path);
    wipe_free(t->access_token);
    wipe_free(t->refresh_token);
    wipe_free(t->client_id);
    wipe_free(t->client_secret);
    memset(t, 0, sizeof *t);
}

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(MAX_CACHE_FILE);
    size_t n = buf ? fread(buf, 1, MAX_CACHE_FILE, f) : 0;
    fclose(f);
    cJSON *j = buf && n < MAX_CACHE_FILE ? cJSON_ParseWithLength(buf, n) : NULL;
    if (buf) {
        OPENSSL_cleanse(buf, n);
        free(buf);
    }
    return j;
}

int aws_sso_token_load(const char *cache_key, time_t now, aws_sso_token *t, char *err,
                       size_t errcap)
{
    memset(t, 0, sizeof *t);
    const char *home = getenv("HOME");
    if (!cache_key || !home || !*home) {
        snprintf(err, errcap, "no SSO cache");
        return -1;
    }
    uint8_t md[20];
    unsigned mdl = 0;
    if (EVP_Digest(cache_key, strlen(cache_key), md, &mdl, EVP_sha1(), NULL) != 1)
        return -1;
    char hexs[41];
    for (int i = 0; i < 20; i++)
        snprintf(hexs + 2 * i, 3, "%02x", md[i]);
    size_t pl = strlen(home) + 64;
    t->path = malloc(pl);
    if (!t->path)
        return -1;
    snprintf(t->path, pl, "%s/.aws/sso/cache/%s.json", home, hexs);
    cJSON *j = read_json(t->path);
    if (!cJSON_IsObject(j)) {
        snprintf(err, errcap, j ? "unreadable SSO token cache" : "no cached SSO token");
        wipe_delete(j);
        return -1;
    }
    const char *exp = jstr(j, "expiresAt"), *rexp = jstr(j, "registrationExpiresAt");
    t->expires_at = exp ? aws_parse_iso8601(exp) : -1;
    t->registration_expires_at = rexp ? aws_parse_iso8601(rexp) : -1;
    t->access_token = dup_or_null(jstr(j, "accessToken"));
    t->refresh_token = dup_or_null(jstr(j, "refreshToken"));
    t->client_id = dup_or_null(jstr(j, "clientId"));
    t->client_secret = dup_or_null(jstr(j, "clientSecret"));
    wipe_delete(j);
    if (t->access_token && t->expires_at > now + 60)
        return 0;
    if (t->refresh_token && t->client_id && t->client_secret &&
        t->registration_expires_at > now + 60)
        return 1;
    snprintf(err, errcap, t->access_token ? "the SSO session has expired"
                                          : "unreadable SSO token cache");
    return -1;
}

char *aws_sso_cached_token(const char *cache_key, time_t now, char *err, size_t errcap)
{
    aws_sso_token t;
    char *tok = NULL;
    int rc = aws_sso_token_load(cache_key, now, &t, err, errcap);
    if (rc == 0)
        tok = strdup(t.access_token);
    else if (rc == 1)
        snprintf(err, errcap, "the SSO session has expired");
    aws_sso_token_clear(&t);
    return tok;
}

char *aws_sso_oidc_refresh_body(const aws_sso_token *t)
{
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "clientId", t->client_id) ||
        !cJSON_AddStringToObject(j, "clientSecret", t->client_secret) ||
        !cJSON_AddStringToObject(j, "grantType", "refresh_token") ||
        !cJSON_AddStringToObject(j, "refreshToken", t->refresh_token)) {
        wipe_delete(j);
        return NULL;
    }
    char *s = cJSON_PrintUnformatted(j);
    wipe_delete(j);
    return s;
}

/* Rewrites the cache file with the new token, keeping every other field;
 * replaced atomically (ssm_file_replace), mode 0600 like the CLI's. */
static void store(const aws_sso_token *t)
{
    if (!t->path)
        return;
    cJSON *j = read_json(t->path);
    if (!cJSON_IsObject(j)) {
        wipe_delete(j);
        return;
    }
    char iso[32];
    struct tm tm;
    gmtime_r(&t->expires_at, &tm);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_DeleteItemFromObjectCaseSensitive(j, "accessToken");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "expiresAt");
    cJSON_AddStringToObject(j, "accessToken", t->access_token);
    cJSON_AddStringToObject(j, "expiresAt", iso);
    if (t->refresh_token) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "refreshToken");
        cJSON_AddStringToObject(j, "refreshToken", t->refresh_token);
    }
    char *text = cJSON_PrintUnformatted(j);
    wipe_delete(j);
    if (!text)
        return;
    (void)ssm_file_replace(t->path, text, strlen(text)); /* a cache: best effort */
    wipe_free(text);
}

int aws_sso_oidc_apply(const char *json, size_t n, time_t now, aws_sso_token *t, char *err,
                       size_t errcap)
{
    cJSON *j = cJSON_ParseWithLength(json, n);
    const char *at = jstr(j, "accessToken"), *rt = jstr(j, "refreshToken");
    const cJSON *ein = cJSON_GetObjectItemCaseSensitive(j, "expiresIn");
    int rc = -1;
    if (!at || !cJSON_IsNumber(ein) || ein->valuedouble <= 0) {
        const char *e = jstr(j, "error");
        snprintf(err, errcap, "SSO token refresh failed: %s", e ? e : "malformed response");
    } else {
        char *nat = strdup(at), *nrt = rt ? strdup(rt) : NULL;
        if (nat && (!rt || nrt)) {
            wipe_free(t->access_token);
            t->access_token = nat;
            if (nrt) {
                wipe_free(t->refresh_token);
                t->refresh_token = nrt;
            }
            t->expires_at = now + (time_t)ein->valuedouble;
            store(t);
            rc = 0;
        } else {
            wipe_free(nat);
            wipe_free(nrt);
        }
    }
    wipe_delete(j);
    return rc;
}
