/* The command-line contract (PROTOCOL.md §1, PROTOCOL-NEWEST.md §8), in the
 * official plugin's order: argv forms, positional arguments (reading and
 * unsetting the AWS_SSM_START_SESSION_RESPONSE* variable, argv[5] Target),
 * the operation check, then the StartSession response JSON.
 * Where the official plugin panics we print one "Cannot perform start
 * session:" line instead; nothing printed ever contains the token. */
#include "cli.h"
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

/* Go decodes an object into a struct matching keys case-insensitively; the
 * last duplicate wins. */
static const cJSON *member_ci(const cJSON *obj, const char *key)
{
    const cJSON *found = NULL, *it;
    cJSON_ArrayForEach(it, obj)
    {
        if (it->string && ascii_ieq(it->string, key))
            found = it;
    }
    return found;
}

/* Overwrites every string in a parsed tree before it is freed: the response
 * holds the token. */
static void wipe_tree(cJSON *j)
{
    for (; j; j = j->next) {
        if (j->valuestring)
            OPENSSL_cleanse(j->valuestring, strlen(j->valuestring));
        wipe_tree(j->child);
    }
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
 * variable is removed so no child process inherits the token. *from_env
 * tells the caller which form was used. Returns a malloc'd copy (possibly
 * ""), or NULL when out of memory. */
static char *response_text(const char *arg, bool *from_env)
{
    *from_env = strncmp(arg, ENV_PREFIX, strlen(ENV_PREFIX)) == 0;
    if (!*from_env)
        return strdup(arg);
    /* A name with '=' cannot be a variable (Go reads it as unset). */
    const char *val = strchr(arg, '=') ? NULL : getenv(arg);
    char *copy = strdup(val ? val : "");
    if (!strchr(arg, '='))
        unsetenv(arg);
    return copy;
}

/* Problems with the response, worded without its content. */
static const char *field_problem(const cJSON *root, const char *field, const char **value,
                                 char *msg, size_t cap)
{
    const cJSON *v = member_ci(root, field);
    *value = NULL;
    if (!v || cJSON_IsNull(v)) {
        snprintf(msg, cap, "StartSession response has no %s", field);
        return msg;
    }
    if (!cJSON_IsString(v) || !v->valuestring) {
        snprintf(msg, cap, "StartSession response field %s is not a string", field);
        return msg;
    }
    *value = v->valuestring;
    return NULL;
}

/* Fills session_id/stream_url/token from the response text, or returns the
 * problem to print (in msg or a literal). */
static const char *take_response(ssm_cli_args *args, const char *text, bool from_env,
                                 const char *name, bool *oom, char *msg, size_t cap)
{
    const char *problem = NULL, *sid, *url, *tok;
    if (text[0] == '\0' && from_env) {
        snprintf(msg, cap, "environment variable %.100s is empty or not set", name);
        return msg;
    }
    cJSON *root = parse_json(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text && at <= text + strlen(text) ? (long)(at - text) : -1;
        snprintf(msg, cap, "StartSession response is not valid JSON (error near byte %ld)",
                 off);
        return msg;
    }
    if (!cJSON_IsObject(root)) {
        problem = "StartSession response is not a JSON object";
    } else if ((problem = field_problem(root, "SessionId", &sid, msg, cap)) ||
               (problem = field_problem(root, "StreamUrl", &url, msg, cap)) ||
               (problem = field_problem(root, "TokenValue", &tok, msg, cap))) {
        /* problem set */
    } else {
        args->session_id = strdup(sid);
        args->stream_url = strdup(url);
        args->token = strdup(tok);
        *oom = !args->session_id || !args->stream_url || !args->token;
    }
    wipe_tree(root);
    cJSON_Delete(root);
    return problem;
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
    bool from_env = false, oom = false;
    char *response = response_text(argv[1], &from_env);
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
    char msg[192];
    const char *problem = take_response(args, response, from_env, argv[1], &oom, msg, sizeof msg);
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
