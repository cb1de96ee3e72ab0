/* The network providers' pure halves: STS request bodies and XML responses,
 * the SSO token cache and portal response, ECS/IMDS configuration and JSON. */
#include "aws_creds.h"
#include "aws_sigv4.h" /* aws_url_parse */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

static void wipe_tree(cJSON *j)
{
    for (cJSON *c = j; c; c = c->next) {
        if (cJSON_IsString(c) && c->valuestring)
            OPENSSL_cleanse(c->valuestring, strlen(c->valuestring));
        if (c->child)
            wipe_tree(c->child);
    }
}

static void wipe_delete(cJSON *j)
{
    if (j) {
        wipe_tree(j);
        cJSON_Delete(j);
    }
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* ---- STS ---- */

static void form_put(char **buf, size_t *len, size_t *cap, const char *k, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!*buf || !v)
        return;
    size_t need = *len + strlen(k) + 3 * strlen(v) + 3;
    if (need > *cap) {
        char *p = realloc(*buf, need * 2);
        if (!p) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = p;
        *cap = need * 2;
    }
    char *o = *buf + *len;
    if (*len)
        *o++ = '&';
    o += sprintf(o, "%s=", k);
    for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '_' || *s == '.' || *s == '~') {
            *o++ = (char)*s;
        } else {
            *o++ = '%';
            *o++ = hex[*s >> 4];
            *o++ = hex[*s & 15];
        }
    }
    *o = '\0';
    *len = (size_t)(o - *buf);
}

static char *sts_body(const aws_creds_plan *p, const char *action, bool web)
{
    if (!p->role_arn || !p->role_session_name || (web && !p->web_identity_token))
        return NULL;
    size_t len = 0, cap = 256;
    char *b = calloc(1, cap);
    char dur[16];
    snprintf(dur, sizeof dur, "%d", p->duration_s);
    form_put(&b, &len, &cap, "Action", action);
    form_put(&b, &len, &cap, "Version", "2011-06-15");
    form_put(&b, &len, &cap, "RoleArn", p->role_arn);
    form_put(&b, &len, &cap, "RoleSessionName", p->role_session_name);
    if (p->duration_s > 0)
        form_put(&b, &len, &cap, "DurationSeconds", dur);
    if (!web && p->external_id)
        form_put(&b, &len, &cap, "ExternalId", p->external_id);
    if (web)
        form_put(&b, &len, &cap, "WebIdentityToken", p->web_identity_token);
    return b;
}

char *aws_sts_assume_role_body(const aws_creds_plan *p) { return sts_body(p, "AssumeRole", false); }
char *aws_sts_web_identity_body(const aws_creds_plan *p)
{
    return sts_body(p, "AssumeRoleWithWebIdentity", true);
}

/* Text of the first <tag>...</tag> after from, entity-decoded; malloc'd. */
static char *xml_text(const char *from, const char *tag)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *s = strstr(from, open);
    if (!s)
        return NULL;
    s += strlen(open);
    const char *e = strstr(s, close);
    if (!e)
        return NULL;
    char *out = malloc((size_t)(e - s) + 1), *o = out;
    if (!out)
        return NULL;
    static const struct { const char *ent; char c; } ents[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    while (s < e) {
        bool done = false;
        if (*s == '&')
            for (size_t i = 0; i < 5 && !done; i++) {
                size_t l = strlen(ents[i].ent);
                if ((size_t)(e - s) >= l && !strncmp(s, ents[i].ent, l)) {
                    *o++ = ents[i].c;
                    s += l;
                    done = true;
                }
            }
        if (!done)
            *o++ = *s++;
    }
    *o = '\0';
    return out;
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

int aws_sts_parse_response(const char *xml, size_t n, aws_credentials *out, char *err,
                           size_t errcap)
{
    char *doc = malloc(n + 1);
    if (!doc)
        return -1;
    memcpy(doc, xml, n);
    doc[n] = '\0';
    if (memchr(doc, '\0', n)) { /* embedded NUL: not text we accept */
        snprintf(err, errcap, "malformed STS response");
        wipe_free(doc);
        return -1;
    }
    int rc = -1;
    const char *creds = strstr(doc, "<Credentials>");
    if (!creds) {
        char *code = xml_text(doc, "Code"), *msg = xml_text(doc, "Message");
        snprintf(err, errcap, "%s: %s", code ? code : "BadResponse",
                 msg ? msg : "no Credentials in STS response");
        free(code);
        free(msg);
    } else {
        char *id = xml_text(creds, "AccessKeyId"), *sec = xml_text(creds, "SecretAccessKey");
        char *tok = xml_text(creds, "SessionToken"), *exp = xml_text(creds, "Expiration");
        time_t e = exp ? aws_parse_iso8601(exp) : -1;
        if (!id || !sec || !tok || e < 0)
            snprintf(err, errcap, "incomplete Credentials in STS response");
        else
            rc = aws_credentials_set(out, id, sec, tok, e, "sts");
        wipe_free(id);
        wipe_free(sec);
        wipe_free(tok);
        free(exp);
    }
    wipe_free(doc);
    return rc;
}

/* ---- SSO ---- */

int aws_sso_parse_role_credentials(const char *json, size_t n, aws_credentials *out, char *err,
                                   size_t errcap)
{
    cJSON *j = cJSON_ParseWithLength(json, n);
    const cJSON *rc_obj = cJSON_GetObjectItemCaseSensitive(j, "roleCredentials");
    const char *id = jstr(rc_obj, "accessKeyId"), *sec = jstr(rc_obj, "secretAccessKey");
    const char *tok = jstr(rc_obj, "sessionToken");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(rc_obj, "expiration");
    int rc = -1;
    if (!id || !sec || !cJSON_IsNumber(exp) || exp->valuedouble <= 0) {
        const char *msg = jstr(j, "message");
        snprintf(err, errcap, "%s", msg ? msg : "malformed GetRoleCredentials response");
    } else {
        rc = aws_credentials_set(out, id, sec, tok, (time_t)(exp->valuedouble / 1000), "sso");
    }
    wipe_delete(j);
    return rc;
}

/* ---- ECS / IMDS ---- */

int aws_creds_parse_container_json(const char *json, size_t n, const char *source,
                                   aws_credentials *out, char *err, size_t errcap)
{
    cJSON *j = cJSON_ParseWithLength(json, n);
    const char *id = jstr(j, "AccessKeyId"), *sec = jstr(j, "SecretAccessKey");
    const char *tok = jstr(j, "Token"), *exp = jstr(j, "Expiration"), *code = jstr(j, "Code");
    time_t e = exp ? aws_parse_iso8601(exp) : 0;
    int rc = -1;
    if (code && strcmp(code, "Success") != 0)
        snprintf(err, errcap, "credentials endpoint reported %.64s", code);
    else if (!id || !sec || e < 0)
        snprintf(err, errcap, "malformed credentials response");
    else
        rc = aws_credentials_set(out, id, sec, tok, e, source);
    wipe_delete(j);
    return rc;
}

/* Container credentials: full URI, or the relative URI on the ECS agent's
 * link-local address. The token file wins over the token variable. */
int aws_creds_container_plan(aws_creds_plan *plan)
{
    const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (rel && *rel) {
        size_t n = strlen(rel) + 32;
        plan->url = malloc(n);
        if (plan->url)
            snprintf(plan->url, n, "http://169.254.170.2%s%s", *rel == '/' ? "" : "/", rel);
    } else if (full && *full) {
        /* As the SDKs: plain HTTP only to loopback or the ECS/EKS agents. */
        aws_url u;
        struct in_addr a4;
        bool ok = aws_url_parse(full, &u) == 0 &&
                  (u.tls ||
                   (inet_pton(AF_INET, u.host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) ||
                   !strcasecmp(u.host, "localhost") ||
                   !strcmp(u.host, "::1") || !strcmp(u.host, "169.254.170.2") ||
                   !strcmp(u.host, "169.254.170.23") || !strcasecmp(u.host, "fd00:ec2::23"));
        aws_url_free(&u);
        if (!ok) {
            aws_errf(plan->error, sizeof plan->error,
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI must use https or a loopback/ECS host");
            return -1;
        }
        plan->url = strdup(full);
    } else {
        return -1;
    }
    const char *tf = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tv = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (tf && *tf) {
        FILE *f = fopen(tf, "rb");
        char buf[8192];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        buf[n] = '\0';
        if (n)
            plan->authorization = strdup(buf);
        OPENSSL_cleanse(buf, sizeof buf);
    } else if (tv && *tv) {
        plan->authorization = strdup(tv);
    }
    if (!plan->url)
        return -1;
    plan->step = AWS_STEP_ECS;
    return 0;
}

int aws_creds_imds_plan(aws_creds_plan *plan)
{
    const char *dis = getenv("AWS_EC2_METADATA_DISABLED");
    if (dis && !strcasecmp(dis, "true"))
        return -1;
    const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    plan->imds_endpoint = strdup(ep && *ep ? ep : "http://169.254.169.254");
    if (!plan->imds_endpoint)
        return -1;
    size_t l = strlen(plan->imds_endpoint);
    while (l > 8 && plan->imds_endpoint[l - 1] == '/')
        plan->imds_endpoint[--l] = '\0';
    plan->step = AWS_STEP_IMDS;
    return 0;
}
