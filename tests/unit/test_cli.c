/* ssm_cli_parse: every argv form of PROTOCOL.md §1 / PROTOCOL-NEWEST.md §8,
 * byte-exact output, the env-var hand-off and the token never printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "port_listen.h"
#include "standalone.h"
#include "standalone_exit.h"

#include <sys/socket.h>

#define TOKEN "tok-SECRET-7f3a9c"
#define GOOD_RESPONSE                                                                              \
    "{\"SessionId\": \"sess-123\", \"TokenValue\": \"" TOKEN "\", \"StreamUrl\": "                \
    "\"wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/sess-123?role=publish_subscribe\"}"
#define ENV_NAME "AWS_SSM_START_SESSION_RESPONSE"

typedef struct run {
    int action, exit_code;
    char *out; /* everything written to the FILE */
    size_t out_len;
    ssm_cli_args args;
} run;

/* Runs ssm_cli_parse on a NULL-terminated list of arguments (argv[0] added). */
static run parse(const char *first, ...)
{
    char *argv[16] = {"session-manager-plugin"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 15; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;

    run r;
    memset(&r, 0, sizeof r);
    FILE *f = open_memstream(&r.out, &r.out_len);
    assert_non_null(f);
    r.exit_code = -42;
    r.action = ssm_cli_parse(argc, argv, &r.args, &r.exit_code, f);
    fclose(f);
    return r;
}

static void run_free(run *r)
{
    ssm_cli_args_free(&r->args);
    free(r->out);
}

static void assert_exit_with(run *r, const char *expected)
{
    assert_int_equal(r->action, SSM_CLI_EXIT);
    assert_int_equal(r->exit_code, 0);
    assert_int_equal(r->out_len, strlen(expected));
    assert_memory_equal(r->out, expected, r->out_len);
    /* Nothing is handed to the caller on EXIT. */
    assert_null(r->args.token);
    assert_null(r->args.session_id);
}

/* One "Cannot perform start session: ...\n" line that never shows the token. */
static void assert_cannot_start(run *r, const char *must_contain)
{
    static const char prefix[] = "Cannot perform start session: ";
    assert_int_equal(r->action, SSM_CLI_EXIT);
    assert_int_equal(r->exit_code, 0);
    assert_true(r->out_len > sizeof prefix);
    assert_memory_equal(r->out, prefix, sizeof prefix - 1);
    assert_int_equal(r->out[r->out_len - 1], '\n');
    assert_ptr_equal(memchr(r->out, '\n', r->out_len), r->out + r->out_len - 1);
    assert_null(strstr(r->out, TOKEN));
    assert_null(strstr(r->out, "SECRET"));
    if (must_contain)
        assert_non_null(strstr(r->out, must_contain));
    assert_null(r->args.token);
}

static void test_no_arguments(void **state)
{
    (void)state;
    run r = parse(NULL);
    assert_exit_with(&r, "\nThe Session Manager plugin was installed successfully. Use the AWS CLI "
                         "to start a session.\n\n");
    run_free(&r);
}

static void test_no_argv0(void **state)
{
    (void)state;
    char *argv[] = {NULL};
    char *buf = NULL;
    size_t len = 0;
    int code = -1;
    ssm_cli_args args;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(ssm_cli_parse(0, argv, &args, &code, f), SSM_CLI_EXIT);
    fclose(f);
    assert_int_equal(code, 0);
    assert_int_equal(len, strlen("Invalid Operation"));
    assert_memory_equal(buf, "Invalid Operation", len);
    ssm_cli_args_free(&args);
    free(buf);
}

static void test_version(void **state)
{
    (void)state;
    run r = parse("--version", NULL);
    assert_exit_with(&r, SSM_PLUGIN_VERSION "\n");
    run_free(&r);
}

static void test_unknown_operation_argc2(void **state)
{
    (void)state;
    run r = parse("--help", NULL);
    assert_exit_with(&r, "\nUnknown operation --help. \nUse session-manager-plugin --version to "
                         "check the version.\n\n");
    run_free(&r);
    r = parse("-version", NULL); /* only the exact spelling prints the version */
    assert_exit_with(&r, "\nUnknown operation -version. \nUse session-manager-plugin --version to "
                         "check the version.\n\n");
    run_free(&r);
}

static void test_unknown_operation_argc3(void **state)
{
    (void)state;
    run r = parse("--version", "extra", NULL);
    assert_exit_with(&r, "\nUnknown operation --version. \nUse session-manager-plugin --version to "
                         "check the version.\n\n");
    run_free(&r);
    r = parse("", "x", NULL);
    assert_exit_with(&r, "\nUnknown operation . \nUse session-manager-plugin --version to check "
                         "the version.\n\n");
    run_free(&r);
}

static void test_legacy_form(void **state)
{
    (void)state;
    run r = parse(GOOD_RESPONSE, "us-east-1", "StartSession", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out_len, 0);
    assert_true(r.args.legacy_cli);
    assert_string_equal(r.args.session_id, "sess-123");
    assert_string_equal(r.args.token, TOKEN);
    assert_string_equal(r.args.stream_url,
                        "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/"
                        "sess-123?role=publish_subscribe");
    assert_string_equal(r.args.region, "us-east-1");
    assert_string_equal(r.args.operation, "StartSession");
    assert_string_equal(r.args.profile, "");
    assert_string_equal(r.args.target, "");
    assert_string_equal(r.args.endpoint, "");
    run_free(&r);
}

static void test_current_forms(void **state)
{
    (void)state;
    run r = parse(GOOD_RESPONSE, "eu-west-1", "StartSession", "", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_false(r.args.legacy_cli);
    assert_string_equal(r.args.profile, "");
    assert_string_equal(r.args.target, "");
    assert_string_equal(r.args.endpoint, "");
    run_free(&r);

    r = parse(GOOD_RESPONSE, "eu-west-1", "StartSession", "prod",
              "{\"Target\": \"i-0123456789abcdef0\", \"DocumentName\": \"AWS-StartPortForwardingSession\", "
              "\"Parameters\": {\"portNumber\": [\"80\"]}}",
              "https://ssm.eu-west-1.amazonaws.com", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_false(r.args.legacy_cli);
    assert_int_equal(r.out_len, 0);
    assert_string_equal(r.args.region, "eu-west-1");
    assert_string_equal(r.args.profile, "prod");
    assert_string_equal(r.args.target, "i-0123456789abcdef0");
    assert_string_equal(r.args.endpoint, "https://ssm.eu-west-1.amazonaws.com");
    run_free(&r);

    /* Arguments beyond argv[6] are ignored. */
    r = parse(GOOD_RESPONSE, "r", "StartSession", "p", "{\"Target\":\"t\"}", "e", "x", "y", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_string_equal(r.args.endpoint, "e");
    assert_string_equal(r.args.target, "t");
    run_free(&r);
}

static void test_target_variants(void **state)
{
    (void)state;
    static const struct {
        const char *json, *target;
    } cases[] = {
        {"{}", ""},
        {"{\"Target\": 42}", ""},
        {"{\"Target\": null}", ""},
        {"{\"Target\": [\"i-1\"]}", ""},
        {"not json", ""},
        {"{\"Target\": \"i-1\"", ""},
        {"{\"Target\": \"i-1\"} trailing", ""},
        {"[\"Target\", \"i-1\"]", ""},
        {"", ""},
        {"{\"target\": \"i-lower\"}", "i-lower"},
        {"{\"TARGET\": \"i-upper\"}", "i-upper"},
        {"{\"target\": \"i-lower\", \"Target\": \"i-exact\"}", "i-exact"},
        {"{\"Target\": \"i-exact\", \"target\": \"i-lower\"}", "i-exact"},
        {"{\"Target\": \"i-a\", \"Target\": \"i-b\"}", "i-b"},
        {"{\"Target\": \"ecs:cluster_task_runtime\"}", "ecs:cluster_task_runtime"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run r = parse(GOOD_RESPONSE, "r", "StartSession", "", cases[i].json, NULL);
        assert_int_equal(r.action, SSM_CLI_START);
        assert_int_equal(r.out_len, 0);
        assert_string_equal(r.args.target, cases[i].target);
        run_free(&r);
    }
}

static void test_invalid_operation(void **state)
{
    (void)state;
    run r = parse(GOOD_RESPONSE, "r", "TerminateSession", "", "{}", "e", NULL);
    assert_exit_with(&r, "Invalid Operation");
    run_free(&r);
    /* Checked before the response: broken JSON still says Invalid Operation. */
    r = parse("{broken " TOKEN, "r", "startsession", NULL);
    assert_exit_with(&r, "Invalid Operation");
    run_free(&r);
}

static void test_env_var_form(void **state)
{
    (void)state;
    assert_int_equal(setenv(ENV_NAME, GOOD_RESPONSE, 1), 0);
    run r = parse(ENV_NAME, "us-east-1", "StartSession", "", "{\"Target\":\"i-9\"}", "", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_int_equal(r.out_len, 0);
    assert_string_equal(r.args.token, TOKEN);
    assert_string_equal(r.args.session_id, "sess-123");
    assert_string_equal(r.args.target, "i-9");
    assert_null(getenv(ENV_NAME)); /* no child can inherit the token */
    run_free(&r);

    /* Prefix match: any name starting with the prefix is a variable name. */
    assert_int_equal(setenv(ENV_NAME "_42", GOOD_RESPONSE, 1), 0);
    r = parse(ENV_NAME "_42", "r", "StartSession", "", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_string_equal(r.args.token, TOKEN);
    assert_null(getenv(ENV_NAME "_42"));
    run_free(&r);
}

static void test_env_var_consumed_even_on_invalid_operation(void **state)
{
    (void)state;
    assert_int_equal(setenv(ENV_NAME, GOOD_RESPONSE, 1), 0);
    run r = parse(ENV_NAME, "r", "Nope", "", NULL);
    assert_exit_with(&r, "Invalid Operation");
    assert_null(getenv(ENV_NAME));
    run_free(&r);
}

/* The whole line, exactly. */
static void assert_cannot_start_with(run *r, const char *problem)
{
    char expected[256];
    snprintf(expected, sizeof expected, "Cannot perform start session: %s\n", problem);
    assert_cannot_start(r, NULL);
    assert_string_equal(r->out, expected);
}

static void test_env_var_missing(void **state)
{
    (void)state;
    /* Go reads an unset or empty variable as "" and says so its own way. */
    unsetenv(ENV_NAME);
    run r = parse(ENV_NAME, "r", "StartSession", "", NULL);
    assert_cannot_start_with(&r, "unexpected end of JSON input");
    run_free(&r);

    assert_int_equal(setenv(ENV_NAME, "", 1), 0);
    r = parse(ENV_NAME, "r", "StartSession", "", NULL);
    assert_cannot_start_with(&r, "unexpected end of JSON input");
    assert_null(getenv(ENV_NAME));
    run_free(&r);

    /* A name with '=' is not a variable name; nothing is unset. */
    assert_int_equal(setenv(ENV_NAME, GOOD_RESPONSE, 1), 0);
    r = parse(ENV_NAME "=x", "r", "StartSession", "", NULL);
    assert_cannot_start_with(&r, "unexpected end of JSON input");
    assert_non_null(getenv(ENV_NAME));
    unsetenv(ENV_NAME);
    run_free(&r);

    /* The variable's JSON gets the same Go texts as argv[1]'s. */
    assert_int_equal(setenv(ENV_NAME, "{\"TokenValue\": \"" TOKEN "\", \"SessionId\": 5}", 1), 0);
    r = parse(ENV_NAME, "r", "StartSession", "", NULL);
    assert_cannot_start_with(&r, "json: cannot unmarshal number into Go struct field "
                                 "StartSessionOutput.SessionId of type string");
    assert_null(getenv(ENV_NAME));
    run_free(&r);
}

static void test_lowercase_keys_ecs_exec(void **state)
{
    (void)state;
    /* aws ecs execute-command passes json.dumps(response['session']). */
    run r = parse("{\"sessionId\": \"ecs-execute-command-0abc\", \"streamUrl\": \"wss://x/y\", "
                  "\"tokenValue\": \"" TOKEN "\"}",
                  "us-east-1", "StartSession", "", "{\"Target\": \"ecs:c_t_r\"}",
                  "https://ecs.us-east-1.amazonaws.com", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_string_equal(r.args.session_id, "ecs-execute-command-0abc");
    assert_string_equal(r.args.stream_url, "wss://x/y");
    assert_string_equal(r.args.token, TOKEN);
    assert_string_equal(r.args.target, "ecs:c_t_r");
    run_free(&r);

    /* Mixed case, extra keys, last duplicate wins (Go's decoder). */
    r = parse("{\"SESSIONID\": \"a\", \"Extra\": {\"n\": [1, 2]}, \"sessionid\": \"b\", "
              "\"STREAMURL\": \"u\", \"TokenVALUE\": \"" TOKEN "\"}",
              "r", "StartSession", "", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_string_equal(r.args.session_id, "b");
    assert_string_equal(r.args.stream_url, "u");
    run_free(&r);
}

/* Not JSON: Go's scanner text, naming at most one byte of the input. */
static void test_bad_response_json(void **state)
{
    (void)state;
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"{\"SessionId\": \"s\", \"TokenValue\": \"" TOKEN "\", \"StreamUrl\": \"u\"",
         "unexpected end of JSON input"},
        {"{\"SessionId\": \"s\", \"TokenValue\": \"" TOKEN "\", \"StreamUrl\": \"u\"} x",
         "invalid character 'x' after top-level value"},
        {"{'SessionId': 's', 'TokenValue': '" TOKEN "'}",
         "invalid character '\\'' looking for beginning of object key string"},
        {TOKEN, "invalid character 'o' in literal true (expecting 'r')"},
        {"", "unexpected end of JSON input"},
        {"{\"TokenValue\": \"" TOKEN "\\x\"}", "invalid character 'x' in string escape code"},
        {"{\"TokenValue\": \"" TOKEN "\t\"}", "invalid character '\\t' in string literal"},
        {"{\"SessionId\": 1,}", "invalid character '}' looking for beginning of object key string"},
        {"{\"SessionId\": 01}", "invalid character '1' after object key:value pair"},
        /* lowercase prefix is not the variable form: it is parsed as JSON */
        {"aws_ssm_start_session_response", "invalid character 'a' looking for beginning of value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run r = parse(cases[i].json, "r", "StartSession", "", NULL);
        assert_cannot_start_with(&r, cases[i].msg);
        run_free(&r);
    }
}

static void test_response_not_object(void **state)
{
    (void)state;
    static const struct {
        const char *json, *msg;
    } cases[] = {
        /* Go decodes null into nothing and then panics: our own line */
        {"null", "StartSession response is not a JSON object"},
        {" null\n", "StartSession response is not a JSON object"},
        {"[\"" TOKEN "\"]", "json: cannot unmarshal array into Go value of type ssm.StartSessionOutput"},
        {"\"" TOKEN "\"", "json: cannot unmarshal string into Go value of type ssm.StartSessionOutput"},
        {"42", "json: cannot unmarshal number into Go value of type ssm.StartSessionOutput"},
        {"true", "json: cannot unmarshal bool into Go value of type ssm.StartSessionOutput"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run r = parse(cases[i].json, "r", "StartSession", "", NULL);
        assert_cannot_start_with(&r, cases[i].msg);
        run_free(&r);
    }
}

static void test_missing_fields(void **state)
{
    (void)state;
#define TYPE_ERR(kind, f) "json: cannot unmarshal " kind " into Go struct field StartSessionOutput." f " of type string"
    static const struct {
        const char *json, *msg;
    } cases[] = {
        /* nil fields: Go panics, we name the first one it dereferences */
        {"{\"TokenValue\": \"" TOKEN "\", \"StreamUrl\": \"u\"}", "StartSession response has no SessionId"},
        {"{\"SessionId\": \"s\", \"TokenValue\": \"" TOKEN "\"}", "StartSession response has no StreamUrl"},
        {"{\"SessionId\": \"s\", \"StreamUrl\": \"u\"}", "StartSession response has no TokenValue"},
        {"{\"SessionId\": null, \"StreamUrl\": \"u\", \"TokenValue\": \"" TOKEN "\"}",
         "StartSession response has no SessionId"},
        {"{\"SessionId\": \"s\", \"StreamUrl\": \"u\", \"TokenValue\": \"" TOKEN "\", \"tokenvalue\": null}",
         "StartSession response has no TokenValue"},
        {"{}", "StartSession response has no SessionId"},
        {"{\"StreamUrl\": 1}", TYPE_ERR("number", "StreamUrl")},
        /* wrong types: Go's UnmarshalTypeError, the first in the text */
        {"{\"SessionId\": 7, \"StreamUrl\": \"u\", \"TokenValue\": \"" TOKEN "\"}", TYPE_ERR("number", "SessionId")},
        {"{\"SessionId\": \"s\", \"StreamUrl\": [\"u\"], \"TokenValue\": \"" TOKEN "\"}", TYPE_ERR("array", "StreamUrl")},
        {"{\"SessionId\": \"s\", \"StreamUrl\": \"u\", \"TokenValue\": {\"v\": \"" TOKEN "\"}}",
         TYPE_ERR("object", "TokenValue")},
        {"{\"tokenvalue\": false, \"SessionId\": 1}", TYPE_ERR("bool", "TokenValue")},
        /* aws-sdk-go-v2's StartSessionOutput (1.2.804.0 on) has ResultMetadata */
        {"{\"SessionId\": \"s\", \"StreamUrl\": \"u\", \"TokenValue\": \"" TOKEN "\", \"ResultMetadata\": 1}",
         "json: cannot unmarshal number into Go struct field StartSessionOutput.ResultMetadata of type "
         "middleware.Metadata"},
    };
#undef TYPE_ERR
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run r = parse(cases[i].json, "r", "StartSession", "p", "{\"Target\":\"t\"}", "e", NULL);
        assert_cannot_start_with(&r, cases[i].msg);
        run_free(&r);
    }
}

static void test_empty_strings_accepted(void **state)
{
    (void)state;
    /* The official plugin accepts empty values; the session fails later. */
    run r = parse("{\"SessionId\": \"\", \"StreamUrl\": \"\", \"TokenValue\": \"\"}", "", "StartSession",
                  "", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_string_equal(r.args.session_id, "");
    assert_string_equal(r.args.token, "");
    run_free(&r);
}

static void test_escapes_decoded(void **state)
{
    (void)state;
    run r = parse("{\"SessionId\": \"a\\u002fb\", \"StreamUrl\": \"wss:\\/\\/h\", \"TokenValue\": "
                  "\"x\\\"y\"}",
                  "r", "StartSession", "", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_string_equal(r.args.session_id, "a/b");
    assert_string_equal(r.args.stream_url, "wss://h");
    assert_string_equal(r.args.token, "x\"y");
    run_free(&r);

    /* Go's coercion: invalid UTF-8 and lone surrogates become U+FFFD; the
     * Unicode-folded key (U+017F for s) still names SessionId. */
    r = parse("{\"\xc5\xbf" "essionId\": \"s\xff\\ud800\", \"StreamUrl\": \"u\", "
              "\"TokenValue\": \"\\ud83d\\ude00\"}",
              "r", "StartSession", "", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_string_equal(r.args.session_id, "s\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(r.args.token, "\xf0\x9f\x98\x80");
    run_free(&r);

    /* A \u0000 ends our C string (Go would keep the NUL and the rest). */
    r = parse("{\"SessionId\": \"a\\u0000b\", \"StreamUrl\": \"u\", \"TokenValue\": \"t\"}", "r",
              "StartSession", "", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    assert_string_equal(r.args.session_id, "a");
    run_free(&r);
}

static void test_free_is_idempotent(void **state)
{
    (void)state;
    run r = parse(GOOD_RESPONSE, "r", "StartSession", "", NULL);
    assert_int_equal(r.action, SSM_CLI_START);
    ssm_cli_args_free(&r.args);
    assert_null(r.args.token);
    assert_null(r.args.session_id);
    assert_null(r.args.target);
    ssm_cli_args_free(&r.args);
    ssm_cli_args_free(NULL);
    free(r.out);
}

/* ---- standalone mode (docs/standalone.md) ---- */

static void test_standalone_selection(void **state)
{
    (void)state;
    char *a2[] = {"p", "start-session", NULL};
    char *a3[] = {"p", "start-session", "--help", NULL};
    char *other[] = {"p", "Start-Session", "--target", "i-1", NULL};
    assert_false(ssm_sa_selected(2, a2)); /* keeps the official Unknown operation text */
    assert_true(ssm_sa_selected(3, a3));
    assert_false(ssm_sa_selected(4, other));
    /* `start-session` alone still prints the official text, exit 0 */
    run r = parse("start-session", NULL);
    assert_int_equal(r.action, SSM_CLI_EXIT);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "\nUnknown operation start-session. \nUse session-manager-plugin "
                               "--version to check the version.\n\n");
    free(r.out);
    /* help goes to the given stream, exit 0, no session */
    r = parse("start-session", "--help", NULL);
    assert_int_equal(r.action, SSM_CLI_EXIT);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "usage: session-manager-plugin start-session --target"));
    free(r.out);
}

static int sa_parse(ssm_sa_opts *o, char *err, size_t cap, ...)
{
    char *argv[32] = {"p", "start-session"};
    int argc = 2;
    va_list ap;
    va_start(ap, cap);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return ssm_sa_parse(argc, argv, o, err, cap);
}

static void test_standalone_options(void **state)
{
    (void)state;
    ssm_sa_opts o;
    char err[300];
    assert_int_equal(sa_parse(&o, err, sizeof err, "--target", "i-1", "--document-name=D",
                              "--parameters", "a=b", "--reason", "r", "--region", "eu-west-1",
                              "--profile", "dev", "--endpoint-url", "http://x/",
                              "--listen-address", "::1", NULL),
                     0);
    assert_string_equal(o.target, "i-1");
    assert_string_equal(o.document, "D");
    assert_string_equal(o.parameters, "a=b");
    assert_string_equal(o.reason, "r");
    assert_string_equal(o.region, "eu-west-1");
    assert_string_equal(o.profile, "dev");
    assert_string_equal(o.endpoint, "http://x/");
    assert_string_equal(o.listen_address, "::1");
    assert_false(o.help);
    struct {
        const char *a, *b, *want;
    } bad[] = {
        {"--document-name", "D", "required: --target"},
        {"--target", NULL, "needs a value"},
        {"--nope", "1", "unknown option: --nope"},
        {"stray", NULL, "unexpected argument: stray"},
        {"--listen-address", "example.com", "--listen-address"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = !strcmp(bad[i].a, "--target") || !strcmp(bad[i].a, "--document-name")
                     ? sa_parse(&o, err, sizeof err, bad[i].a, bad[i].b, NULL)
                     : sa_parse(&o, err, sizeof err, "--target", "i-1", bad[i].a, bad[i].b, NULL);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, bad[i].want));
    }
    assert_int_equal(sa_parse(&o, err, sizeof err, "--target", "a", "--target", "b", NULL), -1);
    assert_non_null(strstr(err, "given twice"));
    assert_int_equal(sa_parse(&o, err, sizeof err, "-h", NULL), 0);
    assert_true(o.help);
}

static void expect_request(const char *params, const char *want)
{
    ssm_sa_opts o = {.target = "i-1", .parameters = params};
    char err[300] = "";
    char *j = ssm_sa_request_json(&o, err, sizeof err);
    if (!want) {
        assert_null(j);
        assert_true(err[0] != '\0');
        return;
    }
    assert_non_null(j);
    assert_string_equal(j, want);
    free(j);
}

static void test_standalone_parameters(void **state)
{
    (void)state;
    ssm_sa_opts o = {.target = "i-1", .document = "Doc", .reason = "why"};
    char err[300];
    char *j = ssm_sa_request_json(&o, err, sizeof err);
    assert_string_equal(j, "{\"Target\":\"i-1\",\"DocumentName\":\"Doc\",\"Reason\":\"why\"}");
    free(j);
    expect_request("portNumber=80,localPortNumber=0",
                   "{\"Target\":\"i-1\",\"Parameters\":{\"portNumber\":[\"80\"],"
                   "\"localPortNumber\":[\"0\"]}}");
    expect_request("command=[\"echo a,b\",'x'],k=[],k2=\"q\\\"uote\"",
                   "{\"Target\":\"i-1\",\"Parameters\":{\"command\":[\"echo a,b\",\"x\"],"
                   "\"k\":[],\"k2\":[\"q\\\"uote\"]}}");
    expect_request("a=1,a=2", "{\"Target\":\"i-1\",\"Parameters\":{\"a\":[\"2\"]}}");
    expect_request(" {\"command\": \"ls\", \"x\": [\"1\", \"2\"]}",
                   "{\"Target\":\"i-1\",\"Parameters\":{\"command\":[\"ls\"],\"x\":[\"1\",\"2\"]}}");
    expect_request("novalue", NULL);
    expect_request("=v", NULL);
    expect_request("a=[1,2", NULL);
    expect_request("a=\"open", NULL);
    expect_request("a=[1]x", NULL);
    expect_request("{\"a\": 1}", NULL);
    expect_request("{\"a\": [1]}", NULL);
    expect_request("{\"a\": \"b\"} trailing", NULL);
    expect_request("[\"a\"]", NULL);
}

static void test_standalone_region(void **state)
{
    (void)state;
    char path[] = "/tmp/test_cli_cfg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char cfg[] = "[default]\nregion = eu-west-3\n[profile dev]\nregion = ap-south-1\n";
    assert_int_equal(write(fd, cfg, sizeof cfg - 1), (ssize_t)(sizeof cfg - 1));
    close(fd);
    setenv("AWS_CONFIG_FILE", path, 1);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_DEFAULT_PROFILE");
    char *r = ssm_sa_region(NULL, NULL);
    assert_string_equal(r, "eu-west-3");
    free(r);
    r = ssm_sa_region(NULL, "dev");
    assert_string_equal(r, "ap-south-1");
    free(r);
    setenv("AWS_PROFILE", "dev", 1);
    r = ssm_sa_region(NULL, NULL);
    assert_string_equal(r, "ap-south-1");
    free(r);
    assert_null(ssm_sa_region(NULL, "missing"));
    setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
    r = ssm_sa_region(NULL, "dev");
    assert_string_equal(r, "us-west-1");
    free(r);
    setenv("AWS_REGION", "us-east-2", 1);
    r = ssm_sa_region(NULL, NULL);
    assert_string_equal(r, "us-east-2");
    free(r);
    r = ssm_sa_region("ca-central-1", NULL);
    assert_string_equal(r, "ca-central-1");
    free(r);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_CONFIG_FILE");
    unlink(path);
}

static void test_exit_code_payload(void **state)
{
    (void)state;
    int c = -1;
#define P(s) (const uint8_t *)(s), sizeof(s) - 1
    assert_int_equal(ssm_exit_code_parse(P("EXIT_CODE: 7"), &c), 0);
    assert_int_equal(c, 7);
    assert_int_equal(ssm_exit_code_parse(P("EXIT_CODE:255\n"), &c), 0);
    assert_int_equal(c, 255);
    assert_int_equal(ssm_exit_code_parse(P("EXIT_CODE: 256"), &c), -1);
    assert_int_equal(ssm_exit_code_parse(P("EXIT_CODE: 0001"), &c), -1);
    assert_int_equal(ssm_exit_code_parse(P("EXIT_CODE: "), &c), -1);
    assert_int_equal(ssm_exit_code_parse(P("EXIT_CODE: 3x"), &c), -1);
    assert_int_equal(ssm_exit_code_parse(P("exit_code: 3"), &c), -1);
    assert_int_equal(ssm_exit_code_parse(P("EXIT_CODE"), &c), -1);
    assert_int_equal(ssm_exit_code_parse(NULL, 5, &c), -1);
    ssm_exit_code_reset();
    assert_false(ssm_exit_code_get(&c));
    ssm_exit_code_note(P("garbage"));
    assert_false(ssm_exit_code_get(&c));
    ssm_exit_code_note(P("EXIT_CODE: 42"));
    assert_true(ssm_exit_code_get(&c));
    assert_int_equal(c, 42);
    ssm_exit_code_reset();
#undef P
}

static void test_listen_address_forms(void **state)
{
    (void)state;
    port_listen_addr a;
    assert_int_equal(port_listen_parse_address("127.0.0.2", &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_string_equal(a.text, "127.0.0.2");
    assert_int_equal(port_listen_parse_address("localhost", &a), 0);
    assert_string_equal(a.text, "127.0.0.1");
    assert_int_equal(port_listen_parse_address("0:0:0:0:0:0:0:1", &a), 0);
    assert_int_equal(a.family, AF_INET6);
    assert_string_equal(a.text, "::1");
    assert_int_equal(port_listen_parse_address("[::1]", &a), 0);
    assert_string_equal(a.text, "::1");
    const char *bad[] = {"", "::1]", "[::1", "[]", "127.1.1", "1.2.3.256", "example.com",
                         "127.0.0.1:80", "fe80::1%lo"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(port_listen_parse_address(bad[i], NULL), -1);
    assert_int_equal(port_listen_parse_address(NULL, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_arguments),
        cmocka_unit_test(test_no_argv0),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_unknown_operation_argc2),
        cmocka_unit_test(test_unknown_operation_argc3),
        cmocka_unit_test(test_legacy_form),
        cmocka_unit_test(test_current_forms),
        cmocka_unit_test(test_target_variants),
        cmocka_unit_test(test_invalid_operation),
        cmocka_unit_test(test_env_var_form),
        cmocka_unit_test(test_env_var_consumed_even_on_invalid_operation),
        cmocka_unit_test(test_env_var_missing),
        cmocka_unit_test(test_lowercase_keys_ecs_exec),
        cmocka_unit_test(test_bad_response_json),
        cmocka_unit_test(test_response_not_object),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_empty_strings_accepted),
        cmocka_unit_test(test_escapes_decoded),
        cmocka_unit_test(test_free_is_idempotent),
        cmocka_unit_test(test_standalone_selection),
        cmocka_unit_test(test_standalone_options),
        cmocka_unit_test(test_standalone_parameters),
        cmocka_unit_test(test_standalone_region),
        cmocka_unit_test(test_exit_code_payload),
        cmocka_unit_test(test_listen_address_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
