/* KMS session crypto: data-key split and AES-256-GCM framing (§9.3, §9.4). */
#include "ssm_kms.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

int ssm_kms_init(ssm_kms *k, const uint8_t *data_key, size_t len, enum ssm_kms_role role,
                 ssm_kms_random_fn random, void *random_user)
{
    if (!k || !data_key || len != SSM_KMS_DATA_KEY_LEN || !random)
        return SSM_KMS_EINVAL;
    memset(k, 0, sizeof *k);
    /* P[0..31] protects agent -> client, P[32..63] client -> agent. */
    const uint8_t *a2c = data_key, *c2a = data_key + SSM_KMS_KEY_LEN;
    memcpy(k->enc_key, role == SSM_KMS_CLIENT ? c2a : a2c, SSM_KMS_KEY_LEN);
    memcpy(k->dec_key, role == SSM_KMS_CLIENT ? a2c : c2a, SSM_KMS_KEY_LEN);
    k->random = random;
    k->random_user = random_user;
    return SSM_KMS_OK;
}

void ssm_kms_use_counter_nonce(ssm_kms *k, const uint8_t start[SSM_KMS_NONCE_LEN])
{
    memcpy(k->counter, start, SSM_KMS_NONCE_LEN);
    k->use_counter = true;
}

void ssm_kms_clear(ssm_kms *k)
{
    if (k)
        OPENSSL_cleanse(k, sizeof *k);
}

static void next_nonce(ssm_kms *k, uint8_t nonce[SSM_KMS_NONCE_LEN])
{
    if (!k->use_counter) {
        k->random(k->random_user, nonce, SSM_KMS_NONCE_LEN);
        return;
    }
    memcpy(nonce, k->counter, SSM_KMS_NONCE_LEN);
    for (size_t i = 0; i < SSM_KMS_NONCE_LEN; i++) /* little-endian increment */
        if (++k->counter[i] != 0)
            break;
}

int ssm_kms_gcm_seal(const uint8_t key[SSM_KMS_KEY_LEN], const uint8_t nonce[SSM_KMS_NONCE_LEN],
                     const uint8_t *pt, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!key || !nonce || (!pt && n) || !out || !out_len || n > INT_MAX - SSM_KMS_OVERHEAD)
        return SSM_KMS_EINVAL;
    if (cap < n + SSM_KMS_OVERHEAD)
        return SSM_KMS_ESPACE;
    int rc = SSM_KMS_ECRYPTO, len = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return rc;
    if (n)
        memmove(out + SSM_KMS_NONCE_LEN, pt, n); /* allows pt inside out */
    memcpy(out, nonce, SSM_KMS_NONCE_LEN);
    uint8_t *body = out + SSM_KMS_NONCE_LEN;
    if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SSM_KMS_NONCE_LEN, NULL) == 1 &&
        EVP_EncryptInit_ex(c, NULL, NULL, key, nonce) == 1 &&
        (n == 0 || EVP_EncryptUpdate(c, body, &len, body, (int)n) == 1) &&
        EVP_EncryptFinal_ex(c, body + len, &len) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SSM_KMS_TAG_LEN, body + n) == 1) {
        *out_len = n + SSM_KMS_OVERHEAD;
        rc = SSM_KMS_OK;
    }
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int ssm_kms_gcm_open(const uint8_t key[SSM_KMS_KEY_LEN], const uint8_t *ct, size_t n,
                     uint8_t *out, size_t cap, size_t *out_len)
{
    if (!key || !ct || !out || !out_len || n > INT_MAX)
        return SSM_KMS_EINVAL;
    if (n < SSM_KMS_OVERHEAD)
        return SSM_KMS_ESHORT;
    size_t m = n - SSM_KMS_OVERHEAD;
    if (cap < m)
        return SSM_KMS_ESPACE;
    uint8_t tag[SSM_KMS_TAG_LEN], nonce[SSM_KMS_NONCE_LEN];
    memcpy(nonce, ct, SSM_KMS_NONCE_LEN);
    memcpy(tag, ct + SSM_KMS_NONCE_LEN + m, SSM_KMS_TAG_LEN);
    int rc = SSM_KMS_ECRYPTO, len = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return rc;
    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SSM_KMS_NONCE_LEN, NULL) == 1 &&
        EVP_DecryptInit_ex(c, NULL, NULL, key, nonce) == 1 &&
        (m == 0 || EVP_DecryptUpdate(c, out, &len, ct + SSM_KMS_NONCE_LEN, (int)m) == 1) &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SSM_KMS_TAG_LEN, tag) == 1) {
        int fin = 0;
        if (EVP_DecryptFinal_ex(c, out + len, &fin) == 1) {
            *out_len = m;
            rc = SSM_KMS_OK;
        } else {
            OPENSSL_cleanse(out, m); /* never hand out unauthenticated bytes */
            rc = SSM_KMS_EAUTH;
        }
    }
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int ssm_kms_seal(ssm_kms *k, const uint8_t *pt, size_t n, uint8_t *out, size_t cap,
                 size_t *out_len)
{
    if (!k)
        return SSM_KMS_EINVAL;
    if (cap < n + SSM_KMS_OVERHEAD)
        return SSM_KMS_ESPACE;
    uint8_t nonce[SSM_KMS_NONCE_LEN];
    next_nonce(k, nonce);
    return ssm_kms_gcm_seal(k->enc_key, nonce, pt, n, out, cap, out_len);
}

int ssm_kms_open(const ssm_kms *k, const uint8_t *ct, size_t n, uint8_t *out, size_t cap,
                 size_t *out_len)
{
    if (!k)
        return SSM_KMS_EINVAL;
    return ssm_kms_gcm_open(k->dec_key, ct, n, out, cap, out_len);
}

int ssm_kms_challenge_reencrypt(ssm_kms *k, const uint8_t *ct, size_t n, uint8_t *out,
                                size_t cap, size_t *out_len)
{
    if (!k || !ct || !out || !out_len)
        return SSM_KMS_EINVAL;
    if (n < SSM_KMS_OVERHEAD)
        return SSM_KMS_ESHORT;
    if (cap < n)
        return SSM_KMS_ESPACE;
    size_t m = 0;
    /* Open into the body slot of out, then seal in place around it. */
    int rc = ssm_kms_open(k, ct, n, out + SSM_KMS_NONCE_LEN, cap - SSM_KMS_NONCE_LEN, &m);
    if (rc == SSM_KMS_OK)
        rc = ssm_kms_seal(k, out + SSM_KMS_NONCE_LEN, m, out, cap, out_len);
    if (rc != SSM_KMS_OK)
        OPENSSL_cleanse(out, cap < n ? cap : n);
    return rc;
}
