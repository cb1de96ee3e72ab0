/* Fake KMS GenerateDataKey (X-Amz-Target TrentService.GenerateDataKey on the
 * API port). Blobs are opaque handles into a table, so the agent side can
 * map a KMSCipherTextKey back to the plaintext and the context it was made
 * with. Known keys: --kms-valid-key (repeatable), else --kms-key-id. */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kms.h"
#include "sim.h"

#define BLOB_MAGIC "agent-sim-kms-blob:"
#define MAX_BLOBS 64

struct blob {
    int used;
    uint8_t id[16];
    uint8_t key[SIM_KMS_KEY_BYTES];
    char key_id[256];
    cJSON *context;
};
static struct blob g_blobs[MAX_BLOBS];
static unsigned g_next;

long sim_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    if (cap < 4 * ((n + 2) / 3) + 1)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

long sim_b64_decode(const char *in, uint8_t *out, size_t cap)
{
    size_t n = strlen(in);
    if (n % 4 != 0 || cap < 3 * (n / 4))
        return -1;
    int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (r < 0)
        return -1;
    /* EVP_DecodeBlock counts padding as zero bytes. */
    if (n >= 1 && in[n - 1] == '=')
        r--;
    if (n >= 2 && in[n - 2] == '=')
        r--;
    return r;
}

static int key_known(const char *key_id)
{
    if (g_cfg.kms_valid_count == 0)
        return g_cfg.kms_key_id && strcmp(key_id, g_cfg.kms_key_id) == 0;
    for (int i = 0; i < g_cfg.kms_valid_count; i++)
        if (strcmp(key_id, g_cfg.kms_valid[i]) == 0)
            return 1;
    return 0;
}

static int kms_error(struct lws *wsi, int status, const char *type, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "__type", type);
    cJSON_AddStringToObject(o, "message", msg);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "status", status);
    cJSON_AddStringToObject(f, "__type", type);
    sim_record_global("api_error", f);
    int rc = t ? sim_api_respond(wsi, status, t) : -1;
    cJSON_free(t);
    return rc;
}

int sim_kms_handle(struct lws *wsi, const char *op, const cJSON *req)
{
    if (strcmp(op, "GenerateDataKey") != 0)
        return kms_error(wsi, 400, "UnknownOperationException", "agent-sim KMS: GenerateDataKey only");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(req, "KeyId");
    const cJSON *nb = cJSON_GetObjectItemCaseSensitive(req, "NumberOfBytes");
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(req, "EncryptionContext");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(req, "KeySpec");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "KeyId", cJSON_IsString(kid) ? kid->valuestring : "");
    cJSON_AddItemToObject(f, "NumberOfBytes", nb ? cJSON_Duplicate(nb, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(f, "EncryptionContext", ctx ? cJSON_Duplicate(ctx, 1) : cJSON_CreateNull());
    cJSON_AddBoolToObject(f, "has_KeySpec", spec != NULL);
    sim_record_global("kms_generate_data_key", f);
    if (!cJSON_IsString(kid) || kid->valuestring[0] == '\0')
        return kms_error(wsi, 400, "ValidationException", "KeyId is required");
    if (!key_known(kid->valuestring)) {
        char msg[400];
        snprintf(msg, sizeof msg, "Key '%.300s' does not exist", kid->valuestring);
        return kms_error(wsi, 400, "NotFoundException", msg);
    }
    if (!cJSON_IsNumber(nb) || nb->valueint != SIM_KMS_KEY_BYTES)
        return kms_error(wsi, 400, "ValidationException", "agent-sim KMS: NumberOfBytes must be 64");
    struct blob *b = &g_blobs[g_next++ % MAX_BLOBS];
    cJSON_Delete(b->context);
    memset(b, 0, sizeof *b);
    b->used = 1;
    sim_random_bytes(b->id, sizeof b->id);
    sim_random_bytes(b->key, sizeof b->key);
    snprintf(b->key_id, sizeof b->key_id, "%s", kid->valuestring);
    b->context = ctx ? cJSON_Duplicate(ctx, 1) : cJSON_CreateObject();
    uint8_t raw[sizeof BLOB_MAGIC - 1 + 16];
    memcpy(raw, BLOB_MAGIC, sizeof BLOB_MAGIC - 1);
    memcpy(raw + sizeof BLOB_MAGIC - 1, b->id, 16);
    char blob64[128], pt64[128];
    sim_b64_encode(raw, sizeof raw, blob64, sizeof blob64);
    sim_b64_encode(b->key, sizeof b->key, pt64, sizeof pt64);
    char body[512];
    snprintf(body, sizeof body,
             "{\"CiphertextBlob\":\"%s\",\"Plaintext\":\"%s\",\"KeyId\":\"arn:aws:kms:us-east-1:111122223333:key/agent-sim\"}",
             blob64, pt64);
    int rc = sim_api_respond(wsi, 200, body);
    OPENSSL_cleanse(body, sizeof body);
    OPENSSL_cleanse(pt64, sizeof pt64);
    return rc;
}

int sim_kms_lookup(const uint8_t *blob, size_t n, uint8_t key[SIM_KMS_KEY_BYTES], const cJSON **context,
                   char *key_id, size_t key_id_cap)
{
    size_t m = sizeof BLOB_MAGIC - 1;
    if (n != m + 16 || memcmp(blob, BLOB_MAGIC, m) != 0)
        return -1;
    for (int i = 0; i < MAX_BLOBS; i++) {
        if (g_blobs[i].used && memcmp(g_blobs[i].id, blob + m, 16) == 0) {
            memcpy(key, g_blobs[i].key, SIM_KMS_KEY_BYTES);
            *context = g_blobs[i].context;
            snprintf(key_id, key_id_cap, "%s", g_blobs[i].key_id);
            return 0;
        }
    }
    return -1;
}

/* Called at exit so sanitizer builds stay quiet. */
void sim_kms_free_all(void)
{
    for (int i = 0; i < MAX_BLOBS; i++) {
        cJSON_Delete(g_blobs[i].context);
        OPENSSL_cleanse(&g_blobs[i], sizeof g_blobs[i]);
    }
}
