/* Agent side of a KMS-encrypted session (PROTOCOL.md §9), with --kms-key-id:
 * KMSEncryption in the HandshakeRequest (Challenge with --kms-challenge), the
 * data key mapped back through the fake KMS and its encryption context
 * checked, the EncChallenge round trip, then AES-256-GCM on Output, StdErr
 * and ExitCode out and Output in. Agent encrypts with P[0..31] and a counter
 * nonce, decrypts with P[32..63]. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kms.h"
#include "sim.h"

struct sim_kms {
    int on;                 /* data key verified: payloads are sealed */
    int awaiting_challenge; /* EncChallengeRequest sent */
    uint8_t key[SIM_KMS_KEY_BYTES];
    uint8_t nonce[12];      /* 96-bit little-endian counter */
    uint8_t challenge[64];
    char random_challenge[32]; /* base64 of 16 bytes, sent in the request */
};

static struct sim_kms *kms_of(struct sim_session *s)
{
    if (s->kms == NULL)
        s->kms = calloc(1, sizeof(struct sim_kms));
    return s->kms;
}

int sim_kms_wanted(const struct sim_session *s)
{
    return g_cfg.kms_key_id != NULL && s->beh && strcmp(s->beh->session_type, "Port") != 0;
}

int sim_kms_active(const struct sim_session *s)
{
    return s->kms && s->kms->on;
}

int sim_kms_encrypts(uint32_t ptype)
{
    return ptype == SSM_PT_OUTPUT || ptype == SSM_PT_STDERR || ptype == SSM_PT_EXIT_CODE;
}

void sim_kms_add_action(struct sim_session *s, cJSON *actions)
{
    struct sim_kms *k = kms_of(s);
    if (k == NULL)
        return;
    cJSON *act = cJSON_CreateObject();
    cJSON_AddStringToObject(act, "ActionType", "KMSEncryption");
    cJSON *params = cJSON_AddObjectToObject(act, "ActionParameters");
    cJSON_AddStringToObject(params, "KMSKeyId", g_cfg.kms_key_id);
    if (g_cfg.kms_challenge) {
        uint8_t r[16];
        sim_random_bytes(r, sizeof r);
        sim_b64_encode(r, sizeof r, k->random_challenge, sizeof k->random_challenge);
        cJSON_AddStringToObject(params, "Challenge", k->random_challenge);
    }
    cJSON_AddItemToArray(actions, act);
}

static long gcm(int enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *in, size_t n, uint8_t *out,
                uint8_t tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0, ok = c != NULL;
    ok = ok && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1;
    ok = ok && (n == 0 || EVP_CipherUpdate(c, out, &len, in, (int)n) == 1);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + len, &fin) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? (long)(len + fin) : -1;
}

static long seal_with(struct sim_kms *k, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    if (cap < n + SIM_KMS_OVERHEAD)
        return -1;
    memcpy(out, k->nonce, 12);
    for (int i = 0; i < 12 && ++k->nonce[i] == 0; i++)
        ;
    if (gcm(1, k->key, out, in, n, out + 12, out + 12 + n) < 0)
        return -1;
    return (long)(n + SIM_KMS_OVERHEAD);
}

static long open_with(struct sim_kms *k, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    if (n < SIM_KMS_OVERHEAD || cap < n - SIM_KMS_OVERHEAD)
        return -1;
    size_t m = n - SIM_KMS_OVERHEAD;
    uint8_t tag[16];
    memcpy(tag, in + 12 + m, 16);
    return gcm(0, k->key + 32, in, in + 12, m, out, tag);
}

long sim_kms_seal(struct sim_session *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    return s->kms ? seal_with(s->kms, in, n, out, cap) : -1;
}

long sim_kms_open(struct sim_session *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    return s->kms ? open_with(s->kms, in, n, out, cap) : -1;
}

static const char *context_error(struct sim_session *s, const cJSON *ctx, int acked)
{
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(ctx, "aws:ssm:SessionId");
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(ctx, "aws:ssm:TargetId");
    const cJSON *rc = cJSON_GetObjectItemCaseSensitive(ctx, "aws:ssm:RandomChallenge");
    int want = acked ? 3 : 2;
    if (cJSON_GetArraySize(ctx) != want)
        return "encryption context has the wrong number of entries";
    if (!cJSON_IsString(sid) || strcmp(sid->valuestring, s->id) != 0)
        return "encryption context aws:ssm:SessionId mismatch";
    if (!cJSON_IsString(tid) || strcmp(tid->valuestring, s->target) != 0)
        return "encryption context aws:ssm:TargetId mismatch";
    if (acked && (!cJSON_IsString(rc) || strcmp(rc->valuestring, s->kms->random_challenge) != 0))
        return "encryption context aws:ssm:RandomChallenge mismatch";
    return NULL;
}

const char *sim_kms_on_response(struct sim_session *s, const cJSON *response, char *err, size_t cap)
{
    struct sim_kms *k = s->kms;
    if (k == NULL)
        return "agent-sim: KMS state missing";
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive(response, "ProcessedClientActions");
    const cJSON *a, *res = NULL;
    cJSON_ArrayForEach(a, acts)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "ActionType");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "KMSEncryption") == 0)
            res = cJSON_GetObjectItemCaseSensitive(a, "ActionResult");
    }
    const cJSON *blob = cJSON_GetObjectItemCaseSensitive(res, "KMSCipherTextKey");
    const cJSON *ack = cJSON_GetObjectItemCaseSensitive(res, "ChallengeAcknowledgement");
    int acked = cJSON_IsTrue(ack);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddBoolToObject(f, "has_result", res != NULL);
    cJSON_AddBoolToObject(f, "challenge_sent", k->random_challenge[0] != '\0');
    cJSON_AddBoolToObject(f, "challenge_acknowledged", acked);
    const char *e = NULL;
    uint8_t raw[256];
    long n = cJSON_IsString(blob) ? sim_b64_decode(blob->valuestring, raw, sizeof raw) : -1;
    const cJSON *ctx = NULL;
    char key_id[256] = "";
    if (res == NULL)
        e = "no KMSEncryption ActionResult";
    else if (n < 0 || sim_kms_lookup(raw, (size_t)n, k->key, &ctx, key_id, sizeof key_id) != 0)
        e = "KMSCipherTextKey is not a data key of this KMS";
    else if (acked && k->random_challenge[0] == '\0')
        e = "ChallengeAcknowledgement without a Challenge";
    else if (strcmp(key_id, g_cfg.kms_key_id) != 0)
        e = "data key made with another KMS key";
    else
        e = context_error(s, ctx, acked);
    cJSON_AddStringToObject(f, "key_id", key_id);
    if (e)
        cJSON_AddStringToObject(f, "error", e);
    sim_record(s, "kms_data_key", f);
    if (e) {
        snprintf(err, cap, "Failed to process action KMSEncryption on agent: %s", e);
        return err;
    }
    /* Counter nonce from a random start; then the challenge (§9.4). */
    sim_random_bytes(k->nonce, sizeof k->nonce);
    k->on = 1;
    sim_random_bytes(k->challenge, sizeof k->challenge);
    uint8_t sealed[64 + SIM_KMS_OVERHEAD];
    char b64[160], body[256];
    if (seal_with(k, k->challenge, sizeof k->challenge, sealed, sizeof sealed) < 0 ||
        sim_b64_encode(sealed, sizeof sealed, b64, sizeof b64) < 0)
        return "agent-sim: cannot seal the challenge";
    snprintf(body, sizeof body, "{\"Challenge\":\"%s\"}", b64);
    if (sim_rel_send(s, SSM_PT_ENC_CHALLENGE_REQUEST, (const uint8_t *)body, strlen(body)) != 0)
        return "agent-sim: cannot send EncChallengeRequest";
    k->awaiting_challenge = 1;
    sim_record(s, "kms_challenge_request", NULL);
    return NULL;
}

const char *sim_kms_on_challenge(struct sim_session *s, const uint8_t *p, size_t n)
{
    struct sim_kms *k = s->kms;
    const char *e = NULL;
    if (k == NULL || !k->awaiting_challenge)
        return "unexpected EncChallengeResponse";
    cJSON *root = cJSON_ParseWithLength((const char *)p, n);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "Challenge");
    uint8_t raw[256], plain[256];
    long m = cJSON_IsString(c) ? sim_b64_decode(c->valuestring, raw, sizeof raw) : -1;
    long pn = m >= 0 ? open_with(k, raw, (size_t)m, plain, sizeof plain) : -1;
    if (m < 0)
        e = "EncChallengeResponse is not {\"Challenge\":<base64>}";
    else if (pn != 64 || CRYPTO_memcmp(plain, k->challenge, 64) != 0)
        e = "Encryption challenge does not match";
    cJSON_Delete(root);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddBoolToObject(f, "ok", e == NULL);
    sim_record(s, "kms_challenge_response", f);
    k->awaiting_challenge = 0;
    return e;
}

void sim_kms_free(struct sim_session *s)
{
    if (s->kms) {
        OPENSSL_cleanse(s->kms, sizeof *s->kms);
        free(s->kms);
        s->kms = NULL;
    }
}
