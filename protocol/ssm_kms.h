/* KMS session encryption (PROTOCOL.md §9.3-§9.5), sans-I/O.
 *
 * The 64-byte data key P splits into the client's decrypt key P[0..31]
 * (agent -> client) and encrypt key P[32..63] (client -> agent). Each
 * encrypted payload is nonce(12) || AES-256-GCM ciphertext || tag(16), no AAD.
 * Nonces come from the caller's randomness callback (or, for tests and the
 * agent simulator, from a 96-bit little-endian counter). */
#ifndef SSM_KMS_H
#define SSM_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSM_KMS_DATA_KEY_LEN 64
#define SSM_KMS_KEY_LEN 32
#define SSM_KMS_NONCE_LEN 12
#define SSM_KMS_TAG_LEN 16
#define SSM_KMS_OVERHEAD (SSM_KMS_NONCE_LEN + SSM_KMS_TAG_LEN)

enum ssm_kms_err {
    SSM_KMS_OK = 0,
    SSM_KMS_EINVAL = -1, /* bad arguments / key length */
    SSM_KMS_ESPACE = -2, /* output buffer too small */
    SSM_KMS_ESHORT = -3, /* ciphertext shorter than nonce + tag */
    SSM_KMS_EAUTH = -4,  /* tag mismatch: tampered or wrong key */
    SSM_KMS_ECRYPTO = -5 /* OpenSSL failure */
};

typedef void (*ssm_kms_random_fn)(void *user, uint8_t *buf, size_t n);

/* Which side this key set belongs to; the agent uses the halves reversed. */
enum ssm_kms_role { SSM_KMS_CLIENT = 0, SSM_KMS_AGENT = 1 };

typedef struct ssm_kms {
    uint8_t enc_key[SSM_KMS_KEY_LEN]; /* seals what we send */
    uint8_t dec_key[SSM_KMS_KEY_LEN]; /* opens what we receive */
    bool use_counter;                 /* nonce source: counter instead of random */
    uint8_t counter[SSM_KMS_NONCE_LEN];
    ssm_kms_random_fn random;
    void *random_user;
} ssm_kms;

/* Splits a 64-byte data key for role. random must be non-NULL (fresh nonce per
 * message). Returns SSM_KMS_OK or SSM_KMS_EINVAL. */
int ssm_kms_init(ssm_kms *k, const uint8_t *data_key, size_t len, enum ssm_kms_role role,
                 ssm_kms_random_fn random, void *random_user);
/* Switches to agent-style nonces: start value, then +1 (96-bit LE) per seal. */
void ssm_kms_use_counter_nonce(ssm_kms *k, const uint8_t start[SSM_KMS_NONCE_LEN]);
/* Wipes all key material. */
void ssm_kms_clear(ssm_kms *k);

/* Seals pt into out (needs n + SSM_KMS_OVERHEAD bytes); *out_len set. */
int ssm_kms_seal(ssm_kms *k, const uint8_t *pt, size_t n, uint8_t *out, size_t cap,
                 size_t *out_len);
/* Opens ct into out (needs n - SSM_KMS_OVERHEAD bytes). out may equal
 * ct + SSM_KMS_NONCE_LEN (in place). Nothing is trusted on failure. */
int ssm_kms_open(const ssm_kms *k, const uint8_t *ct, size_t n, uint8_t *out, size_t cap,
                 size_t *out_len);

/* Challenge (§9.4 step 2): opens the agent's ciphertext with the decrypt key
 * and seals the same plaintext with the encrypt key. out needs n bytes. */
int ssm_kms_challenge_reencrypt(ssm_kms *k, const uint8_t *ct, size_t n, uint8_t *out,
                                size_t cap, size_t *out_len);

/* Low-level: one AES-256-GCM operation with an explicit key and nonce. */
int ssm_kms_gcm_seal(const uint8_t key[SSM_KMS_KEY_LEN], const uint8_t nonce[SSM_KMS_NONCE_LEN],
                     const uint8_t *pt, size_t n, uint8_t *out, size_t cap, size_t *out_len);
int ssm_kms_gcm_open(const uint8_t key[SSM_KMS_KEY_LEN], const uint8_t *ct, size_t n,
                     uint8_t *out, size_t cap, size_t *out_len);

#endif
