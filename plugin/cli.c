/* The command-line contract (PROTOCOL.md §1, PROTOCOL-NEWEST.md §8), in the
 * official plugin's order: argv forms, positional arguments (reading and
 * unsetting the AWS_SSM_START_SESSION_RESPONSE* variable, argv[5] Target),
 * the operation check, then the StartSession response JSON.
 * Bad response JSON gets Go's own error text (gojson_err.h); where the
 * official plugin panics we print one "Cannot perform start session:" line
 * instead. No text shows more than the one input byte a Go syntax error
 * names, so a token is never printed. */
#include "cli.h"
#include "gojson_err.h"
#include "standalone.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#ifndef SSM_PLUGIN_VERSION
#error "SSM_PLUGIN_VERSION must be defined by the build"
#endif

#define ENV_PREFIX "AWS_SSM_START_SESSION_RESPONSE"
#define START_SESSION "StartSession"
#define CANNOT "Cannot perform start session: "

static const char install_text[] = "\nThe Session Manager plugin was installed successfully. "
                                   "Use the AWS CLI to start a session.\n\n";


static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static int ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        int x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x += 'a' - 'A';
        if (y >= 'A' && y <= 'Z')
            y += 'a' - 'A';
        if (x != y)
            return 0;
    }
    return *a == *b;
}

static cJSON *parse_json(const char *text)
{
    /* Length includes the NUL so cJSON can reject trailing garbage. */
    return cJSON_ParseWithLengthOpts(text, strlen(text) + 1, NULL, 1);
}

/* argv[5]: only Target. The official plugin looks up the exact key "Target"
 * (and panics without it); we prefer the exact key, else accept any case,
 * and use "" for anything missing, non-string or unparsable. */
static char *target_from(const char *json)
{
    cJSON *root = parse_json(json);
    const cJSON *exact = NULL, *folded = NULL, *it;
    if (cJSON_IsObject(root)) {
        cJSON_ArrayForEach(it, root)
        {
            if (!it->string)
                continue;
            if (!strcmp(it->string, "Target"))
                exact = it;
            else if (ascii_ieq(it->string, "Target"))
                folded = it;
        }
    }
    const cJSON *t = exact ? exact : folded;
    char *out = strdup(cJSON_IsString(t) && t->valuestring ? t->valuestring : "");
    cJSON_Delete(root);
    return out;
}

/* argv[1]: the JSON itself, or the name of the variable holding it. The
 * variable's value is wiped where it lies (/proc/PID/environ shows the
 * process's original environment block) and the variable removed, so
 * neither a child nor a reader of /proc sees the token. Returns a malloc'd
 * copy (possibly "": Go then reports the end of input), or NULL when out of
 * memory. */
static char *response_text(const char *arg)
{
    if (strncmp(arg, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
        return strdup(arg);
    /* A name with '=' cannot be a variable (Go reads it as unset). */
    char *val = strchr(arg, '=') ? NULL : getenv(arg);
    char *copy = strdup(val ? val : "");
    if (val)
        OPENSSL_cleanse(val, strlen(val));
    if (!strchr(arg, '='))
        unsetenv(arg);
    return copy;
}

void ssm_cli_wipe_argv(int argc, char **argv)
{
    if (argc > 1 && strncmp(argv[1], ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
        OPENSSL_cleanse(argv[1], strlen(argv[1]));
}

/* A malloc'd copy of the string Go keeps for a field (escapes decoded,
 * invalid UTF-8 as U+FFFD), or NULL when out of memory. */
static char *field_value(const char *text, ssm_gojson_span span)
{
    char *v = malloc(3 * span.len + 1);
    if (!v)
        return NULL;
    size_t n = ssm_gojson_unquote(text + span.off, span.len, v);
    v[n] = '\0';
    /* A \u0000 ends the C string here (Go would keep it); wipe what follows
     * now, since wipe_free only sees up to the first NUL. */
    size_t used = strlen(v);
    OPENSSL_cleanse(v + used, n - used);
    return v;
}

/* Fills session_id/stream_url/token from the response text, or returns the
 * problem to print (in msg or a literal): Go's own error text where the
 * official plugin prints one, our wording where it panics (a nil field). */
static const char *take_response(ssm_cli_args *args, const char *text, bool *oom, char *msg,
                                 size_t cap)
{
    static const char *const names[SSM_GOJSON_NFIELDS] = {"SessionId", "StreamUrl",
                                                          "TokenValue"};
    ssm_gojson_result res;
    if (ssm_gojson_start_session(text, strlen(text), SSM_GOJSON_SDK_V2, &res, msg, cap) != 0)
        return msg;
    if (res.top_null)
        return "StartSession response is not a JSON object";
    /* Go dereferences SessionId, StreamUrl, TokenValue in this order. */
    for (int f = 0; f < SSM_GOJSON_NFIELDS; f++) {
        if (res.field[f].len == 0) {
            snprintf(msg, cap, "StartSession response has no %s", names[f]);
            return msg;
        }
    }
    args->session_id = field_value(text, res.field[SSM_GOJSON_SESSION_ID]);
    args->stream_url = field_value(text, res.field[SSM_GOJSON_STREAM_URL]);
    args->token = field_value(text, res.field[SSM_GOJSON_TOKEN_VALUE]);
    *oom = !args->session_id || !args->stream_url || !args->token;
    return NULL;
}

static int finish(int action, int code, int *exit_code, FILE *out)
{
    *exit_code = code;
    fflush(out);
    return action;
}

int ssm_cli_parse(int argc, char **argv, ssm_cli_args *args, int *exit_code, FILE *out)
{
    memset(args, 0, sizeof *args);
    if (argc < 1 || !argv) {
        /* No argv[0] at all: the official plugin finds no operation. */
        fputs("Invalid Operation", out);
        return finish(SSM_CLI_EXIT, 0, exit_code, out);
    }
    if (argc == 1) {
        fputs(install_text, out);
        return finish(SSM_CLI_EXIT, 0, exit_code, out);
    }
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        fputs(SSM_PLUGIN_VERSION "\n", out);
        return finish(SSM_CLI_EXIT, 0, exit_code, out);
    }
    if (ssm_sa_selected(argc, argv)) {
        /* Standalone mode (docs/standalone.md): `start-session` alone still
         * falls through to the official "Unknown operation" text below. */
        int code = ssm_sa_main(argc, argv, out);
        return finish(SSM_CLI_EXIT, code, exit_code, out);
    }
    if (argc < 4) {
        fprintf(out, "\nUnknown operation %s. \nUse session-manager-plugin --version to check the "
                     "version.\n\n",
                argv[1]);
        return finish(SSM_CLI_EXIT, 0, exit_code, out);
    }

    /* Positional arguments first, as the official plugin does: the variable
     * is consumed even when the operation turns out to be invalid. */
    bool oom = false;
    char *response = response_text(argv[1]);
    args->legacy_cli = argc == 4;
    args->region = strdup(argv[2]);
    args->operation = strdup(argv[3]);
    args->profile = strdup(argc > 4 ? argv[4] : "");
    args->target = argc > 5 ? target_from(argv[5]) : strdup("");
    args->endpoint = strdup(argc > 6 ? argv[6] : "");
    if (!response || !args->region || !args->operation || !args->profile || !args->target ||
        !args->endpoint)
        goto out_of_memory;

    if (strcmp(args->operation, START_SESSION) != 0) {
        fputs("Invalid Operation", out);
        goto exit_zero;
    }
    char msg[SSM_GOJSON_MSG_MAX];
    const char *problem = take_response(args, response, &oom, msg, sizeof msg);
    if (oom)
        goto out_of_memory;
    if (problem) {
        fprintf(out, CANNOT "%s\n", problem);
        goto exit_zero;
    }
    wipe_free(response);
    return finish(SSM_CLI_START, 0, exit_code, out);

exit_zero:
    wipe_free(response);
    ssm_cli_args_free(args);
    return finish(SSM_CLI_EXIT, 0, exit_code, out);
out_of_memory:
    fputs(CANNOT "out of memory\n", out);
    wipe_free(response);
    ssm_cli_args_free(args);
    return finish(SSM_CLI_EXIT, 1, exit_code, out);
}

void ssm_cli_args_free(ssm_cli_args *args)
{
    if (!args)
        return;
    /* Everything is wiped, not only the token: cheap, and no field is left
     * behind by mistake. */
    wipe_free(args->session_id);
    wipe_free(args->token);
    wipe_free(args->stream_url);
    wipe_free(args->region);
    wipe_free(args->operation);
    wipe_free(args->profile);
    wipe_free(args->endpoint);
    wipe_free(args->target);
    memset(args, 0, sizeof *args);
}
