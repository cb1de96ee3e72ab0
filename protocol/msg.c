/* ClientMessage codec (PROTOCOL.md §4): fixed 120-byte big-endian header,
 * payload to the end of the frame. No allocation, no I/O. */
#include "ssm_msg.h"

#include "ssm_uuid.h"

#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* Field offsets (§4 table). */
enum {
    OFF_HL = 0,
    OFF_TYPE = 4,
    OFF_SCHEMA = 36,
    OFF_CREATED = 40,
    OFF_SEQ = 48,
    OFF_FLAGS = 56,
    OFF_ID = 64,
    OFF_DIGEST = 80,
    OFF_PTYPE = 112,
    OFF_PLEN = 116,
};

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

/* SHA-256 fetched from the default provider once per process: EVP_sha256()
 * makes every EVP_Digest look the implementation up again (name lookups,
 * locks), about a quarter of the cost of hashing a 1 KiB payload. The
 * handle is immutable once fetched; OpenSSL's run-once makes it thread-safe.
 * Each thread keeps one digest context too (every message is hashed twice,
 * its payload and its ack's): EVP_Digest allocates and frees one per call. */
static EVP_MD *sha256_md;
static CRYPTO_ONCE sha256_once = CRYPTO_ONCE_STATIC_INIT;
static _Thread_local EVP_MD_CTX *sha256_ctx;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int sha256(const uint8_t *data, size_t len, uint8_t md[32])
{
    static const uint8_t empty = 0;
    unsigned int mdlen = 0;
    const EVP_MD *alg = EVP_sha256();
    if (CRYPTO_THREAD_run_once(&sha256_once, sha256_fetch) && sha256_md)
        alg = sha256_md;
    if (!sha256_ctx)
        sha256_ctx = EVP_MD_CTX_new();
    /* EVP wants a valid pointer even for empty input. */
    const uint8_t *p = len ? data : &empty;
    if (sha256_ctx) {
        if (EVP_DigestInit_ex2(sha256_ctx, alg, NULL) != 1 ||
            EVP_DigestUpdate(sha256_ctx, p, len) != 1 ||
            EVP_DigestFinal_ex(sha256_ctx, md, &mdlen) != 1 || mdlen != 32)
            return -1;
        return 0;
    }
    if (EVP_Digest(p, len, md, &mdlen, alg, NULL) != 1 || mdlen != 32)
        return -1;
    return 0;
}

/* ASCII whitespace as Go's strings.TrimSpace sees it in ASCII text. */
static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* §4.3 step 1: trim NULs at both ends, then whitespace. Returns the trimmed
 * length, or -1 if a NUL remains inside (it could not be a known type, and a
 * C string would silently cut it short). */
static int trim_type(const uint8_t *raw, char out[SSM_MSG_TYPE_LEN + 1])
{
    size_t b = 0, e = SSM_MSG_TYPE_LEN;
    while (b < e && raw[b] == 0)
        b++;
    while (e > b && raw[e - 1] == 0)
        e--;
    while (b < e && is_space(raw[b]))
        b++;
    while (e > b && is_space(raw[e - 1]))
        e--;
    if (memchr(raw + b, 0, e - b))
        return -1;
    memcpy(out, raw + b, e - b);
    out[e - b] = '\0';
    return (int)(e - b);
}

static int is_publication(const char *type)
{
    return strcmp(type, SSM_MT_START_PUB) == 0 || strcmp(type, SSM_MT_PAUSE_PUB) == 0;
}

int ssm_msg_decode(const uint8_t *buf, size_t len, ssm_msg *out)
{
    if (!buf || !out)
        return SSM_MSG_ERR_SHORT;
    memset(out, 0, sizeof *out);
    if (len < SSM_MSG_PAYLOAD_OFFSET)
        return SSM_MSG_ERR_SHORT;

    uint32_t hl = get_u32(buf + OFF_HL);
    /* Computed in 64 bits: hl near UINT32_MAX must not wrap. */
    if ((uint64_t)hl + 4 > len)
        return SSM_MSG_ERR_SHORT;
    /* Structural check beyond §4.3 (which only rejects 0): a HeaderLength
     * below 116 would make the payload overlap the fixed fields. Nobody sends
     * it; drop it for every type, as malformed. */
    if (hl < SSM_MSG_HEADER_LENGTH)
        return SSM_MSG_ERR_HEADER_LEN;

    int tlen = trim_type(buf + OFF_TYPE, out->type);
    if (tlen < 0)
        return SSM_MSG_ERR_TYPE;

    out->header_length = hl;
    out->schema_version = get_u32(buf + OFF_SCHEMA);
    out->created_ms = get_u64(buf + OFF_CREATED);
    out->seq = (int64_t)get_u64(buf + OFF_SEQ);
    out->flags = get_u64(buf + OFF_FLAGS);
    /* §4.1: the wire carries the UUID's second half first. */
    memcpy(out->id, buf + OFF_ID + 8, 8);
    memcpy(out->id + 8, buf + OFF_ID, 8);
    memcpy(out->digest, buf + OFF_DIGEST, 32);
    out->payload_type = get_u32(buf + OFF_PTYPE);
    out->payload_length = get_u32(buf + OFF_PLEN);
    out->payload = buf + hl + 4;
    out->payload_len = len - ((size_t)hl + 4);

    if (is_publication(out->type))
        return SSM_MSG_OK;
    if (tlen == 0)
        return SSM_MSG_ERR_TYPE;
    if (out->created_ms == 0)
        return SSM_MSG_ERR_DATE;
    if (out->payload_length != 0) {
        uint8_t md[32];
        if (sha256(out->payload, out->payload_len, md) != 0 || memcmp(md, out->digest, 32) != 0)
            return SSM_MSG_ERR_DIGEST;
    }
    return SSM_MSG_OK;
}

long ssm_msg_encode(const ssm_msg *m, uint8_t *out, size_t cap)
{
    if (!m || !out)
        return SSM_MSG_ERR_ARG;
    size_t tlen = strnlen(m->type, sizeof m->type);
    if (tlen == 0 || tlen > SSM_MSG_TYPE_LEN)
        return SSM_MSG_ERR_ARG;
    if (m->payload_len > UINT32_MAX || (m->payload_len && !m->payload))
        return SSM_MSG_ERR_ARG;
    size_t total = ssm_msg_encoded_size(m->payload_len);
    if (cap < total)
        return SSM_MSG_ERR_BUFFER;

    /* Payload first, with memmove: callers may build it in place at
     * out + 120 (or anywhere overlapping) to avoid a copy. */
    if (m->payload_len)
        memmove(out + SSM_MSG_PAYLOAD_OFFSET, m->payload, m->payload_len);
    if (sha256(out + SSM_MSG_PAYLOAD_OFFSET, m->payload_len, out + OFF_DIGEST) != 0)
        return SSM_MSG_ERR_DIGEST;

    put_u32(out + OFF_HL, SSM_MSG_HEADER_LENGTH);
    memset(out + OFF_TYPE, ' ', SSM_MSG_TYPE_LEN);
    memcpy(out + OFF_TYPE, m->type, tlen);
    put_u32(out + OFF_SCHEMA, m->schema_version);
    put_u64(out + OFF_CREATED, m->created_ms);
    put_u64(out + OFF_SEQ, (uint64_t)m->seq);
    put_u64(out + OFF_FLAGS, m->flags);
    memcpy(out + OFF_ID, m->id + 8, 8);
    memcpy(out + OFF_ID + 8, m->id, 8);
    put_u32(out + OFF_PTYPE, m->payload_type);
    put_u32(out + OFF_PLEN, (uint32_t)m->payload_len);
    return (long)total;
}

const char *ssm_msg_strerror(int err)
{
    switch (err) {
    case SSM_MSG_OK:
        return "ok";
    case SSM_MSG_ERR_SHORT:
        return "message truncated";
    case SSM_MSG_ERR_HEADER_LEN:
        return "invalid HeaderLength";
    case SSM_MSG_ERR_TYPE:
        return "invalid MessageType";
    case SSM_MSG_ERR_DATE:
        return "CreatedDate is zero";
    case SSM_MSG_ERR_DIGEST:
        return "payload digest mismatch";
    case SSM_MSG_ERR_BUFFER:
        return "output buffer too small";
    case SSM_MSG_ERR_ARG:
        return "invalid argument";
    default:
        return "unknown error";
    }
}

void ssm_flag_encode(uint32_t flag, uint8_t out[4])
{
    put_u32(out, flag);
}

/* The official client reads the first 4 bytes and ignores any excess; do the
 * same, but refuse a short payload instead of crashing. */
int ssm_flag_decode(const uint8_t *p, size_t n, uint32_t *flag)
{
    if (!p || !flag || n < 4)
        return -1;
    *flag = get_u32(p);
    return 0;
}

/* Appends s as a JSON string body (no quotes) the way Go's encoding/json
 * does for ASCII: \" \\ \n \r \t, other controls and <>& as \u00XX. */
static int json_escape(char *buf, size_t cap, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[7];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            tmp[n++] = '\\';
            tmp[n++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            tmp[n++] = '\\';
            tmp[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            memcpy(tmp, "\\u00", 4);
            n = 4;
            tmp[n++] = hex[c >> 4];
            tmp[n++] = hex[c & 15];
        } else {
            tmp[n++] = (char)c;
        }
        if (*pos + n >= cap)
            return -1;
        memcpy(buf + *pos, tmp, n);
        *pos += n;
    }
    return 0;
}

static int append(char *buf, size_t cap, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n >= cap)
        return -1;
    memcpy(buf + *pos, s, n);
    *pos += n;
    return 0;
}

/* Decimal text of v (an ack is built per received message: no printf). */
static int append_i64(char *buf, size_t cap, size_t *pos, int64_t v)
{
    char tmp[21];
    size_t n = sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--n] = '-';
    size_t len = sizeof tmp - n;
    if (*pos + len >= cap)
        return -1;
    memcpy(buf + *pos, tmp + n, len);
    *pos += len;
    return 0;
}

int ssm_ack_body(char *buf, size_t cap, const char *acked_type, const uint8_t id[16], int64_t seq)
{
    if (!buf || cap == 0 || !acked_type || !id)
        return -1;
    char uuid[SSM_UUID_STRLEN + 1];
    size_t pos = 0;
    ssm_uuid_format(id, uuid);
    /* Key order is fixed by §7.2 (it is what the official plugin emits). */
    if (append(buf, cap, &pos, "{\"AcknowledgedMessageType\":\"") != 0 ||
        json_escape(buf, cap, &pos, acked_type) != 0 ||
        append(buf, cap, &pos, "\",\"AcknowledgedMessageId\":\"") != 0 ||
        append(buf, cap, &pos, uuid) != 0 ||
        append(buf, cap, &pos, "\",\"AcknowledgedMessageSequenceNumber\":") != 0 ||
        append_i64(buf, cap, &pos, seq) != 0 ||
        append(buf, cap, &pos, ",\"IsSequentialMessage\":true}") != 0) {
        buf[0] = '\0';
        return -1;
    }
    buf[pos] = '\0';
    return (int)pos;
}

/* Largest magnitude a double represents every integer up to. */
#define EXACT_INT_LIMIT 9007199254740992.0

/* Key lookup is case-insensitive like Go's encoding/json; a present field of
 * the wrong type is an error (Go's Unmarshal fails on it), null is allowed. */
static int field_type_ok(const cJSON *obj, const char *key, cJSON_bool (*is)(const cJSON *))
{
    const cJSON *f = cJSON_GetObjectItem(obj, key);
    return !f || cJSON_IsNull(f) || is(f);
}

int ssm_ack_parse(const uint8_t *p, size_t n, int64_t *seq)
{
    if (!p || !seq || n == 0)
        return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)p, n, &end, 0);
    if (!root)
        return -1;
    int rc = -1;
    /* Only whitespace may follow the object. */
    for (size_t i = end ? (size_t)(end - (const char *)p) : n; i < n; i++)
        if (p[i] == 0 || !strchr(" \t\r\n", p[i]))
            goto out;
    if (!cJSON_IsObject(root))
        goto out;
    if (!field_type_ok(root, "AcknowledgedMessageType", cJSON_IsString) ||
        !field_type_ok(root, "AcknowledgedMessageId", cJSON_IsString) ||
        !field_type_ok(root, "IsSequentialMessage", cJSON_IsBool))
        goto out;
    /* Unlike Go (which would default to 0), the sequence number is required:
     * a spurious ack for 0 would drop a real unacknowledged message. */
    const cJSON *s = cJSON_GetObjectItem(root, "AcknowledgedMessageSequenceNumber");
    if (!cJSON_IsNumber(s))
        goto out;
    double d = s->valuedouble;
    /* Written so NaN and infinities (e.g. 1e999) fail the range test. */
    if (!(d >= -EXACT_INT_LIMIT && d <= EXACT_INT_LIMIT) || (double)(int64_t)d != d)
        goto out;
    *seq = (int64_t)d;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}
