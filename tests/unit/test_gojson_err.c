/* ssm_gojson_*: Go's json.Unmarshal texts for ssm.StartSessionOutput. The
 * expected strings are the official plugin's output (1.2.677.0, Go 1.19) or
 * Go 1.19 on the same inputs (docs/cli.md §1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gojson_err.h"

typedef struct pair {
    const char *json, *err;
} pair;

static void expect_err_n(const char *json, size_t len, enum ssm_gojson_sdk sdk, const char *want)
{
    char msg[SSM_GOJSON_MSG_MAX];
    ssm_gojson_result res;
    memset(msg, 'Z', sizeof msg);
    int rc = ssm_gojson_start_session(json, len, sdk, &res, msg, sizeof msg);
    if (rc != -1)
        fail_msg("no error for %s (want %s)", json, want);
    assert_string_equal(msg, want);
}

static void expect_err(const char *json, const char *want)
{
    expect_err_n(json, strlen(json), SSM_GOJSON_SDK_V2, want);
    expect_err_n(json, strlen(json), SSM_GOJSON_SDK_V1, want);
}

static ssm_gojson_result expect_ok(const char *json, enum ssm_gojson_sdk sdk)
{
    char msg[SSM_GOJSON_MSG_MAX] = "untouched";
    ssm_gojson_result res;
    int rc = ssm_gojson_start_session(json, strlen(json), sdk, &res, msg, sizeof msg);
    if (rc != 0)
        fail_msg("error for %s: %s", json, msg);
    return res;
}

/* The value Go keeps for field f, unquoted, or NULL for nil. */
static char *field(const char *json, const ssm_gojson_result *res, int f)
{
    const ssm_gojson_span *s = &res->field[f];
    if (s->len == 0)
        return NULL;
    char *out = malloc(3 * s->len + 1);
    assert_non_null(out);
    out[ssm_gojson_unquote(json + s->off, s->len, out)] = '\0';
    return out;
}

static void test_observed_official_texts(void **state)
{
    (void)state;
    static const pair cases[] = {
        {"x", "invalid character 'x' looking for beginning of value"},
        {"{", "unexpected end of JSON input"},
        {"\"\"", "json: cannot unmarshal string into Go value of type ssm.StartSessionOutput"},
        {"", "unexpected end of JSON input"},
        {" \t\r\n", "unexpected end of JSON input"},
        {"{\"a\" 1}", "invalid character '1' after object key"},
        {"{\"a\":1 \"b\":2}", "invalid character '\"' after object key:value pair"},
        {"[1 2]", "invalid character '2' after array element"},
        {"{\"a\":[1 2]}", "invalid character '2' after array element"},
        {"{} x", "invalid character 'x' after top-level value"},
        {"tru", "invalid character ' ' in literal true (expecting 'e')"},
        {"tru ", "invalid character ' ' in literal true (expecting 'e')"},
        {"[]", "json: cannot unmarshal array into Go value of type ssm.StartSessionOutput"},
        {"\"s\"", "json: cannot unmarshal string into Go value of type ssm.StartSessionOutput"},
        {"123", "json: cannot unmarshal number into Go value of type ssm.StartSessionOutput"},
        {"true", "json: cannot unmarshal bool into Go value of type ssm.StartSessionOutput"},
        {"{\"SessionId\":1}", "json: cannot unmarshal number into Go struct field "
                              "StartSessionOutput.SessionId of type string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_err(cases[i].json, cases[i].err);
}

static void test_scanner_contexts(void **state)
{
    (void)state;
    static const pair cases[] = {
        {"\"a\x01\"", "invalid character '\\x01' in string literal"},
        {"\"\n\"", "invalid character '\\n' in string literal"},
        {"\"\\x\"", "invalid character 'x' in string escape code"},
        {"\"\\'\"", "invalid character '\\'' in string escape code"},
        {"\"\\", "invalid character ' ' in string escape code"},
        {"\"\\u12g4\"", "invalid character 'g' in \\u hexadecimal character escape"},
        {"\"\\u12", "invalid character ' ' in \\u hexadecimal character escape"},
        {"\"abc", "unexpected end of JSON input"},
        {"-", "invalid character ' ' in numeric literal"},
        {"-a", "invalid character 'a' in numeric literal"},
        {"1.", "invalid character ' ' after decimal point in numeric literal"},
        {"1.x", "invalid character 'x' after decimal point in numeric literal"},
        {"1e", "invalid character ' ' in exponent of numeric literal"},
        {"1e+}", "invalid character '}' in exponent of numeric literal"},
        {"01", "invalid character '1' after top-level value"},
        {"[01]", "invalid character '1' after array element"},
        {"1.5e+3x", "invalid character 'x' after top-level value"},
        {"{1:2}", "invalid character '1' looking for beginning of object key string"},
        {"{\"a\":1,}", "invalid character '}' looking for beginning of object key string"},
        {"[1,]", "invalid character ']' looking for beginning of value"},
        {"{\"a\":}", "invalid character '}' looking for beginning of value"},
        {"[", "unexpected end of JSON input"},
        {"{\"a\"", "unexpected end of JSON input"},
        {"fals", "invalid character ' ' in literal false (expecting 'e')"},
        {"fx", "invalid character 'x' in literal false (expecting 'a')"},
        {"nul", "invalid character ' ' in literal null (expecting 'l')"},
        {"nUll", "invalid character 'U' in literal null (expecting 'u')"},
        {"tRue", "invalid character 'R' in literal true (expecting 'r')"},
        {"'a'", "invalid character '\\'' looking for beginning of value"},
        {"\\", "invalid character '\\\\' looking for beginning of value"},
        {"\x7f", "invalid character '\\x7f' looking for beginning of value"},
        {"\x0b", "invalid character '\\v' looking for beginning of value"},
        {"\xc3\xa9", "invalid character '\xc3\x83' looking for beginning of value"},
        {"\xa0", "invalid character '\\u00a0' looking for beginning of value"},
        {"\xff", "invalid character '\xc3\xbf' looking for beginning of value"},
        {"{}\"", "invalid character '\"' after top-level value"},
        {"{}}x", "invalid character '}' after top-level value"},
        /* a syntax error anywhere beats a type error earlier in the text */
        {"{\"SessionId\":1,", "unexpected end of JSON input"},
        {"[] x", "invalid character 'x' after top-level value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_err(cases[i].json, cases[i].err);
}

static void test_quote_char(void **state)
{
    (void)state;
    static const struct {
        uint8_t c;
        const char *want;
    } cases[] = {
        {'a', "'a'"},         {' ', "' '"},         {'\'', "'\\''"},      {'"', "'\"'"},
        {'\\', "'\\\\'"},     {0, "'\\x00'"},       {7, "'\\a'"},         {8, "'\\b'"},
        {9, "'\\t'"},         {10, "'\\n'"},        {11, "'\\v'"},        {12, "'\\f'"},
        {13, "'\\r'"},        {0x1b, "'\\x1b'"},    {0x7f, "'\\x7f'"},    {0x80, "'\\u0080'"},
        {0x9f, "'\\u009f'"},  {0xa0, "'\\u00a0'"},  {0xa1, "'\xc2\xa1'"}, {0xad, "'\\u00ad'"},
        {0xe9, "'\xc3\xa9'"}, {0xff, "'\xc3\xbf'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[9];
        size_t n = ssm_gojson_quote_char(cases[i].c, out);
        assert_string_equal(out, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
}

static void test_max_depth(void **state)
{
    (void)state;
    size_t n = 10001;
    char *deep = malloc(2 * n + 1);
    assert_non_null(deep);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    /* 10001 levels: the last '[' is refused */
    expect_err_n(deep, 2 * n, SSM_GOJSON_SDK_V2, "invalid character '[' exceeded max depth");
    /* 10000 levels are fine for the scanner; the type is then wrong */
    expect_err_n(deep + 1, 2 * n - 2, SSM_GOJSON_SDK_V2,
                 "json: cannot unmarshal array into Go value of type ssm.StartSessionOutput");
    expect_err_n(deep + 1, n - 1, SSM_GOJSON_SDK_V2, "unexpected end of JSON input");
    /* objects count too */
    char *obj = malloc(5 * n + n + 2);
    assert_non_null(obj);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(obj + w, "{\"a\":", 5);
        w += 5;
    }
    expect_err_n(obj, w, SSM_GOJSON_SDK_V2, "invalid character '{' exceeded max depth");
    /* 10000 nested objects under unknown keys decode fine */
    obj[w - 5] = '1';
    memset(obj + w - 4, '}', n - 1);
    ssm_gojson_result res;
    char msg[SSM_GOJSON_MSG_MAX];
    assert_int_equal(
        ssm_gojson_start_session(obj, w - 4 + n - 1, SSM_GOJSON_SDK_V2, &res, msg, sizeof msg), 0);
    assert_int_equal(res.field[SSM_GOJSON_SESSION_ID].len, 0);
    free(obj);
    free(deep);
}

static void test_field_type_errors(void **state)
{
    (void)state;
#define FIELD_ERR(kind, f)                                                                         \
    "json: cannot unmarshal " kind " into Go struct field StartSessionOutput." f " of type string"
    static const pair cases[] = {
        {"{\"SessionId\":{}}", FIELD_ERR("object", "SessionId")},
        {"{\"StreamUrl\":[\"u\"]}", FIELD_ERR("array", "StreamUrl")},
        {"{\"TokenValue\":true}", FIELD_ERR("bool", "TokenValue")},
        {"{\"tokenvalue\":-0.5e3}", FIELD_ERR("number", "TokenValue")},
        /* Go's case folding: any ASCII case, U+017F for s, U+212A for k */
        {"{\"SESSIONID\":false}", FIELD_ERR("bool", "SessionId")},
        {"{\"\xc5\xbf"
         "essionId\":1}",
         FIELD_ERR("number", "SessionId")},
        {"{\"\\u017fessionId\":1}", FIELD_ERR("number", "SessionId")},
        {"{\"To\xe2\x84\xaa"
         "enValue\":1}",
         FIELD_ERR("number", "TokenValue")},
        {"{\"\\u0053\\u0074reamurl\":1}", FIELD_ERR("number", "StreamUrl")},
        /* the first wrong value in document order is the one reported */
        {"{\"x\":{\"SessionId\":1},\"StreamUrl\":2,\"SessionId\":3}",
         FIELD_ERR("number", "StreamUrl")},
        {"{\"SessionId\":\"ok\",\"sessionid\":[],\"TokenValue\":1}",
         FIELD_ERR("array", "SessionId")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_err(cases[i].json, cases[i].err);
#undef FIELD_ERR
}

static void test_result_metadata_v2_only(void **state)
{
    (void)state;
    static const char *const bad[] = {"{\"ResultMetadata\":1}", "{\"resultmetadata\":\"x\"}",
                                      "{\"RESULTMETADATA\":[]}", "{\"ResultMetadata\":true}"};
    static const char *const kind[] = {"number", "string", "array", "bool"};
    for (size_t i = 0; i < 4; i++) {
        char want[SSM_GOJSON_MSG_MAX];
        snprintf(want, sizeof want,
                 "json: cannot unmarshal %s into Go struct field StartSessionOutput.ResultMetadata "
                 "of type middleware.Metadata",
                 kind[i]);
        expect_err_n(bad[i], strlen(bad[i]), SSM_GOJSON_SDK_V2, want);
        /* aws-sdk-go v1 has no such field: the key is ignored */
        expect_ok(bad[i], SSM_GOJSON_SDK_V1);
    }
    expect_ok("{\"ResultMetadata\":{\"a\":[1]},\"resultMetadata\":null}", SSM_GOJSON_SDK_V2);
}

static void test_message_fits(void **state)
{
    (void)state;
    /* the longest texts fit SSM_GOJSON_MSG_MAX untruncated */
    expect_err_n("{\"ResultMetadata\":1}", 20, SSM_GOJSON_SDK_V2,
                 "json: cannot unmarshal number into Go struct field "
                 "StartSessionOutput.ResultMetadata of type middleware.Metadata");
    expect_err("\"\\u123\xa0", "invalid character '\\u00a0' in \\u hexadecimal character escape");
    /* a short buffer truncates, never overruns */
    char small[8];
    ssm_gojson_result res;
    assert_int_equal(ssm_gojson_start_session("x", 1, SSM_GOJSON_SDK_V2, &res, small, sizeof small),
                     -1);
    assert_string_equal(small, "invalid");
    assert_int_equal(ssm_gojson_start_session("x", 1, SSM_GOJSON_SDK_V2, &res, NULL, 0), -1);
}

static void test_values_kept(void **state)
{
    (void)state;
    const char *j = "{\"SessionId\":\"a\",\"Extra\":{\"SessionId\":\"inner\"},\"sessionid\":\"b\","
                    "\"StreamUrl\":\"wss:\\/\\/h\",\"TokenValue\":\"x\\\"y\\u00e9\\ud83d\\ude00\"}";
    ssm_gojson_result res = expect_ok(j, SSM_GOJSON_SDK_V2);
    assert_false(res.top_null);
    char *sid = field(j, &res, SSM_GOJSON_SESSION_ID), *url = field(j, &res, SSM_GOJSON_STREAM_URL),
         *tok = field(j, &res, SSM_GOJSON_TOKEN_VALUE);
    assert_string_equal(sid, "b"); /* last duplicate wins, nested keys do not count */
    assert_string_equal(url, "wss://h");
    assert_string_equal(tok, "x\"y\xc3\xa9\xf0\x9f\x98\x80");
    free(sid);
    free(url);
    free(tok);

    /* a later null makes the field nil again (Go then panics) */
    j = "{\"SessionId\":\"a\",\"SessionId\":null,\"TokenValue\":\"\"}";
    res = expect_ok(j, SSM_GOJSON_SDK_V2);
    assert_int_equal(res.field[SSM_GOJSON_SESSION_ID].len, 0);
    assert_int_equal(res.field[SSM_GOJSON_STREAM_URL].len, 0);
    tok = field(j, &res, SSM_GOJSON_TOKEN_VALUE);
    assert_string_equal(tok, ""); /* "" is a value, not nil */
    free(tok);

    res = expect_ok(" null ", SSM_GOJSON_SDK_V2);
    assert_true(res.top_null);
    res = expect_ok("{}", SSM_GOJSON_SDK_V1);
    assert_false(res.top_null);
}

static void test_unquote_like_go(void **state)
{
    (void)state;
    static const pair cases[] = {
        {"\"\"", ""},
        {"\"plain\"", "plain"},
        {"\"\\b\\f\\n\\r\\t\\/\\\\\\\"\"", "\b\f\n\r\t/\\\""},
        {"\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac"},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"},
        /* lone or reversed surrogates: U+FFFD each, the next escape read alone */
        {"\"\\ud800x\"", "\xef\xbf\xbdx"},
        {"\"\\udc00\\ud800\"", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\"\\ud800\\u0041\"", "\xef\xbf\xbd"
                               "A"},
        /* invalid UTF-8: one U+FFFD per byte */
        {"\"\xff\xfe\"", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\"\xe2\x82z\"", "\xef\xbf\xbd\xef\xbf\xbdz"},
        {"\"\xed\xa0\x80\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\"\xc0\xaf\"", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\"\xf4\x90\x80\x80\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\"\xf4\x8f\xbf\xbf\xc3\xa9\"", "\xf4\x8f\xbf\xbf\xc3\xa9"},
        {"\"\xef\xbf\xbd\"", "\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].json);
        char *out = malloc(3 * len + 1);
        assert_non_null(out);
        size_t n = ssm_gojson_unquote(cases[i].json, len, out);
        assert_int_equal(n, strlen(cases[i].err));
        assert_memory_equal(out, cases[i].err, n);
        free(out);
    }
    char nul[4];
    assert_int_equal(ssm_gojson_unquote("\"\\u0000\"", 8, nul), 1);
    assert_int_equal(nul[0], 0);
}

static void test_keys_that_do_not_match(void **state)
{
    (void)state;
    /* none of these is SessionId for Go, so the number is ignored */
    static const char *const keys[] = {
        "SessionIdx",      "Sessio",        "Session\\u0000Id", "Sess\\u0131onId",
        "\\ud800essionId", "Se\xffssionId", "SessionI",         ""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char j[64];
        snprintf(j, sizeof j, "{\"%s\":1}", keys[i]);
        ssm_gojson_result res = expect_ok(j, SSM_GOJSON_SDK_V2);
        assert_int_equal(res.field[SSM_GOJSON_SESSION_ID].len, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observed_official_texts),
        cmocka_unit_test(test_scanner_contexts),
        cmocka_unit_test(test_quote_char),
        cmocka_unit_test(test_max_depth),
        cmocka_unit_test(test_field_type_errors),
        cmocka_unit_test(test_result_metadata_v2_only),
        cmocka_unit_test(test_message_fits),
        cmocka_unit_test(test_values_kept),
        cmocka_unit_test(test_unquote_like_go),
        cmocka_unit_test(test_keys_that_do_not_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
