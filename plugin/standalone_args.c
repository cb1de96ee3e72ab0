/* Standalone mode's command line: options, the StartSession request body
 * and the region (see standalone.h). */
#include "standalone.h"

#include "aws_ini.h"
#include "port_listen.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

bool ssm_sa_selected(int argc, char **argv)
{
    return argc >= 3 && argv && argv[1] && strcmp(argv[1], "start-session") == 0;
}

void ssm_sa_usage(FILE *out)
{
    fputs("usage: session-manager-plugin start-session --target <id> [--document-name <name>]\n"
          "           [--parameters k=v,k2=[v1,v2] | --parameters <JSON>] [--reason <text>]\n"
          "           [--region <region>] [--profile <name>] [--endpoint-url <url>]\n"
          "           [--listen-address <ip|localhost>]\n"
          "       session-manager-plugin start-session --target <id>\n"
          "           --forward LOCAL:REMOTE[:HOST] [--forward ...] [--reason <text>] [...]\n"
          "Calls SSM StartSession with the AWS CLI's credentials and configuration, then\n"
          "runs the session. Each --forward is one port forwarding session (to HOST through\n"
          "the target when given), all in this one process. Exit status: the remote command's for NonInteractiveCommands\n"
          "sessions, else 0; 252 bad arguments, 253 no region or credentials, 254\n"
          "StartSession failed.\n",
          out);
}

static const char **slot(ssm_sa_opts *o, const char *name, size_t n)
{
    static const struct {
        const char *name;
        size_t off;
    } opts[] = {
        {"target", offsetof(ssm_sa_opts, target)},
        {"document-name", offsetof(ssm_sa_opts, document)},
        {"parameters", offsetof(ssm_sa_opts, parameters)},
        {"reason", offsetof(ssm_sa_opts, reason)},
        {"region", offsetof(ssm_sa_opts, region)},
        {"profile", offsetof(ssm_sa_opts, profile)},
        {"endpoint-url", offsetof(ssm_sa_opts, endpoint)},
        {"listen-address", offsetof(ssm_sa_opts, listen_address)},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (strlen(opts[i].name) == n && !strncmp(opts[i].name, name, n))
            return (const char **)(void *)((char *)o + opts[i].off);
    return NULL;
}

int ssm_sa_parse(int argc, char **argv, ssm_sa_opts *o, char *err, size_t cap)
{
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help")) {
            o->help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, cap, "unexpected argument: %.100s", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        if (n == 7 && !strncmp(name, "forward", 7)) {
            const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            unsigned l, r;
            const char *h;
            if (!val || ssm_sa_forward_parse(val, &l, &r, &h) != 0) {
                snprintf(err, cap, "--forward: expected LOCAL:REMOTE[:HOST], got %.100s",
                         val ? val : "nothing");
                return -1;
            }
            if (o->nforward == SSM_SA_MAX_FORWARDS) {
                snprintf(err, cap, "at most %d --forward options", SSM_SA_MAX_FORWARDS);
                return -1;
            }
            o->forward[o->nforward++] = val;
            continue;
        }
        const char **dst = slot(o, name, n);
        if (!dst) {
            snprintf(err, cap, "unknown option: --%.*s", (int)(n > 100 ? 100 : n), name);
            return -1;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) {
            snprintf(err, cap, "option --%.*s needs a value", (int)n, name);
            return -1;
        }
        if (*dst) {
            snprintf(err, cap, "option --%.*s given twice", (int)n, name);
            return -1;
        }
        *dst = val;
    }
    if (o->help)
        return 0;
    if (!o->target || !*o->target) {
        snprintf(err, cap, "the following arguments are required: --target");
        return -1;
    }
    if (o->nforward && (o->document || o->parameters)) {
        snprintf(err, cap, "--forward cannot be combined with --document-name or --parameters");
        return -1;
    }
    if (o->listen_address && port_listen_parse_address(o->listen_address, NULL) != 0) {
        snprintf(err, cap, "--listen-address: not an IP address or localhost: %.100s",
                 o->listen_address);
        return -1;
    }
    return 0;
}

/* One shorthand scalar at *pp: "double quoted" (\\ and \" escapes),
 * 'single quoted', or bare up to a delimiter (',' and, in a list, ']').
 * Appends it to list and advances *pp. */
static int short_scalar(const char **pp, bool in_list, cJSON *list, char *err, size_t cap)
{
    const char *p = *pp;
    char *buf = malloc(strlen(p) + 1);
    size_t n = 0;
    if (!buf) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        while (*p && *p != q) {
            if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
                p++;
            buf[n++] = *p++;
        }
        if (*p != q) {
            free(buf);
            snprintf(err, cap, "--parameters: unterminated quoted value");
            return -1;
        }
        p++;
    } else {
        while (*p && *p != ',' && !(in_list && *p == ']'))
            buf[n++] = *p++;
    }
    buf[n] = '\0';
    cJSON *s = cJSON_CreateString(buf);
    free(buf);
    if (!s || !cJSON_AddItemToArray(list, s)) {
        cJSON_Delete(s);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    *pp = p;
    return 0;
}

/* One value: a scalar or [a,b,...]; always a list. */
static int short_value(const char **pp, cJSON *list, char *err, size_t cap)
{
    const char *p = *pp;
    if (*p != '[')
        return short_scalar(pp, false, list, err, cap);
    p++;
    while (*p && *p != ']') {
        while (*p == ' ')
            p++;
        if (short_scalar(&p, true, list, err, cap) != 0)
            return -1;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
        else if (*p != ']')
            break;
    }
    if (*p != ']') {
        snprintf(err, cap, "--parameters: unterminated [ list");
        return -1;
    }
    *pp = p + 1;
    return 0;
}

/* AWS CLI shorthand: k=v,k2=[a,b],k3="x,y" (the last duplicate wins). */
static cJSON *params_shorthand(const char *text, char *err, size_t cap)
{
    cJSON *o = cJSON_CreateObject();
    const char *p = text;
    if (!o) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    while (*p) {
        size_t k = strcspn(p, "=,");
        if (k == 0 || p[k] != '=') {
            snprintf(err, cap, "--parameters: expected key=value pairs separated by commas");
            cJSON_Delete(o);
            return NULL;
        }
        char *key = strndup(p, k);
        cJSON *list = cJSON_CreateArray();
        p += k + 1;
        if (!key || !list) {
            snprintf(err, cap, "out of memory");
        } else if (short_value(&p, list, err, cap) == 0) {
            if (*p && *p != ',') {
                snprintf(err, cap, "--parameters: expected ',' after the value of %.60s", key);
            } else {
                cJSON_DeleteItemFromObjectCaseSensitive(o, key);
                if (cJSON_AddItemToObject(o, key, list)) {
                    list = NULL;
                    free(key);
                    key = NULL;
                    p += *p == ',';
                    continue;
                }
                snprintf(err, cap, "out of memory");
            }
        }
        free(key);
        cJSON_Delete(list);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* JSON form: an object of strings or string lists; a string becomes a list. */
static cJSON *params_json(const char *text, char *err, size_t cap)
{
    cJSON *j = cJSON_ParseWithLengthOpts(text, strlen(text) + 1, NULL, 1);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(err, cap, "--parameters: not a JSON object");
        return NULL;
    }
    cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        if (cJSON_IsString(it)) {
            cJSON *list = cJSON_CreateArray(), *s = cJSON_CreateString(it->valuestring);
            /* The replacement takes over the member's key. */
            if (list && s && cJSON_AddItemToArray(list, s)) {
                list->string = it->string;
                it->string = NULL;
            }
            if (!list || !list->string || !cJSON_ReplaceItemViaPointer(j, it, list)) {
                if (!list || !list->child)
                    cJSON_Delete(s);
                cJSON_Delete(list);
                cJSON_Delete(j);
                snprintf(err, cap, "out of memory");
                return NULL;
            }
            it = list;
            continue;
        }
        bool ok = cJSON_IsArray(it);
        const cJSON *e;
        cJSON_ArrayForEach(e, it) ok = ok && cJSON_IsString(e);
        if (!ok) {
            snprintf(err, cap, "--parameters: value of \"%.60s\" is not a string or a list of strings",
                     it->string ? it->string : "");
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

char *ssm_sa_request_json(const ssm_sa_opts *o, char *err, size_t cap)
{
    cJSON *b = cJSON_CreateObject();
    bool ok = b && cJSON_AddStringToObject(b, "Target", o->target ? o->target : "");
    if (ok && o->document)
        ok = cJSON_AddStringToObject(b, "DocumentName", o->document) != NULL;
    if (ok && o->reason)
        ok = cJSON_AddStringToObject(b, "Reason", o->reason) != NULL;
    if (!ok) {
        snprintf(err, cap, "out of memory");
        cJSON_Delete(b);
        return NULL;
    }
    if (o->parameters) {
        const char *t = o->parameters + strspn(o->parameters, " \t\r\n");
        cJSON *p = *t == '{' ? params_json(t, err, cap) : params_shorthand(t, err, cap);
        if (!p || !cJSON_AddItemToObject(b, "Parameters", p)) {
            if (p) {
                cJSON_Delete(p);
                snprintf(err, cap, "out of memory");
            }
            cJSON_Delete(b);
            return NULL;
        }
    }
    char *out = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    if (!out)
        snprintf(err, cap, "out of memory");
    return out;
}

static int port_field(const char *p, size_t n, unsigned min, unsigned *out)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v < min || v > 65535)
        return -1;
    *out = v;
    return 0;
}

int ssm_sa_forward_parse(const char *spec, unsigned *local, unsigned *remote, const char **host)
{
    const char *c1 = strchr(spec, ':');
    if (!c1 || port_field(spec, (size_t)(c1 - spec), 0, local) != 0)
        return -1;
    const char *r = c1 + 1, *c2 = strchr(r, ':');
    size_t rn = c2 ? (size_t)(c2 - r) : strlen(r);
    if (port_field(r, rn, 1, remote) != 0)
        return -1;
    *host = NULL;
    if (c2) {
        if (!c2[1])
            return -1;
        *host = c2 + 1;
    }
    return 0;
}

static bool add_param(cJSON *params, const char *key, const char *value)
{
    cJSON *list = cJSON_AddArrayToObject(params, key);
    cJSON *v = list ? cJSON_CreateString(value) : NULL;
    if (!v)
        return false;
    return cJSON_AddItemToArray(list, v);
}

char *ssm_sa_forward_json(const ssm_sa_opts *o, unsigned i, char *err, size_t cap)
{
    unsigned local, remote;
    const char *host;
    if (i >= o->nforward || ssm_sa_forward_parse(o->forward[i], &local, &remote, &host) != 0) {
        snprintf(err, cap, "bad --forward");
        return NULL;
    }
    char lp[8], rp[8];
    snprintf(lp, sizeof lp, "%u", local);
    snprintf(rp, sizeof rp, "%u", remote);
    cJSON *b = cJSON_CreateObject();
    cJSON *params = NULL;
    bool ok = b && cJSON_AddStringToObject(b, "Target", o->target ? o->target : "") &&
              cJSON_AddStringToObject(b, "DocumentName",
                                      host ? "AWS-StartPortForwardingSessionToRemoteHost"
                                           : "AWS-StartPortForwardingSession");
    if (ok && o->reason)
        ok = cJSON_AddStringToObject(b, "Reason", o->reason) != NULL;
    if (ok)
        ok = (params = cJSON_AddObjectToObject(b, "Parameters")) != NULL;
    if (ok && host)
        ok = add_param(params, "host", host);
    ok = ok && add_param(params, "portNumber", rp) && add_param(params, "localPortNumber", lp);
    char *out = ok ? cJSON_PrintUnformatted(b) : NULL;
    cJSON_Delete(b);
    if (!out)
        snprintf(err, cap, "out of memory");
    return out;
}

static char *config_path(void)
{
    const char *e = getenv("AWS_CONFIG_FILE");
    if (e && *e)
        return strdup(e);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    size_t n = strlen(home) + sizeof "/.aws/config";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/.aws/config", home);
    return p;
}

char *ssm_sa_region(const char *region_opt, const char *profile_opt)
{
    if (region_opt && *region_opt)
        return strdup(region_opt);
    static const char *vars[] = {"AWS_REGION", "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return strdup(v);
    }
    const char *profile = profile_opt && *profile_opt ? profile_opt : getenv("AWS_PROFILE");
    if (!profile || !*profile)
        profile = getenv("AWS_DEFAULT_PROFILE");
    if (!profile || !*profile)
        profile = "default";
    char *path = config_path();
    aws_ini *ini = NULL;
    char *out = NULL, section[300];
    if (path && aws_ini_load_file(path, &ini) == 0 && ini &&
        aws_ini_config_profile_section(ini, profile, section, sizeof section)) {
        const char *r = aws_ini_get(ini, section, "region");
        if (r && *r)
            out = strdup(r);
    }
    aws_ini_free(ini);
    free(path);
    return out;
}
