/* Fake credential endpoints on the sim's port, each issuing temporary keys
 * the SigV4 verifier accepts: STS AssumeRole / AssumeRoleWithWebIdentity
 * (POST / form, XML), SSO portal (GET /federation/credentials), SSO-OIDC
 * CreateToken (POST /token), IMDSv2 (PUT /latest/api/token, GET
 * /latest/meta-data/iam/security-credentials/[role]) and container
 * credentials (GET /ecs/credentials, Authorization checked). Requests are
 * recorded without secrets (token lengths only). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "sigv4.h"
#include "sim.h"

#define IMDS_ROLE "agent-sim-role"

static char g_imds_token[64];

struct issued {
    char ak[32], sk[64], tok[160], exp[32];
};

static int issue(struct issued *c, const char *provider)
{
    if (sim_keys_issue(c->ak, sizeof c->ak, c->sk, sizeof c->sk, c->tok, sizeof c->tok) != 0)
        return -1;
    time_t t = (time_t)(sim_wall_ms() / 1000) + 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(c->exp, sizeof c->exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "provider", provider);
    cJSON_AddStringToObject(f, "access_key", c->ak);
    sim_record_global("creds_issued", f);
    return 0;
}

static int header(struct lws *wsi, const char *lname_colon, char *out, int cap)
{
    int n = lws_hdr_custom_copy(wsi, out, cap, lname_colon, (int)strlen(lname_colon));
    if (n < 0)
        out[0] = '\0';
    return n;
}

static void record_req(const char *what, cJSON *f)
{
    if (f == NULL)
        f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "endpoint", what);
    sim_record_global("creds_request", f);
}

static int credentials_json(struct lws *wsi, const char *provider)
{
    struct issued c;
    if (issue(&c, provider) != 0)
        return sim_http_respond(wsi, 500, "application/json", "{\"Code\":\"Full\"}");
    char body[1024];
    char now[32];
    time_t t = (time_t)(sim_wall_ms() / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(body, sizeof body,
             "{\"Code\":\"Success\",\"LastUpdated\":\"%s\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"%s\","
             "\"SecretAccessKey\":\"%s\",\"Token\":\"%s\",\"Expiration\":\"%s\"}",
             now, c.ak, c.sk, c.tok, c.exp);
    int rc = sim_http_respond(wsi, 200, "application/json", body);
    OPENSSL_cleanse(body, sizeof body);
    return rc;
}

/* GET and PUT requests. Returns 1 when handled (*rc = callback result). */
int sim_creds_http(struct lws *wsi, const char *method, const char *uri, int *rc)
{
    char v[4096];
    if (strcmp(method, "PUT") == 0 && strcmp(uri, "/latest/api/token") == 0) {
        header(wsi, "x-aws-ec2-metadata-token-ttl-seconds:", v, sizeof v);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "ttl", v);
        record_req("imds_token", f);
        if (v[0] == '\0') {
            *rc = sim_http_respond(wsi, 400, "text/plain", "missing TTL");
            return 1;
        }
        uint8_t r[24];
        sim_random_bytes(r, sizeof r);
        for (size_t i = 0; i < sizeof r; i++)
            g_imds_token[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"[r[i] & 31];
        g_imds_token[sizeof r] = '\0';
        *rc = sim_http_respond(wsi, 200, "text/plain", g_imds_token);
        return 1;
    }
    if (strcmp(method, "GET") != 0)
        return 0;
    static const char imds[] = "/latest/meta-data/iam/security-credentials/";
    if (strncmp(uri, imds, sizeof imds - 1) == 0) {
        const char *role = uri + sizeof imds - 1;
        header(wsi, "x-aws-ec2-metadata-token:", v, sizeof v);
        int tok_ok = g_imds_token[0] && strcmp(v, g_imds_token) == 0;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "role", role);
        cJSON_AddBoolToObject(f, "token_ok", tok_ok);
        record_req("imds_credentials", f);
        if (!tok_ok)
            *rc = sim_http_respond(wsi, 401, "text/plain", "");
        else if (role[0] == '\0')
            *rc = sim_http_respond(wsi, 200, "text/plain", IMDS_ROLE);
        else if (strcmp(role, IMDS_ROLE) != 0)
            *rc = sim_http_respond(wsi, 404, "text/plain", "");
        else
            *rc = credentials_json(wsi, "imds");
        return 1;
    }
    if (strcmp(uri, "/ecs/credentials") == 0) {
        int n = lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP_AUTHORIZATION);
        int ok = g_cfg.ecs_auth == NULL || (n > 0 && strcmp(v, g_cfg.ecs_auth) == 0);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddBoolToObject(f, "has_authorization", n > 0);
        cJSON_AddBoolToObject(f, "authorization_ok", ok);
        record_req("ecs", f);
        *rc = ok ? credentials_json(wsi, "ecs")
                 : sim_http_respond(wsi, 401, "application/json", "{\"Code\":\"Unauthorized\"}");
        return 1;
    }
    if (strcmp(uri, "/federation/credentials") == 0) {
        char acct[64] = "", role[128] = "";
        char a1[96], a2[160];
        const char *p;
        if ((p = lws_get_urlarg_by_name(wsi, "account_id=", a1, (int)sizeof a1)))
            snprintf(acct, sizeof acct, "%s", p);
        if ((p = lws_get_urlarg_by_name(wsi, "role_name=", a2, (int)sizeof a2)))
            snprintf(role, sizeof role, "%s", p);
        header(wsi, "x-amz-sso_bearer_token:", v, sizeof v);
        int ok = v[0] && (g_cfg.sso_token == NULL || strcmp(v, g_cfg.sso_token) == 0);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "account_id", acct);
        cJSON_AddStringToObject(f, "role_name", role);
        cJSON_AddBoolToObject(f, "bearer_ok", ok);
        record_req("sso_role_credentials", f);
        struct issued c;
        if (!ok || !acct[0] || !role[0] || issue(&c, "sso") != 0) {
            *rc = sim_http_respond(wsi, 401, "application/json",
                                   "{\"message\":\"Session token not found or invalid\"}");
            return 1;
        }
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"roleCredentials\":{\"accessKeyId\":\"%s\",\"secretAccessKey\":\"%s\",\"sessionToken\":\"%s\","
                 "\"expiration\":%llu}}",
                 c.ak, c.sk, c.tok, (unsigned long long)(sim_wall_ms() + 3600 * 1000ull));
        *rc = sim_http_respond(wsi, 200, "application/json", body);
        OPENSSL_cleanse(body, sizeof body);
        return 1;
    }
    return 0;
}

/* Value of key in an x-www-form-urlencoded body, decoded into out. */
static int form_value(const char *body, size_t n, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = body, *end = body + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t o = 0;
            for (const char *q = p + kl + 1; q < e && o + 1 < cap; q++) {
                if (*q == '+') {
                    out[o++] = ' ';
                } else if (*q == '%' && e - q >= 3) {
                    char hx[3] = {q[1], q[2], 0};
                    out[o++] = (char)strtol(hx, NULL, 16);
                    q += 2;
                } else {
                    out[o++] = *q;
                }
            }
            out[o] = '\0';
            return 0;
        }
        p = e + 1;
    }
    out[0] = '\0';
    return -1;
}

static int sts_error(struct lws *wsi, int status, const char *code, const char *msg)
{
    char body[512];
    snprintf(body, sizeof body,
             "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
             "<Code>%s</Code><Message>%s</Message></Error><RequestId>agent-sim</RequestId></ErrorResponse>",
             code, msg);
    return sim_http_respond(wsi, status, "text/xml", body);
}

static int sts(struct lws *wsi, const char *body, size_t n)
{
    char action[64], role[256], name[128], webtok[4096];
    form_value(body, n, "Action", action, sizeof action);
    form_value(body, n, "RoleArn", role, sizeof role);
    form_value(body, n, "RoleSessionName", name, sizeof name);
    int web = strcmp(action, "AssumeRoleWithWebIdentity") == 0;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "action", action);
    cJSON_AddStringToObject(f, "role_arn", role);
    cJSON_AddStringToObject(f, "role_session_name", name);
    if (web) {
        form_value(body, n, "WebIdentityToken", webtok, sizeof webtok);
        cJSON_AddNumberToObject(f, "web_identity_token_len", (double)strlen(webtok));
    }
    record_req("sts", f);
    if (!web && strcmp(action, "AssumeRole") != 0)
        return sts_error(wsi, 400, "InvalidAction", "unsupported Action");
    if (role[0] == '\0')
        return sts_error(wsi, 400, "ValidationError", "RoleArn is required");
    if (web && webtok[0] == '\0')
        return sts_error(wsi, 400, "InvalidIdentityToken", "WebIdentityToken is required");
    if (!web) {
        struct sim_sigv4_result r;
        sim_sigv4_verify(wsi, "POST", body, n, 0, &r);
        if (g_cfg.require_sigv4 && (!r.ok || strcmp(r.service, "sts") != 0))
            return sts_error(wsi, 403, "SignatureDoesNotMatch", "request signature rejected");
    }
    struct issued c;
    if (issue(&c, web ? "sts-web-identity" : "sts-assume-role") != 0)
        return sts_error(wsi, 500, "InternalError", "key store full");
    const char *tag = web ? "AssumeRoleWithWebIdentity" : "AssumeRole";
    char xml[2048];
    snprintf(xml, sizeof xml,
             "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><%sResult><Credentials>"
             "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
             "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
             "<AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROASIM:%s</AssumedRoleId></AssumedRoleUser>"
             "</%sResult><ResponseMetadata><RequestId>agent-sim</RequestId></ResponseMetadata></%sResponse>",
             tag, tag, c.ak, c.sk, c.tok, c.exp, role, name, name, tag, tag);
    int rc = sim_http_respond(wsi, 200, "text/xml", xml);
    OPENSSL_cleanse(xml, sizeof xml);
    return rc;
}

static int oidc_create_token(struct lws *wsi, const char *body, size_t n)
{
    cJSON *req = cJSON_ParseWithLength(body, n);
    const cJSON *gt = cJSON_GetObjectItemCaseSensitive(req, "grantType");
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(req, "refreshToken");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(req, "clientId");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "grant_type", cJSON_IsString(gt) ? gt->valuestring : "");
    cJSON_AddBoolToObject(f, "has_refresh_token", cJSON_IsString(rt) && rt->valuestring[0]);
    cJSON_AddBoolToObject(f, "has_client_id", cJSON_IsString(cid) && cid->valuestring[0]);
    record_req("sso_oidc_create_token", f);
    int ok = cJSON_IsString(gt) && strcmp(gt->valuestring, "refresh_token") == 0 && cJSON_IsString(rt) &&
             rt->valuestring[0];
    cJSON_Delete(req);
    if (!ok)
        return sim_http_respond(wsi, 400, "application/json", "{\"error\":\"invalid_grant\"}");
    char body_out[512];
    snprintf(body_out, sizeof body_out,
             "{\"accessToken\":\"%s\",\"tokenType\":\"Bearer\",\"expiresIn\":3600,\"refreshToken\":\"sim-refresh-2\"}",
             g_cfg.sso_token ? g_cfg.sso_token : "sim-refreshed-access-token");
    return sim_http_respond(wsi, 200, "application/json", body_out);
}

/* POST without X-Amz-Target: STS on "/", SSO-OIDC on "/token". Returns 1
 * when handled. */
int sim_creds_post(struct lws *wsi, const char *uri, const char *body, size_t n, int *rc)
{
    if (strcmp(uri, "/token") == 0) {
        *rc = oidc_create_token(wsi, body ? body : "", n);
        return 1;
    }
    char action[64];
    if (strcmp(uri, "/") == 0 && body && form_value(body, n, "Action", action, sizeof action) == 0) {
        *rc = sts(wsi, body, n);
        return 1;
    }
    return 0;
}
