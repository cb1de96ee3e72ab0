/* Seeded PRNG for fault decisions (reproducible with --seed) and the garbage
 * frames --malformed sends. Ids and tokens use real randomness instead. */
#include <string.h>
#include <sys/random.h>


#include "sim.h"

static uint64_t g_state = 0x9e3779b97f4a7c15ull;

void sim_rand_seed(uint64_t seed)
{
    g_state = seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* xorshift64* */
uint64_t sim_rand(void)
{
    g_state ^= g_state >> 12;
    g_state ^= g_state << 25;
    g_state ^= g_state >> 27;
    return g_state * 0x2545f4914f6cdd1dull;
}

int sim_chance(double p)
{
    if (p <= 0.0)
        return 0;
    if (p >= 1.0)
        return 1;
    return (double)(sim_rand() >> 11) * (1.0 / 9007199254740992.0) < p;
}

void sim_random_bytes(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r <= 0) {
            /* Fall back to the PRNG; only ids/tokens of a local test server. */
            for (; n > 0; n--)
                *p++ = (uint8_t)sim_rand();
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Builds a broken variant of a real encoded message (which must be at least
 * 120 bytes). Every kind must be rejected by a correct client except
 * "payload_length_lie", which §4.3 says is accepted (the payload runs to the
 * end of the message) and is a byte-identical duplicate of the real message. */
size_t sim_fault_malformed(const uint8_t *real, size_t len, uint8_t *out, size_t cap,
                           const char **kind)
{
    if (len < SSM_MSG_PAYLOAD_OFFSET || cap < len || cap < 64)
        return 0;
    switch (sim_rand() % 5) {
    case 0: /* bad digest: flip a payload byte (or the digest when empty) */
        memcpy(out, real, len);
        if (len > SSM_MSG_PAYLOAD_OFFSET)
            out[SSM_MSG_PAYLOAD_OFFSET] ^= 0x5a;
        else
            out[80] ^= 0x5a;
        /* An empty payload with PayloadLength 0 skips the digest check; make
         * it non-zero so the (now wrong) digest is checked. */
        if (len == SSM_MSG_PAYLOAD_OFFSET)
            put_u32(out + 116, 1);
        *kind = "bad_digest";
        return len;
    case 1: { /* short header */
        size_t n = 1 + sim_rand() % (SSM_MSG_PAYLOAD_OFFSET - 1);
        memcpy(out, real, n);
        *kind = "short_header";
        return n;
    }
    case 2: /* HeaderLength pointing past the end */
        memcpy(out, real, len);
        put_u32(out, (uint32_t)(len + 1 + sim_rand() % 100000));
        *kind = "header_length_lie";
        return len;
    case 3: /* PayloadLength lie (accepted per §4.3, digest still right) */
        memcpy(out, real, len);
        put_u32(out + 116, (uint32_t)(len + 7777));
        *kind = "payload_length_lie";
        return len;
    default: { /* random bytes */
        size_t n = 1 + sim_rand() % (cap < 600 ? cap - 1 : 599);
        for (size_t i = 0; i < n; i++)
            out[i] = (uint8_t)sim_rand();
        /* Keep HeaderLength 0 so it can never parse as a valid message. */
        if (n >= 4)
            memset(out, 0, 4);
        *kind = "random_bytes";
        return n;
    }
    }
}
