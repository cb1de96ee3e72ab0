/* Profile resolution from ~/.aws/credentials and ~/.aws/config: static keys,
 * role_arn (source_profile / credential_source / web_identity_token_file),
 * SSO (sso_session and legacy), credential_process. */
#include "aws_creds.h"
#include "aws_ini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define MAX_ROLE_CHAIN 5
#define MAX_TOKEN_FILE (64u * 1024u)

static char *home_path(const char *env, const char *rel)
{
    const char *e = getenv(env);
    if (e && *e)
        return strdup(e);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    size_t n = strlen(home) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", home, rel);
    return p;
}

typedef struct profile_files {
    aws_ini *creds, *config;
    char csec[256], cfgsec[256];
    bool in_creds, in_config;
} profile_files;

static void files_load(profile_files *f, const char *profile)
{
    memset(f, 0, sizeof *f);
    char *cp = home_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    char *fp = home_path("AWS_CONFIG_FILE", ".aws/config");
    if (cp)
        aws_ini_load_file(cp, &f->creds);
    if (fp)
        aws_ini_load_file(fp, &f->config);
    free(cp);
    free(fp);
    snprintf(f->csec, sizeof f->csec, "%s", profile);
    f->in_creds = aws_ini_has_section(f->creds, f->csec);
    f->in_config = aws_ini_config_profile_section(f->config, profile, f->cfgsec, sizeof f->cfgsec);
}

static void files_free(profile_files *f)
{
    aws_ini_free(f->creds);
    aws_ini_free(f->config);
}

/* The credentials file wins over the config file, as in the SDKs. */
static const char *pget(const profile_files *f, const char *key)
{
    const char *v = f->in_creds ? aws_ini_get(f->creds, f->csec, key) : NULL;
    if (!v && f->in_config)
        v = aws_ini_get(f->config, f->cfgsec, key);
    return v && *v ? v : NULL;
}

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

static char *read_small_file(const char *path, char *err, size_t errcap)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errcap, "cannot read %s", path);
        return NULL;
    }
    char *buf = malloc(MAX_TOKEN_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_TOKEN_FILE + 1, fp) : 0;
    fclose(fp);
    if (!buf || n > MAX_TOKEN_FILE || n == 0) {
        snprintf(err, errcap, "%s is empty or too large", path);
        if (buf)
            OPENSSL_cleanse(buf, n);
        free(buf);
        return NULL;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    return buf;
}

static int static_keys(const profile_files *f, const char *src, aws_creds_plan *plan)
{
    const char *id = pget(f, "aws_access_key_id"), *sec = pget(f, "aws_secret_access_key");
    if (!id || !sec)
        return -1;
    if (aws_credentials_set(&plan->creds, id, sec, pget(f, "aws_session_token"), 0, src) != 0)
        return -1;
    plan->step = AWS_STEP_READY;
    return 0;
}

static void role_fields(const profile_files *f, const char *profile, const aws_creds_opts *o,
                        time_t now, aws_creds_plan *plan)
{
    plan->role_arn = dup_or_null(pget(f, "role_arn"));
    const char *name = pget(f, "role_session_name");
    char def[64];
    snprintf(def, sizeof def, "session-manager-plugin-%lld", (long long)now);
    plan->role_session_name = strdup(name ? name : def);
    plan->external_id = dup_or_null(pget(f, "external_id"));
    const char *d = pget(f, "duration_seconds");
    plan->duration_s = d ? atoi(d) : 0;
    const char *r = pget(f, "region");
    plan->region = dup_or_null(r ? r : o->region);
    plan->profile = strdup(profile);
}

static int sso_plan(const profile_files *f, time_t now, aws_creds_plan *plan)
{
    const char *session = pget(f, "sso_session");
    const char *start_url = pget(f, "sso_start_url"), *region = pget(f, "sso_region");
    const char *cache_key = start_url;
    if (session) {
        char sec[300];
        snprintf(sec, sizeof sec, "sso-session %s", session);
        const char *su = aws_ini_get(f->config, sec, "sso_start_url");
        const char *sr = aws_ini_get(f->config, sec, "sso_region");
        if (!aws_ini_has_section(f->config, sec) || !su || !sr) {
            aws_errf(plan->error, sizeof plan->error,
                     "sso-session '%s' is missing or lacks sso_start_url/sso_region", session);
            return -1;
        }
        region = sr;
        cache_key = session; /* sso-session tokens are cached under the session name */
    }
    const char *account = pget(f, "sso_account_id"), *role = pget(f, "sso_role_name");
    if (!cache_key || !region || !account || !role) {
        aws_errf(plan->error, sizeof plan->error, "incomplete SSO configuration");
        return -1;
    }
    char err[200] = "";
    aws_sso_token *tok = calloc(1, sizeof *tok);
    int trc = tok ? aws_sso_token_load(cache_key, now, tok, err, sizeof err) : -1;
    if (trc < 0) {
        aws_errf(plan->error, sizeof plan->error, "%s; run 'aws sso login'", err);
        aws_sso_token_clear(tok);
        free(tok);
        return -1;
    }
    if (trc == 0) { /* valid: no refresh needed */
        plan->sso_access_token = strdup(tok->access_token);
        aws_sso_token_clear(tok);
        free(tok);
    } else {
        plan->sso_refresh = tok; /* the driver refreshes it over SSO-OIDC first */
    }
    plan->sso_account_id = strdup(account);
    plan->sso_role_name = strdup(role);
    plan->region = strdup(region);
    plan->step = AWS_STEP_SSO;
    return 0;
}

int aws_creds_profile_plan(const char *profile, const aws_creds_opts *o, time_t now,
                           aws_creds_plan *plan, int depth)
{
    memset(plan, 0, sizeof *plan);
    if (depth > MAX_ROLE_CHAIN) {
        aws_errf(plan->error, sizeof plan->error, "role chain too long at profile '%s'", profile);
        return -1;
    }
    profile_files f;
    files_load(&f, profile);
    int rc = -1;
    if (!f.in_creds && !f.in_config) {
        aws_errf(plan->error, sizeof plan->error, "profile '%s' not found", profile);
        goto out;
    }
    const char *role = pget(&f, "role_arn"), *source = pget(&f, "source_profile");
    const char *csrc = pget(&f, "credential_source"), *wif = pget(&f, "web_identity_token_file");
    if (role && source) {
        aws_creds_plan *sp = calloc(1, sizeof *sp);
        if (!sp)
            goto out;
        int src_rc = !strcmp(source, profile) ? static_keys(&f, "shared-credentials-file", sp)
                                               : aws_creds_profile_plan(source, o, now, sp, depth + 1);
        if (src_rc != 0) {
            if (!strncmp(sp->error, "role chain", 10) || !strncmp(sp->error, "source_profile", 14))
                memcpy(plan->error, sp->error, sizeof plan->error); /* innermost cause */
            else
                aws_errf(plan->error, sizeof plan->error, "source_profile '%.60s': %.180s", source,
                         *sp->error ? sp->error : "no static credentials");
            aws_creds_plan_free(sp);
            free(sp);
            goto out;
        }
        plan->source = sp;
        role_fields(&f, profile, o, now, plan);
        plan->step = AWS_STEP_ASSUME_ROLE;
        rc = 0;
    } else if (static_keys(&f, f.in_creds ? "shared-credentials-file" : "shared-config-file",
                           plan) == 0) {
        rc = 0;
    } else if (role && csrc) {
        aws_creds_plan *sp = calloc(1, sizeof *sp);
        if (!sp)
            goto out;
        int src_rc = -1;
        if (!strcmp(csrc, "Environment")) {
            src_rc = aws_creds_from_env(&sp->creds);
            sp->step = AWS_STEP_READY;
        } else if (!strcmp(csrc, "Ec2InstanceMetadata")) {
            src_rc = aws_creds_imds_plan(sp);
        } else if (!strcmp(csrc, "EcsContainer")) {
            src_rc = aws_creds_container_plan(sp);
        }
        if (src_rc != 0) {
            aws_errf(plan->error, sizeof plan->error, "credential_source '%s' has no credentials",
                     csrc);
            aws_creds_plan_free(sp);
            free(sp);
            goto out;
        }
        plan->source = sp;
        role_fields(&f, profile, o, now, plan);
        plan->step = AWS_STEP_ASSUME_ROLE;
        rc = 0;
    } else if (role && wif) {
        plan->web_identity_token = read_small_file(wif, plan->error, sizeof plan->error);
        if (!plan->web_identity_token)
            goto out;
        role_fields(&f, profile, o, now, plan);
        plan->step = AWS_STEP_WEB_IDENTITY;
        rc = 0;
    } else if (pget(&f, "sso_session") || pget(&f, "sso_start_url")) {
        rc = sso_plan(&f, now, plan);
    } else if (pget(&f, "credential_process") && o->defer_process) {
        plan->process_cmd = strdup(pget(&f, "credential_process"));
        plan->process_timeout_s = o->process_timeout_s;
        plan->step = AWS_STEP_PROCESS;
        rc = plan->process_cmd ? 0 : -1;
    } else if (pget(&f, "credential_process")) {
        char err[200] = "";
        rc = aws_creds_process_run(pget(&f, "credential_process"), o->process_timeout_s, now,
                                   &plan->creds, err, sizeof err);
        if (rc == 0)
            plan->step = AWS_STEP_READY;
        else
            aws_errf(plan->error, sizeof plan->error, "credential_process: %s", err);
    } else if (role) {
        aws_errf(plan->error, sizeof plan->error,
                 "profile '%s' has role_arn but no source_profile or credential_source", profile);
    } else {
        aws_errf(plan->error, sizeof plan->error, "profile '%s' has no credentials", profile);
    }
out:
    files_free(&f);
    return rc;
}

/* AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN [+ AWS_ROLE_SESSION_NAME]. */
int aws_creds_env_web_identity_plan(const aws_creds_opts *o, aws_creds_plan *plan)
{
    const char *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = getenv("AWS_ROLE_ARN");
    if (!file || !*file || !role || !*role)
        return -1;
    plan->web_identity_token = read_small_file(file, plan->error, sizeof plan->error);
    if (!plan->web_identity_token)
        return -1;
    const char *name = getenv("AWS_ROLE_SESSION_NAME");
    plan->role_arn = strdup(role);
    plan->role_session_name = strdup(name && *name ? name : "session-manager-plugin");
    const char *r = getenv("AWS_REGION");
    plan->region = dup_or_null(r && *r ? r : o->region);
    plan->step = AWS_STEP_WEB_IDENTITY;
    return 0;
}

/* Last resort: let an installed AWS CLI resolve the profile for us. */
int aws_creds_cli_export_cmd(const char *profile, char *cmd, size_t cap)
{
    /* The profile goes in single quotes; refuse names that could break out. */
    for (const char *p = profile; *p; p++)
        if (*p == '\'' || *p == '\n')
            return -1;
    int n = snprintf(cmd, cap,
                     "command -v aws >/dev/null 2>&1 && exec aws configure export-credentials "
                     "--profile '%s' --format process 2>/dev/null",
                     profile);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int aws_creds_cli_export(const char *profile, const aws_creds_opts *o, time_t now,
                         aws_credentials *out, char *err, size_t errcap)
{
    char cmd[512];
    if (aws_creds_cli_export_cmd(profile, cmd, sizeof cmd) != 0) {
        snprintf(err, errcap, "unsupported profile name");
        return -1;
    }
    int rc = aws_creds_process_run(cmd, o->process_timeout_s, now, out, err, errcap);
    if (rc == 0)
        out->source = "aws configure export-credentials";
    return rc;
}
