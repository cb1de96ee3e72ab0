/* Handshake payload JSON (PROTOCOL.md §8, §9.4, §9.5, §10.1.5, §5.1).
 *
 * Parsing mirrors Go's encoding/json as the official plugin uses it: object
 * keys match struct fields case-insensitively (ASCII) and the last duplicate
 * wins; values of the wrong type read as "" (Go leaves the field empty).
 * Building mirrors json.Marshal: compact, fixed key order, Go's string
 * escaping (HTML-safe, invalid UTF-8 as \ufffd). */
#include "ssm_handshake.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing helpers ---------------------------------------------------- */

/* Parses exactly n bytes as one JSON value. Go rejects raw NUL bytes anywhere
 * in JSON, so do we (cJSON would stop at the first one). */
static cJSON *parse_payload(const uint8_t *p, size_t n)
{
    if (!p || n == 0 || n > INT_MAX - 1 || memchr(p, 0, n))
        return NULL;
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    memcpy(copy, p, n);
    copy[n] = '\0';
    /* The length passed includes the NUL: cJSON checks for it when it is
     * asked to reject trailing garbage. */
    cJSON *root = cJSON_ParseWithLengthOpts(copy, n + 1, NULL, 1);
    free(copy);
    return root;
}

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* Object member by case-insensitive key, last duplicate wins (Go semantics). */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *found = NULL, *it;
    if (!cJSON_IsObject(obj))
        return NULL;
    cJSON_ArrayForEach(it, obj)
    {
        if (it->string && ascii_ieq(it->string, key))
            found = it;
    }
    return found;
}

/* The member's string value, or "" when absent or not a string. */
static const char *member_str(const cJSON *obj, const char *key)
{
    const cJSON *v = member(obj, key);
    return (cJSON_IsString(v) && v->valuestring) ? v->valuestring : "";
}


/* Replaces *slot with a copy of s. Returns 0, or -1 when out of memory. */
static int set_str(char **slot, const char *s)
{
    char *d = strdup(s);
    if (!d)
        return -1;
    free(*slot);
    *slot = d;
    return 0;
}

/* ---- HandshakeRequest --------------------------------------------------- */

static enum ssm_session_kind session_kind(const char *type)
{
    if (!strcmp(type, "Standard_Stream") || !strcmp(type, "InteractiveCommands") ||
        !strcmp(type, "NonInteractiveCommands"))
        return SSM_SESSION_SHELL;
    if (!strcmp(type, "Port"))
        return SSM_SESSION_PORT;
    return SSM_SESSION_UNKNOWN;
}

static void port_props_free(ssm_port_props *pp)
{
    free(pp->port_number);
    free(pp->local_port_number);
    free(pp->local_unix_socket);
    free(pp->local_connection_type);
    free(pp->type);
    free(pp->host);
    memset(pp, 0, sizeof *pp);
}

/* Port properties; props may be NULL or a non-object (all ""). Non-string
 * values read as "", as the official plugin's re-decode into string fields
 * leaves them empty. */
static int port_props_fill(ssm_port_props *pp, const cJSON *props)
{
    if (set_str(&pp->port_number, member_str(props, "portNumber")) ||
        set_str(&pp->local_port_number, member_str(props, "localPortNumber")) ||
        set_str(&pp->local_unix_socket, member_str(props, "localUnixSocket")) ||
        set_str(&pp->local_connection_type, member_str(props, "localConnectionType")) ||
        set_str(&pp->type, member_str(props, "type")) ||
        set_str(&pp->host, member_str(props, "host")))
        return -1;
    return 0;
}

/* A later SessionType action replaces an earlier one. */
static int take_session_type(ssm_hs_request *r, const cJSON *params)
{
    if (set_str(&r->session_type, member_str(params, "SessionType")))
        return -1;
    r->kind = session_kind(r->session_type);
    return port_props_fill(&r->port, r->kind == SSM_SESSION_PORT ? member(params, "Properties")
                                                                  : NULL);
}

static int take_kms(ssm_hs_request *r, const cJSON *params)
{
    if (set_str(&r->kms_key_id, member_str(params, "KMSKeyId")) ||
        set_str(&r->kms_challenge, member_str(params, "Challenge")))
        return -1;
    return 0;
}

static int take_action(ssm_hs_request *r, const cJSON *act)
{
    ssm_hs_action *a = &r->actions[r->n_actions];
    /* Keep one entry per requested action even when malformed, so the
     * response can echo every one of them (as unsupported, type ""). */
    a->type = strdup(member_str(act, "ActionType"));
    if (!a->type)
        return -1;
    r->n_actions++;
    const cJSON *params = member(act, "ActionParameters");
    if (!strcmp(a->type, "SessionType")) {
        a->is_session_type = true;
        return take_session_type(r, params);
    }
    if (!strcmp(a->type, "KMSEncryption")) {
        a->is_kms = true;
        return take_kms(r, params);
    }
    return 0;
}

int ssm_hs_request_parse(const uint8_t *p, size_t n, ssm_hs_request *out)
{
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    cJSON *root = parse_payload(p, n);
    if (!cJSON_IsObject(root))
        goto fail;
    if (!(out->agent_version = strdup(member_str(root, "AgentVersion"))))
        goto fail;
    const cJSON *acts = member(root, "RequestedClientActions");
    if (cJSON_IsArray(acts)) {
        /* More than we can echo: refuse rather than silently drop one. */
        if (cJSON_GetArraySize(acts) > SSM_HS_MAX_ACTIONS)
            goto fail;
        const cJSON *act;
        cJSON_ArrayForEach(act, acts)
        {
            if (take_action(out, act))
                goto fail;
        }
    }
    if (out->kind != SSM_SESSION_PORT && port_props_fill(&out->port, NULL))
        goto fail;
    cJSON_Delete(root);
    return 0;
fail:
    cJSON_Delete(root);
    ssm_hs_request_free(out);
    return -1;
}

void ssm_hs_request_free(ssm_hs_request *r)
{
    if (!r)
        return;
    free(r->agent_version);
    for (size_t i = 0; i < r->n_actions && i < SSM_HS_MAX_ACTIONS; i++)
        free(r->actions[i].type);
    free(r->session_type);
    port_props_free(&r->port);
    free(r->kms_key_id);
    free(r->kms_challenge);
    memset(r, 0, sizeof *r);
}

/* ---- JSON writing ------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n >= b->cap - b->len || !b->p) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static char *sb_finish(sbuf *b)
{
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

/* Length of the valid UTF-8 sequence at s (max n bytes), or 0 if invalid.
 * Rejects overlongs, surrogates and code points above U+10FFFF, as Go does. */
static size_t utf8_valid_len(const unsigned char *s, size_t n, unsigned long *cp)
{
    unsigned char c = s[0];
    size_t len;
    unsigned long v, min;
    if (c < 0xC2)
        return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c < 0xF0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c < 0xF5) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Writes s as a JSON string exactly as Go's json.Marshal does. */
static void sb_json_str(sbuf *b, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), i = 0, start = 0;
    sb_put(b, "\"", 1);
    while (i < n) {
        unsigned char c = s[i];
        const char *esc = NULL;
        char u[7];
        size_t adv = 1;
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                i++;
                continue;
            }
            switch (c) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default:
                snprintf(u, sizeof u, "\\u00%c%c", hex[c >> 4], hex[c & 0xF]);
                esc = u;
            }
        } else {
            unsigned long cp = 0;
            size_t len = utf8_valid_len(s + i, n - i, &cp);
            if (len == 0) {
                esc = "\\ufffd";
            } else if (cp == 0x2028 || cp == 0x2029) {
                esc = cp == 0x2028 ? "\\u2028" : "\\u2029";
                adv = len;
            } else {
                i += len;
                continue;
            }
        }
        sb_put(b, str + start, i - start);
        sb_puts(b, esc);
        i += adv;
        start = i;
    }
    sb_put(b, str + start, n - start);
    sb_put(b, "\"", 1);
}

/* ---- HandshakeResponse -------------------------------------------------- */

static bool action_failed(const ssm_hs_result *r)
{
    return r->status != SSM_ACTION_SUCCESS;
}

/* The per-action Error text and the Errors[] entry differ for failures:
 * "Failed to process action <T>: <e>" vs "<e>" (official behaviour). */
static void put_action_error(sbuf *b, const ssm_hs_result *r)
{
    const char *type = r->type ? r->type : "";
    const char *err = r->error ? r->error : "";
    sbuf tmp = {0};
    if (!action_failed(r)) {
        sb_json_str(b, "");
        return;
    }
    if (r->status == SSM_ACTION_UNSUPPORTED) {
        sb_puts(&tmp, "Unsupported action ");
        sb_puts(&tmp, type);
    } else {
        sb_puts(&tmp, "Failed to process action ");
        sb_puts(&tmp, type);
        sb_puts(&tmp, ": ");
        sb_puts(&tmp, err);
    }
    if (tmp.oom)
        b->oom = true;
    else
        sb_json_str(b, tmp.p);
    free(tmp.p);
}

static void put_errors_entry(sbuf *b, const ssm_hs_result *r)
{
    const char *type = r->type ? r->type : "";
    if (r->status == SSM_ACTION_UNSUPPORTED) {
        sbuf tmp = {0};
        sb_puts(&tmp, "Unsupported action ");
        sb_puts(&tmp, type);
        if (tmp.oom)
            b->oom = true;
        else
            sb_json_str(b, tmp.p);
        free(tmp.p);
    } else {
        sb_json_str(b, r->error ? r->error : "");
    }
}

static void put_action(sbuf *b, const ssm_hs_result *r)
{
    char num[24];
    sb_puts(b, "{\"ActionType\":");
    sb_json_str(b, r->type ? r->type : "");
    snprintf(num, sizeof num, "%d", r->status);
    sb_puts(b, ",\"ActionStatus\":");
    sb_puts(b, num);
    sb_puts(b, ",\"ActionResult\":");
    if (r->status == SSM_ACTION_SUCCESS && r->kms_ciphertext_b64) {
        sb_puts(b, "{\"KMSCipherTextKey\":");
        sb_json_str(b, r->kms_ciphertext_b64);
        sb_puts(b, ",\"KMSCipherTextHash\":null");
        if (r->challenge_ack)
            sb_puts(b, ",\"ChallengeAcknowledgement\":true");
        sb_puts(b, "}");
    } else {
        sb_puts(b, "null");
    }
    sb_puts(b, ",\"Error\":");
    put_action_error(b, r);
    sb_puts(b, "}");
}

char *ssm_hs_response_build(const char *client_version, const ssm_hs_result *res, size_t n)
{
    sbuf b = {0};
    size_t failed = 0;
    if (n && !res)
        return NULL;
    sb_puts(&b, "{\"ClientVersion\":");
    sb_json_str(&b, client_version ? client_version : "");
    sb_puts(&b, ",\"ProcessedClientActions\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(&b, ",");
        put_action(&b, &res[i]);
        failed += action_failed(&res[i]);
    }
    sb_puts(&b, "],\"Errors\":");
    if (!failed) {
        sb_puts(&b, "null");
    } else {
        bool first = true;
        sb_puts(&b, "[");
        for (size_t i = 0; i < n; i++) {
            if (!action_failed(&res[i]))
                continue;
            if (!first)
                sb_puts(&b, ",");
            first = false;
            put_errors_entry(&b, &res[i]);
        }
        sb_puts(&b, "]");
    }
    sb_puts(&b, "}");
    return sb_finish(&b);
}

/* ---- HandshakeComplete, challenge, size, channel_closed ----------------- */

int ssm_hs_complete_parse(const uint8_t *p, size_t n, char **customer_message)
{
    if (!customer_message)
        return -1;
    *customer_message = NULL;
    cJSON *root = parse_payload(p, n);
    int rc = -1;
    if (cJSON_IsObject(root)) {
        *customer_message = strdup(member_str(root, "CustomerMessage"));
        rc = *customer_message ? 0 : -1;
    }
    cJSON_Delete(root);
    return rc;
}

static bool is_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Strict standard base64 with padding (what Go's json emits for []byte).
 * Returns 0 and a malloc'd buffer, or -1. */
static int b64_decode(const char *s, uint8_t **bytes, size_t *len)
{
    size_t n = strlen(s), pad = 0;
    if (n % 4 != 0 || n > INT_MAX)
        return -1;
    if (n >= 1 && s[n - 1] == '=')
        pad++;
    if (n >= 2 && s[n - 2] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (!is_b64_char((unsigned char)s[i]))
            return -1;
    uint8_t *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return -1;
    int got = n ? EVP_DecodeBlock(out, (const unsigned char *)s, (int)n) : 0;
    /* EVP_DecodeBlock counts the padding as zero bytes; drop them. */
    if (got < 0 || (size_t)got < pad) {
        free(out);
        return -1;
    }
    *bytes = out;
    *len = (size_t)got - pad;
    return 0;
}

int ssm_challenge_parse(const uint8_t *p, size_t n, uint8_t **bytes, size_t *len)
{
    if (!bytes || !len)
        return -1;
    *bytes = NULL;
    *len = 0;
    cJSON *root = parse_payload(p, n);
    const cJSON *c = member(root, "Challenge");
    int rc = -1;
    if (cJSON_IsString(c) && c->valuestring)
        rc = b64_decode(c->valuestring, bytes, len);
    cJSON_Delete(root);
    return rc;
}

char *ssm_challenge_build(const uint8_t *bytes, size_t len)
{
    static const char head[] = "{\"Challenge\":\"", tail[] = "\"}";
    if ((!bytes && len) || len > (size_t)INT_MAX / 4 * 3 - 3)
        return NULL;
    size_t b64 = (len + 2) / 3 * 4;
    char *out = malloc(sizeof head - 1 + b64 + sizeof tail);
    if (!out)
        return NULL;
    memcpy(out, head, sizeof head - 1);
    int w = len ? EVP_EncodeBlock((unsigned char *)out + sizeof head - 1, bytes, (int)len) : 0;
    memcpy(out + sizeof head - 1 + (size_t)w, tail, sizeof tail);
    return out;
}

int ssm_size_body(char *buf, size_t cap, unsigned cols, unsigned rows)
{
    if (!buf || cap == 0)
        return -1;
    int w = snprintf(buf, cap, "{\"cols\":%u,\"rows\":%u}", cols, rows);
    if (w < 0 || (size_t)w >= cap) {
        buf[0] = '\0';
        return -1;
    }
    return w;
}

char *ssm_channel_closed_output(const uint8_t *p, size_t n)
{
    cJSON *root = parse_payload(p, n);
    char *out = strdup(member_str(root, "Output"));
    cJSON_Delete(root);
    return out;
}
