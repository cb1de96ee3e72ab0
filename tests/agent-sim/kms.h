/* The simulator's KMS: a fake GenerateDataKey (kms_fake.c) whose blobs the
 * agent side maps back to the plaintext and context, and the agent side of
 * the §9 encrypted session (kms_agent.c): own AES-256-GCM code on OpenSSL,
 * independent of protocol/kms.c. */
#ifndef SIM_KMS_H
#define SIM_KMS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#define SIM_KMS_KEY_BYTES 64
#define SIM_KMS_OVERHEAD 28 /* nonce 12 + tag 16 */

struct sim_session;

/* kms_fake.c */
int sim_kms_handle(struct lws *wsi, const char *op, const cJSON *req);
/* The plaintext and encryption context of a blob this KMS issued, or -1. */
int sim_kms_lookup(const uint8_t *blob, size_t n, uint8_t key[SIM_KMS_KEY_BYTES], const cJSON **context,
                   char *key_id, size_t key_id_cap);

void sim_kms_free_all(void);

/* base64 (standard, padded); return the output length or -1. */
long sim_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap);
long sim_b64_decode(const char *in, uint8_t *out, size_t cap);

/* kms_agent.c */
int sim_kms_wanted(const struct sim_session *s);
void sim_kms_add_action(struct sim_session *s, cJSON *actions);
/* After the HandshakeResponse's actions checked out: verifies the data key
 * and sends EncChallengeRequest. Returns NULL or an error ending the session. */
const char *sim_kms_on_response(struct sim_session *s, const cJSON *response, char *err, size_t cap);
/* EncChallengeResponse: NULL when it matches. */
const char *sim_kms_on_challenge(struct sim_session *s, const uint8_t *p, size_t n);
int sim_kms_active(const struct sim_session *s);
int sim_kms_encrypts(uint32_t ptype);
/* Seal / open one payload; return the output length or -1. */
long sim_kms_seal(struct sim_session *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap);
long sim_kms_open(struct sim_session *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap);
void sim_kms_free(struct sim_session *s);

#endif
