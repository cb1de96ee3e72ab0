/* Valid SigV4 keys: from --access-key/--secret-key/--session-token and those
 * the fake credential endpoints issue. Secrets and tokens are never recorded. */
#include <string.h>

#include "sigv4.h"
#include "sim.h"

struct sim_key {
    char ak[64], sk[128], tok[512];
};

static struct sim_key g_keys[SIM_KEYS_MAX];
static int g_nkeys;

int sim_keys_add(const char *access_key, const char *secret, const char *token)
{
    if (g_nkeys >= SIM_KEYS_MAX || access_key == NULL || secret == NULL)
        return -1;
    struct sim_key *k = &g_keys[g_nkeys++];
    snprintf(k->ak, sizeof k->ak, "%s", access_key);
    snprintf(k->sk, sizeof k->sk, "%s", secret);
    snprintf(k->tok, sizeof k->tok, "%s", token ? token : "");
    return 0;
}

const struct sim_key *sim_keys_find(const char *access_key)
{
    for (int i = 0; i < g_nkeys; i++)
        if (strcmp(g_keys[i].ak, access_key) == 0)
            return &g_keys[i];
    return NULL;
}

const char *sim_key_secret(const struct sim_key *k)
{
    return k->sk;
}
const char *sim_key_token(const struct sim_key *k)
{
    return k->tok;
}

static void rand_chars(char *out, size_t n, const char *alphabet)
{
    uint8_t r[256];
    size_t len = strlen(alphabet);
    if (n > sizeof r)
        n = sizeof r;
    sim_random_bytes(r, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[r[i] % len];
    out[n] = '\0';
}

int sim_keys_issue(char *ak, size_t akcap, char *sk, size_t skcap, char *tok, size_t tokcap)
{
    static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (akcap < 21 || skcap < 41 || tokcap < 121)
        return -1;
    memcpy(ak, "ASIASIM", 7);
    rand_chars(ak + 7, 13, upper);
    rand_chars(sk, 40, b64);
    memcpy(tok, "IQoJsim", 7);
    rand_chars(tok + 7, 113, b64);
    return sim_keys_add(ak, sk, tok);
}
