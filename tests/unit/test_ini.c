/* The shared config/credentials file parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws_ini.h"

static aws_ini *parse(const char *s) { return aws_ini_parse(s, strlen(s)); }

static void test_sections_keys_comments(void **st)
{
    (void)st;
    aws_ini *ini = parse("# top comment\n"
                         "orphan = ignored\n"
                         "[default]\r\n"
                         "aws_access_key_id = AKIDDEFAULT \r\n"
                         "AWS_Secret_Access_Key=sec=ret==\n"
                         "; another comment\n"
                         "  # indented comment\n"
                         "[ profile   dev ]\n"
                         "region = eu-west-1\n"
                         "no equals sign here\n"
                         "= value without key\n"
                         "region = eu-central-1\n"
                         "[broken\n"
                         "lost = yes\n"
                         "[empty]\n");
    assert_non_null(ini);
    assert_string_equal(aws_ini_get(ini, "default", "aws_access_key_id"), "AKIDDEFAULT");
    assert_string_equal(aws_ini_get(ini, "default", "aws_secret_access_key"), "sec=ret==");
    assert_string_equal(aws_ini_get(ini, "default", "AWS_ACCESS_KEY_ID"), "AKIDDEFAULT");
    assert_string_equal(aws_ini_get(ini, "profile dev", "region"), "eu-central-1"); /* last wins */
    assert_null(aws_ini_get(ini, "profile dev", "aws_access_key_id"));
    assert_null(aws_ini_get(ini, "broken", "lost"));
    assert_null(aws_ini_get(ini, "", "orphan"));
    assert_true(aws_ini_has_section(ini, "empty"));
    assert_false(aws_ini_has_section(ini, "broken"));
    assert_int_equal(aws_ini_count(ini), 4);
    aws_ini_free(ini);
}

static void test_nested_properties(void **st)
{
    (void)st;
    aws_ini *ini = parse("[profile x]\n"
                         "s3 =\n"
                         "  max_concurrent_requests = 20\n"
                         "\tsignature_version=s3v4\n"
                         "region = us-east-2\n"
                         "  stray = indented but no parent\n");
    assert_string_equal(aws_ini_get(ini, "profile x", "s3.max_concurrent_requests"), "20");
    assert_string_equal(aws_ini_get(ini, "profile x", "s3.signature_version"), "s3v4");
    assert_string_equal(aws_ini_get(ini, "profile x", "region"), "us-east-2");
    assert_string_equal(aws_ini_get(ini, "profile x", "stray"), "indented but no parent");
    assert_string_equal(aws_ini_get(ini, "profile x", "s3"), "");
    aws_ini_free(ini);
}

static void test_profile_section_lookup(void **st)
{
    (void)st;
    char buf[128];
    aws_ini *a = parse("[default]\nregion=a\n[profile dev]\nregion=b\n[dev2]\nregion=c\n");
    assert_true(aws_ini_config_profile_section(a, "default", buf, sizeof buf));
    assert_string_equal(buf, "default");
    assert_true(aws_ini_config_profile_section(a, "dev", buf, sizeof buf));
    assert_string_equal(buf, "profile dev");
    assert_false(aws_ini_config_profile_section(a, "dev2", buf, sizeof buf)); /* needs "profile " */
    assert_false(aws_ini_config_profile_section(a, "", buf, sizeof buf));
    assert_false(aws_ini_config_profile_section(a, "dev", buf, 5)); /* does not fit */
    aws_ini_free(a);
    aws_ini *b = parse("[default]\nregion=a\n[profile default]\nregion=z\n");
    assert_true(aws_ini_config_profile_section(b, "default", buf, sizeof buf));
    assert_string_equal(buf, "profile default");
    aws_ini_free(b);
}

static void test_binary_and_unterminated_input(void **st)
{
    (void)st;
    const char raw[] = {'[', 'a', ']', '\n', 'k', '=', 'v', '\0', 'w', '\n', 'x', '=', 'y'};
    aws_ini *ini = aws_ini_parse(raw, sizeof raw); /* no trailing NUL or newline */
    assert_non_null(ini);
    assert_string_equal(aws_ini_get(ini, "a", "k"), "v w"); /* NUL is not a terminator */
    assert_string_equal(aws_ini_get(ini, "a", "x"), "y");
    aws_ini_free(ini);
    ini = aws_ini_parse("", 0);
    assert_non_null(ini);
    assert_int_equal(aws_ini_count(ini), 0);
    aws_ini_free(ini);
    aws_ini_free(NULL);
}

static void test_entry_limit(void **st)
{
    (void)st;
    size_t cap = (AWS_INI_MAX_ENTRIES + 100) * 16 + 16;
    char *big = malloc(cap), *p = big;
    p += sprintf(p, "[s]\n");
    for (int i = 0; i < AWS_INI_MAX_ENTRIES + 100; i++)
        p += sprintf(p, "k%d=v\n", i);
    aws_ini *ini = aws_ini_parse(big, (size_t)(p - big));
    assert_int_equal(aws_ini_count(ini), AWS_INI_MAX_ENTRIES);
    aws_ini_free(ini);
    free(big);
}

static void test_load_file(void **st)
{
    (void)st;
    char path[] = "/tmp/test_ini_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *txt = "[default]\naws_access_key_id=AKIDFILE\n";
    assert_int_equal(write(fd, txt, strlen(txt)), (ssize_t)strlen(txt));
    close(fd);
    aws_ini *ini = NULL;
    assert_int_equal(aws_ini_load_file(path, &ini), 0);
    assert_string_equal(aws_ini_get(ini, "default", "aws_access_key_id"), "AKIDFILE");
    aws_ini_free(ini);
    unlink(path);
    assert_int_equal(aws_ini_load_file(path, &ini), -1);
    assert_null(ini);
    assert_int_equal(aws_ini_load_file("/", &ini), -1); /* a directory */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections_keys_comments),
        cmocka_unit_test(test_nested_properties),
        cmocka_unit_test(test_profile_section_lookup),
        cmocka_unit_test(test_binary_and_unterminated_input),
        cmocka_unit_test(test_entry_limit),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
