/* KMS session crypto: key split, GCM framing, tamper detection, nonces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ssm_kms.h"

static void counting_random(void *user, uint8_t *buf, size_t n)
{
    unsigned *calls = user;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(0xA0 + *calls + i);
    (*calls)++;
}

static void make_key(uint8_t k[64])
{
    for (int i = 0; i < 64; i++)
        k[i] = (uint8_t)i;
}

static void hex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

/* McGrew & Viega GCM spec, test cases 13 and 14 (256-bit zero key, zero IV). */
static void test_gcm_known_answers(void **st)
{
    (void)st;
    uint8_t key[32] = {0}, nonce[12] = {0}, out[64], exp[32];
    size_t n = 0;
    assert_int_equal(ssm_kms_gcm_seal(key, nonce, NULL, 0, out, sizeof out, &n), SSM_KMS_OK);
    assert_int_equal(n, 28);
    hex("530f8afbc74536b9a963b4f1c4cb738b", exp, 16);
    assert_memory_equal(out + 12, exp, 16);

    uint8_t pt[16] = {0};
    assert_int_equal(ssm_kms_gcm_seal(key, nonce, pt, 16, out, sizeof out, &n), SSM_KMS_OK);
    assert_int_equal(n, 44);
    assert_memory_equal(out, nonce, 12);
    hex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919", exp, 32);
    assert_memory_equal(out + 12, exp, 32);

    uint8_t back[16];
    assert_int_equal(ssm_kms_gcm_open(key, out, n, back, sizeof back, &n), SSM_KMS_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(back, pt, 16);
}

static void test_key_split_and_round_trip(void **st)
{
    (void)st;
    uint8_t dk[64];
    make_key(dk);
    unsigned calls = 0;
    ssm_kms client, agent;
    assert_int_equal(ssm_kms_init(&client, dk, 64, SSM_KMS_CLIENT, counting_random, &calls), 0);
    assert_int_equal(ssm_kms_init(&agent, dk, 64, SSM_KMS_AGENT, counting_random, &calls), 0);
    assert_memory_equal(client.dec_key, dk, 32);      /* P[0..31]: agent -> client */
    assert_memory_equal(client.enc_key, dk + 32, 32); /* P[32..63]: client -> agent */
    assert_memory_equal(agent.enc_key, dk, 32);

    const char *msg = "echo hello\r";
    uint8_t ct[128], pt[128];
    size_t n = 0, m = 0;
    assert_int_equal(ssm_kms_seal(&client, (const uint8_t *)msg, strlen(msg), ct, sizeof ct, &n), 0);
    assert_int_equal(n, strlen(msg) + SSM_KMS_OVERHEAD);
    assert_int_equal(calls, 1); /* fresh nonce from the callback */
    assert_int_equal(ssm_kms_open(&agent, ct, n, pt, sizeof pt, &m), 0);
    assert_int_equal(m, strlen(msg));
    assert_memory_equal(pt, msg, m);
    /* The client cannot open its own direction. */
    assert_int_equal(ssm_kms_open(&client, ct, n, pt, sizeof pt, &m), SSM_KMS_EAUTH);

    /* Two seals of the same text differ (different nonces). */
    uint8_t ct2[128];
    size_t n2 = 0;
    assert_int_equal(ssm_kms_seal(&client, (const uint8_t *)msg, strlen(msg), ct2, sizeof ct2, &n2), 0);
    assert_memory_not_equal(ct, ct2, n);
    ssm_kms_clear(&client);
    ssm_kms_clear(&agent);
    uint8_t zero[sizeof client];
    memset(zero, 0, sizeof zero);
    assert_memory_equal(&client, zero, sizeof client);
}

static void test_tamper_detection(void **st)
{
    (void)st;
    uint8_t dk[64];
    make_key(dk);
    unsigned calls = 0;
    ssm_kms client, agent;
    ssm_kms_init(&client, dk, 64, SSM_KMS_CLIENT, counting_random, &calls);
    ssm_kms_init(&agent, dk, 64, SSM_KMS_AGENT, counting_random, &calls);
    uint8_t ct[64], pt[64];
    size_t n = 0, m = 0;
    assert_int_equal(ssm_kms_seal(&agent, (const uint8_t *)"0123456789", 10, ct, sizeof ct, &n), 0);
    for (size_t i = 0; i < n; i++) { /* nonce, body and tag all covered */
        ct[i] ^= 0x01;
        m = 777;
        assert_int_equal(ssm_kms_open(&client, ct, n, pt, sizeof pt, &m), SSM_KMS_EAUTH);
        assert_int_equal(m, 777);
        ct[i] ^= 0x01;
    }
    assert_int_equal(ssm_kms_open(&client, ct, n - 1, pt, sizeof pt, &m), SSM_KMS_EAUTH);
    assert_int_equal(ssm_kms_open(&client, ct, 27, pt, sizeof pt, &m), SSM_KMS_ESHORT);
    assert_int_equal(ssm_kms_open(&client, ct, 0, pt, sizeof pt, &m), SSM_KMS_ESHORT);
    assert_int_equal(ssm_kms_open(&client, ct, n, pt, 9, &m), SSM_KMS_ESPACE);
    assert_int_equal(ssm_kms_seal(&agent, pt, 10, ct, 37, &n), SSM_KMS_ESPACE);
    assert_int_equal(ssm_kms_open(&client, ct, n, pt, sizeof pt, &m), SSM_KMS_OK);
    assert_memory_equal(pt, "0123456789", 10);
    assert_int_equal(ssm_kms_init(&client, dk, 32, SSM_KMS_CLIENT, counting_random, &calls),
                     SSM_KMS_EINVAL);
    assert_int_equal(ssm_kms_init(&client, dk, 64, SSM_KMS_CLIENT, NULL, NULL), SSM_KMS_EINVAL);
}

static void test_counter_nonce_agent_style(void **st)
{
    (void)st;
    uint8_t dk[64];
    make_key(dk);
    unsigned calls = 0;
    ssm_kms client, agent;
    ssm_kms_init(&client, dk, 64, SSM_KMS_CLIENT, counting_random, &calls);
    ssm_kms_init(&agent, dk, 64, SSM_KMS_AGENT, counting_random, &calls);
    uint8_t start[12];
    memset(start, 0xff, sizeof start);
    start[11] = 0x00;
    start[5] = 0x10; /* carry stops at byte 5 */
    ssm_kms_use_counter_nonce(&agent, start);
    uint8_t ct[3][40], pt[16];
    size_t n = 0, m = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ssm_kms_seal(&agent, (const uint8_t *)"abc", 3, ct[i], 40, &n), 0);
        assert_int_equal(ssm_kms_open(&client, ct[i], n, pt, sizeof pt, &m), 0);
        assert_memory_equal(pt, "abc", 3);
    }
    assert_int_equal(calls, 0); /* counter mode never asks for randomness */
    assert_memory_equal(ct[0], start, 12);
    uint8_t exp1[12] = {0, 0, 0, 0, 0, 0x11, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    assert_memory_equal(ct[1], exp1, 12);
    exp1[0] = 1;
    assert_memory_equal(ct[2], exp1, 12);
}

static void test_challenge_reencrypt(void **st)
{
    (void)st;
    uint8_t dk[64];
    make_key(dk);
    unsigned calls = 0;
    ssm_kms client, agent;
    ssm_kms_init(&client, dk, 64, SSM_KMS_CLIENT, counting_random, &calls);
    ssm_kms_init(&agent, dk, 64, SSM_KMS_AGENT, counting_random, &calls);
    uint8_t challenge[64], ct[64 + 28], resp[64 + 28], back[64];
    for (int i = 0; i < 64; i++)
        challenge[i] = (uint8_t)(i * 7 + 3);
    size_t n = 0, rn = 0, bn = 0;
    assert_int_equal(ssm_kms_seal(&agent, challenge, 64, ct, sizeof ct, &n), 0);
    assert_int_equal(ssm_kms_challenge_reencrypt(&client, ct, n, resp, sizeof resp, &rn), 0);
    assert_int_equal(rn, n);
    assert_int_equal(ssm_kms_open(&agent, resp, rn, back, sizeof back, &bn), 0);
    assert_int_equal(bn, 64);
    assert_memory_equal(back, challenge, 64);
    /* Tampered challenge: error and nothing of the plaintext left behind. */
    ct[20] ^= 0x80;
    assert_int_equal(ssm_kms_challenge_reencrypt(&client, ct, n, resp, sizeof resp, &rn),
                     SSM_KMS_EAUTH);
    assert_int_equal(ssm_kms_challenge_reencrypt(&client, ct, n, resp, n - 1, &rn), SSM_KMS_ESPACE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcm_known_answers),
        cmocka_unit_test(test_key_split_and_round_trip),
        cmocka_unit_test(test_tamper_detection),
        cmocka_unit_test(test_counter_nonce_agent_style),
        cmocka_unit_test(test_challenge_reencrypt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
