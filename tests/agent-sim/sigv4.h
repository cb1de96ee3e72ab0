/* The simulator's own SigV4 verifier (independent of plugin/aws_sigv4.c, so
 * a shared misreading of the spec cannot hide) and its key store. */
#ifndef SIM_SIGV4_H
#define SIM_SIGV4_H

#include <stddef.h>

#include <libwebsockets.h>

#define SIM_KEYS_MAX 64

/* Adds a valid key (from a flag or issued by a fake credential endpoint).
 * token may be NULL. Returns 0, or -1 when the store is full. */
int sim_keys_add(const char *access_key, const char *secret, const char *token);
struct sim_key;
const struct sim_key *sim_keys_find(const char *access_key);
const char *sim_key_secret(const struct sim_key *k);
const char *sim_key_token(const struct sim_key *k); /* "" when none */
/* Issues fresh random temporary credentials into the store. */
int sim_keys_issue(char *ak, size_t akcap, char *sk, size_t skcap, char *tok, size_t tokcap);

struct sim_sigv4_result {
    int present;          /* an Authorization header was sent */
    int ok;               /* signature verified */
    char access_key[64];
    char service[32];
    char region[32];
    char signed_headers[256];
    const char *error;    /* why not ok (static text) */
};

/* Verifies the request on wsi. body is hashed for the payload (NULL = empty,
 * as for the websocket upgrade). is_ws selects the upgrade's canonical query
 * (from lws's decoded URI args). The result is also recorded ("sigv4"). */
void sim_sigv4_verify(struct lws *wsi, const char *method, const char *body, size_t body_len, int is_ws,
                      struct sim_sigv4_result *r);

#endif
