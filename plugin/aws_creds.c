/* Credentials values, timestamps, endpoints, and the chain order. */
#include "aws_creds.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void aws_errf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void aws_credentials_clear(aws_credentials *c)
{
    if (!c)
        return;
    wipe_free(c->access_key_id);
    wipe_free(c->secret_access_key);
    wipe_free(c->session_token);
    memset(c, 0, sizeof *c);
}

int aws_credentials_set(aws_credentials *c, const char *akid, const char *secret,
                        const char *token, time_t expiration, const char *source)
{
    aws_credentials n = {0};
    if (!akid || !*akid || !secret || !*secret)
        return -1;
    n.access_key_id = strdup(akid);
    n.secret_access_key = strdup(secret);
    n.session_token = token && *token ? strdup(token) : NULL;
    n.expiration = expiration;
    n.source = source ? source : "unknown";
    if (!n.access_key_id || !n.secret_access_key || (token && *token && !n.session_token)) {
        aws_credentials_clear(&n);
        return -1;
    }
    aws_credentials_clear(c);
    *c = n;
    return 0;
}

int aws_credentials_copy(aws_credentials *dst, const aws_credentials *src)
{
    return aws_credentials_set(dst, src->access_key_id, src->secret_access_key,
                               src->session_token, src->expiration, src->source);
}

bool aws_credentials_usable(const aws_credentials *c, time_t now)
{
    if (!c || !c->access_key_id || !c->secret_access_key)
        return false;
    return c->expiration == 0 || c->expiration - AWS_CREDS_REFRESH_WINDOW_S > now;
}

static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

time_t aws_parse_iso8601(const char *s)
{
    if (!s)
        return -1;
    const char *p = s;
    int Y = digits(&p, 4);
    if (Y < 0 || *p++ != '-')
        return -1;
    int M = digits(&p, 2);
    if (M < 1 || M > 12 || *p++ != '-')
        return -1;
    int D = digits(&p, 2);
    if (D < 1 || D > 31 || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    int h = digits(&p, 2);
    if (h < 0 || h > 23 || *p++ != ':')
        return -1;
    int m = digits(&p, 2);
    if (m < 0 || m > 59 || *p++ != ':')
        return -1;
    int sec = digits(&p, 2);
    if (sec < 0 || sec > 60)
        return -1;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh = digits(&p, 2);
        if (*p == ':')
            p++;
        int om = digits(&p, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return -1;
        off = sign * (oh * 3600L + om * 60L);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    /* Days from civil (proleptic Gregorian), no timezone database needed. */
    int y = Y - (M <= 2);
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long days = era * 146097 + doe - 719468;
    return (time_t)(days * 86400L + h * 3600L + m * 60L + sec - off);
}

static const char *partition_suffix(const char *region)
{
    if (!strncmp(region, "cn-", 3))
        return "amazonaws.com.cn";
    if (!strncmp(region, "us-isob-", 8))
        return "sc2s.sgov.gov";
    if (!strncmp(region, "us-iso-", 7))
        return "c2s.ic.gov";
    return "amazonaws.com";
}

char *aws_endpoint_for(const char *service_env, const char *prefix, const char *region)
{
    char name[64];
    snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", service_env ? service_env : "");
    const char *e = service_env ? getenv(name) : NULL;
    if (!e || !*e)
        e = getenv("AWS_ENDPOINT_URL");
    if (e && *e) {
        char *d = strdup(e);
        size_t l = d ? strlen(d) : 0;
        while (l > 8 && d[l - 1] == '/') /* "https://x/" -> "https://x" */
            d[--l] = '\0';
        return d;
    }
    if (!region || !*region)
        return NULL;
    const char *fips = getenv("AWS_USE_FIPS_ENDPOINT");
    bool use_fips = fips && !strcmp(fips, "true") && strcmp(prefix, "portal.sso") != 0;
    size_t n = strlen(prefix) + strlen(region) + 64;
    char *url = malloc(n);
    if (url)
        snprintf(url, n, "https://%s%s.%s.%s", prefix, use_fips ? "-fips" : "", region,
                 partition_suffix(region));
    return url;
}

/* ---- plans ---- */

void aws_creds_plan_free(aws_creds_plan *p)
{
    if (!p)
        return;
    aws_credentials_clear(&p->creds);
    if (p->source) {
        aws_creds_plan_free(p->source);
        free(p->source);
    }
    free(p->profile);
    free(p->region);
    free(p->role_arn);
    free(p->role_session_name);
    free(p->external_id);
    wipe_free(p->web_identity_token);
    wipe_free(p->sso_access_token);
    if (p->sso_refresh) {
        aws_sso_token_clear(p->sso_refresh);
        free(p->sso_refresh);
    }
    free(p->sso_account_id);
    free(p->sso_role_name);
    free(p->url);
    wipe_free(p->authorization);
    free(p->imds_endpoint);
    free(p->process_cmd);
    memset(p, 0, sizeof *p);
}

int aws_creds_from_env(aws_credentials *out)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID");
    if (!id || !*id)
        id = getenv("AWS_ACCESS_KEY");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (!secret || !*secret)
        secret = getenv("AWS_SECRET_KEY");
    if (!id || !*id || !secret || !*secret)
        return -1;
    const char *exp = getenv("AWS_CREDENTIAL_EXPIRATION");
    time_t e = exp && *exp ? aws_parse_iso8601(exp) : 0;
    return aws_credentials_set(out, id, secret, getenv("AWS_SESSION_TOKEN"), e > 0 ? e : 0,
                               "environment");
}


static const char *default_profile(void)
{
    const char *p = getenv("AWS_PROFILE");
    if (!p || !*p)
        p = getenv("AWS_DEFAULT_PROFILE");
    return p && *p ? p : "default";
}

enum aws_creds_step aws_creds_plan_resolve(const aws_creds_opts *o, time_t now,
                                           aws_creds_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    bool explicit_profile = o->profile && *o->profile;
    const char *profile = explicit_profile ? o->profile : default_profile();
    char why[sizeof plan->error] = "";

    if (explicit_profile) {
        /* An explicit --profile wins over environment keys (§14.2). */
        if (aws_creds_profile_plan(profile, o, now, plan, 0) == 0)
            return plan->step;
        snprintf(why, sizeof why, "%s", plan->error);
        aws_creds_plan_free(plan);
    } else {
        if (aws_creds_from_env(&plan->creds) == 0)
            return plan->step = AWS_STEP_READY;
        if (aws_creds_env_web_identity_plan(o, plan) == 0)
            return plan->step;
        aws_creds_plan_free(plan);
        if (aws_creds_profile_plan(profile, o, now, plan, 0) == 0)
            return plan->step;
        snprintf(why, sizeof why, "%s", plan->error);
        aws_creds_plan_free(plan);
        if (aws_creds_container_plan(plan) == 0)
            return plan->step;
        aws_creds_plan_free(plan);
        if (o->allow_imds && aws_creds_imds_plan(plan) == 0) {
            /* The driver falls back to the CLI export if IMDS fails. */
            char cmd[512];
            if (o->allow_cli_export && aws_creds_cli_export_cmd(profile, cmd, sizeof cmd) == 0) {
                plan->process_cmd = strdup(cmd);
                plan->process_timeout_s = o->process_timeout_s;
                plan->process_is_cli = true;
            }
            return plan->step;
        }
        aws_creds_plan_free(plan);
    }
    char cmd[512];
    if (o->allow_cli_export && o->defer_process &&
        aws_creds_cli_export_cmd(profile, cmd, sizeof cmd) == 0 &&
        (plan->process_cmd = strdup(cmd)) != NULL) {
        plan->process_timeout_s = o->process_timeout_s;
        plan->process_is_cli = true;
        plan->step = AWS_STEP_PROCESS;
        /* What the user is told if the CLI has nothing either. */
        aws_errf(plan->error, sizeof plan->error,
                 "no credentials found for profile '%.60s'%s%.150s", profile, *why ? ": " : "",
                 why);
        return plan->step;
    }
    if (o->allow_cli_export && !o->defer_process) {
        char err[128] = "";
        if (aws_creds_cli_export(profile, o, now, &plan->creds, err, sizeof err) == 0)
            return plan->step = AWS_STEP_READY;
    }
    plan->step = AWS_STEP_NONE;
    aws_errf(plan->error, sizeof plan->error, "no credentials found for profile '%.60s'%s%.150s",
             profile, *why ? ": " : "", why);
    return plan->step;
}
