/* UUID text form <-> canonical bytes, and v4 stamping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ssm_uuid.h"

static const uint8_t ID[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x78,
                               0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0};

static void test_format(void **state)
{
    (void)state;
    char s[SSM_UUID_STRLEN + 1];
    memset(s, 'Z', sizeof s);
    ssm_uuid_format(ID, s);
    assert_string_equal(s, "11223344-5566-4778-899a-abbccddeeff0");
    assert_int_equal(strlen(s), SSM_UUID_STRLEN);

    uint8_t all[16];
    memset(all, 0xff, 16);
    ssm_uuid_format(all, s);
    assert_string_equal(s, "ffffffff-ffff-ffff-ffff-ffffffffffff");
    memset(all, 0, 16);
    ssm_uuid_format(all, s);
    assert_string_equal(s, "00000000-0000-0000-0000-000000000000");
}

static void test_parse(void **state)
{
    (void)state;
    uint8_t id[16];
    assert_int_equal(ssm_uuid_parse("11223344-5566-4778-899a-abbccddeeff0", id), 0);
    assert_memory_equal(id, ID, 16);
    memset(id, 0, 16);
    assert_int_equal(ssm_uuid_parse("11223344-5566-4778-899A-ABBCCDDEEFF0", id), 0);
    assert_memory_equal(id, ID, 16);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "11223344-5566-4778-899a-abbccddeeff",   /* short */
        "11223344-5566-4778-899a-abbccddeeff00", /* long */
        "11223344-5566-4778-899a-abbccddeeff0 ", /* trailing space */
        " 11223344-5566-4778-899a-abbccddeeff0",
        "1122334-45566-4778-899a-abbccddeeff0", /* hyphen moved */
        "11223344-5566-4778-899aabbccddeeff0-",
        "11223344x5566-4778-899a-abbccddeeff0",
        "112233445566477889 9aabbccddeeff0000",
        "1122334455664778899aabbccddeeff0", /* no hyphens */
        "{11223344-5566-4778-899a-abbccddeeff0}",
        "urn:uuid:11223344-5566-4778-899a-abbccddeeff0",
        "g1223344-5566-4778-899a-abbccddeeff0", /* not hex */
        "11223344-5566-4778-899a-abbccddeefg0",
        "11223344-5566-4778-899a-abbccddeef-0",
        "--------------------------------------",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t id[16];
        memset(id, 0x5a, 16);
        if (ssm_uuid_parse(bad[i], id) != -1)
            fail_msg("accepted %s", bad[i]);
        for (int b = 0; b < 16; b++)
            assert_int_equal(id[b], 0x5a); /* untouched on failure */
    }
    uint8_t id[16];
    assert_int_equal(ssm_uuid_parse(NULL, id), -1);
}

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t id[16], back[16];
    char s[SSM_UUID_STRLEN + 1];
    uint32_t x = 12345;
    for (int iter = 0; iter < 1000; iter++) {
        for (int i = 0; i < 16; i++) {
            x = x * 1103515245u + 12345u;
            id[i] = (uint8_t)(x >> 16);
        }
        ssm_uuid_format(id, s);
        assert_int_equal(ssm_uuid_parse(s, back), 0);
        assert_memory_equal(back, id, 16);
    }
}

static void test_v4(void **state)
{
    (void)state;
    uint8_t id[16];
    char s[SSM_UUID_STRLEN + 1];
    memset(id, 0xff, 16);
    ssm_uuid_v4_from_random(id);
    ssm_uuid_format(id, s);
    assert_string_equal(s, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    memset(id, 0, 16);
    ssm_uuid_v4_from_random(id);
    ssm_uuid_format(id, s);
    assert_string_equal(s, "00000000-0000-4000-8000-000000000000");
    /* Only the version nibble and variant bits change. */
    memcpy(id, ID, 16);
    ssm_uuid_v4_from_random(id);
    ssm_uuid_format(id, s);
    assert_string_equal(s, "11223344-5566-4778-899a-abbccddeeff0");
    id[6] = 0x1a;
    id[8] = 0x5b;
    ssm_uuid_v4_from_random(id);
    assert_int_equal(id[6], 0x4a);
    assert_int_equal(id[8], 0x9b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_v4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
