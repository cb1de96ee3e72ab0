/* AWS credentials and the provider chain (PROTOCOL.md §14.2, docs/credentials.md).
 *
 * Resolution is split in two so that nothing here blocks the event loop:
 * aws_creds_plan_resolve() walks env and the shared files synchronously and
 * either returns credentials or a plan naming what is still needed (STS, SSO
 * portal, ECS, IMDS, or a command: credential_process or the CLI export).
 * Each provider has pure request-building and response-parsing helpers
 * below; the asynchronous driver (aws_creds_fetch.c) runs them over aws_http,
 * commands included (aws_proc). */
#ifndef SSM_AWS_CREDS_H
#define SSM_AWS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct aws_credentials {
    char *access_key_id, *secret_access_key, *session_token; /* malloc'd; token may be NULL */
    time_t expiration;  /* 0: does not expire */
    const char *source; /* static description: "environment", "shared-credentials-file", ... */
} aws_credentials;

/* Refresh this long before expiry (the SDKs use a similar window). */
#define AWS_CREDS_REFRESH_WINDOW_S 300

int aws_credentials_set(aws_credentials *c, const char *akid, const char *secret,
                        const char *token, time_t expiration, const char *source);
int aws_credentials_copy(aws_credentials *dst, const aws_credentials *src);
/* Wipes (OPENSSL_cleanse) and frees; leaves *c zeroed. */
void aws_credentials_clear(aws_credentials *c);
/* Has keys and does not expire within AWS_CREDS_REFRESH_WINDOW_S of now. */
bool aws_credentials_usable(const aws_credentials *c, time_t now);

/* "2024-01-02T03:04:05Z", fractions and "+hh:mm" offsets accepted. -1 on error. */
time_t aws_parse_iso8601(const char *s);

/* ---- the plan ---- */

enum aws_creds_step {
    AWS_STEP_NONE = 0,      /* no source had credentials (error says why) */
    AWS_STEP_READY,         /* creds holds the result */
    AWS_STEP_ASSUME_ROLE,   /* STS AssumeRole signed with the source plan's result */
    AWS_STEP_WEB_IDENTITY,  /* STS AssumeRoleWithWebIdentity (unsigned) */
    AWS_STEP_SSO,           /* SSO portal GetRoleCredentials with a cached token */
    AWS_STEP_ECS,           /* container credentials endpoint */
    AWS_STEP_IMDS,          /* EC2 instance metadata, v2 token first */
    AWS_STEP_PROCESS,       /* run process_cmd (credential_process or the CLI export) */
};

typedef struct aws_creds_plan {
    enum aws_creds_step step;
    aws_credentials creds;          /* READY */
    struct aws_creds_plan *source;  /* ASSUME_ROLE: where the signing creds come from */
    char *profile;                  /* the profile this plan came from, or NULL */
    char *region;                   /* STS/SSO region */
    /* STS */
    char *role_arn, *role_session_name, *external_id, *web_identity_token;
    int duration_s;                 /* 0: service default */
    /* SSO */
    char *sso_access_token, *sso_account_id, *sso_role_name;
    struct aws_sso_token *sso_refresh; /* set: refresh the expired token first */
    /* ECS */
    char *url, *authorization;      /* ECS full URL and Authorization header value */
    /* IMDS */
    char *imds_endpoint;            /* base, e.g. "http://169.254.169.254" */
    /* PROCESS: the command; IMDS: the CLI export to try when IMDS fails */
    char *process_cmd;
    unsigned process_timeout_s;     /* 0 = 60 */
    bool process_is_cli;            /* the CLI export: its failure keeps `error` */
    char error[256];                /* NONE: human-readable reason, never secrets;
                                     * CLI export: the reason to report if it fails */
} aws_creds_plan;

typedef struct aws_creds_opts {
    const char *profile;  /* argv[4]; NULL/"" -> not explicit */
    const char *region;   /* argv[2], default for STS/SSO when the profile has none */
    bool allow_cli_export; /* last resort: aws configure export-credentials */
    bool allow_imds;
    unsigned process_timeout_s; /* credential_process run limit; 0 = 60 */
    /* true: credential_process and the CLI export become AWS_STEP_PROCESS
     * plans for aws_creds_fetch (run asynchronously on the loop); false: they
     * run here and block (tools and tests off the loop). */
    bool defer_process;
} aws_creds_opts;

/* Walks the chain (order in docs/credentials.md). Returns plan->step; the
 * plan must be released with aws_creds_plan_free(). */
enum aws_creds_step aws_creds_plan_resolve(const aws_creds_opts *o, time_t now,
                                           aws_creds_plan *plan);
void aws_creds_plan_free(aws_creds_plan *plan);

/* ---- individual providers (exposed for tests and the async driver) ---- */

/* Environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN].
 * Returns 0 when found. */
int aws_creds_from_env(aws_credentials *out);

/* Shared files for one profile (not following role/SSO/process): static
 * keys from the credentials file, then the config file. 0 when found. */
int aws_creds_profile_plan(const char *profile, const aws_creds_opts *o, time_t now,
                           aws_creds_plan *plan, int depth);

/* Plans for the env web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN),
 * container (AWS_CONTAINER_CREDENTIALS_*) and IMDS providers; 0 when the
 * provider applies. */
int aws_creds_env_web_identity_plan(const aws_creds_opts *o, aws_creds_plan *plan);
int aws_creds_container_plan(aws_creds_plan *plan);
int aws_creds_imds_plan(aws_creds_plan *plan);
/* `aws configure export-credentials --profile P --format process`. */
/* The /bin/sh command for it; -1 when the profile name cannot be quoted. */
int aws_creds_cli_export_cmd(const char *profile, char *cmd, size_t cap);
int aws_creds_cli_export(const char *profile, const aws_creds_opts *o, time_t now,
                         aws_credentials *out, char *err, size_t errcap);

/* credential_process: runs cmd with /bin/sh -c, stdout capped at 64 KiB,
 * killed after timeout_s. Returns 0 with out set, -1 with err set. */
int aws_creds_process_run(const char *cmd, unsigned timeout_s, time_t now,
                          aws_credentials *out, char *err, size_t errcap);
/* The same, asynchronously on the lws loop: the child's stdout pipe is
 * watched by lws, the child reaped without blocking (WNOHANG) after EOF, and
 * killed at the deadline. The callback runs exactly once, later, from the
 * loop (never inside aws_proc_start): c on success (source set to `source`),
 * else NULL with err. The aws_proc frees itself after its callback;
 * aws_proc_free() before that cancels it (the child is killed, no callback).
 * NULL when nothing could be allocated. */
struct aws_http;
typedef struct aws_proc aws_proc;
typedef void (*aws_proc_cb)(void *user, const aws_credentials *c, const char *err);
aws_proc *aws_proc_start(struct aws_http *http, const char *cmd, unsigned timeout_s,
                         const char *source, aws_proc_cb cb, void *user);
void aws_proc_free(aws_proc *p);
/* Parses the credential_process JSON (Version 1). */
int aws_creds_process_parse(const char *json, size_t n, time_t now, aws_credentials *out,
                            char *err, size_t errcap);

/* STS query API (form body) and its XML responses. */
char *aws_sts_assume_role_body(const aws_creds_plan *p);          /* malloc'd */
char *aws_sts_web_identity_body(const aws_creds_plan *p);         /* malloc'd */
int aws_sts_parse_response(const char *xml, size_t n, aws_credentials *out, char *err,
                           size_t errcap);

/* SSO token cache: ~/.aws/sso/cache/<sha1 hex of the sso-session name or
 * the legacy start URL>.json. */
typedef struct aws_sso_token {
    char *path;
    char *access_token, *refresh_token, *client_id, *client_secret;
    time_t expires_at, registration_expires_at;
} aws_sso_token;
/* 0: a valid access token; 1: expired but refreshable (refresh token and a
 * live client registration); -1: missing/unusable (err says why). */
int aws_sso_token_load(const char *cache_key, time_t now, aws_sso_token *t, char *err,
                       size_t errcap);
void aws_sso_token_clear(aws_sso_token *t);
/* The malloc'd access token when the cache holds a valid one, else NULL. */
char *aws_sso_cached_token(const char *cache_key, time_t now, char *err, size_t errcap);
/* SSO-OIDC CreateToken (refresh_token grant): request JSON, and the response
 * applied to t and written back to the cache file (other fields kept). */
char *aws_sso_oidc_refresh_body(const aws_sso_token *t);
int aws_sso_oidc_apply(const char *json, size_t n, time_t now, aws_sso_token *t, char *err,
                       size_t errcap);
int aws_sso_parse_role_credentials(const char *json, size_t n, aws_credentials *out,
                                   char *err, size_t errcap);

/* ECS and IMDS JSON ({"AccessKeyId","SecretAccessKey","Token","Expiration"}). */
int aws_creds_parse_container_json(const char *json, size_t n, const char *source,
                                   aws_credentials *out, char *err, size_t errcap);

/* Runs a plan's network steps asynchronously on the lws loop (aws_creds_fetch.c).
 * The callback runs exactly once; c is NULL on failure (err says why). When
 * the plan needs no network it runs inside aws_creds_fetch_start(), which
 * then returns NULL. NULL without a callback means out of memory. A running
 * fetch frees itself after its callback; aws_creds_fetch_free() before that
 * cancels it. The plan must outlive the fetch. */
typedef struct aws_creds_fetch aws_creds_fetch;
typedef void (*aws_creds_fetch_cb)(void *user, const aws_credentials *c, const char *err);
aws_creds_fetch *aws_creds_fetch_start(struct aws_http *http, aws_creds_plan *plan,
                                       const char *region, aws_creds_fetch_cb cb, void *user);
void aws_creds_fetch_free(aws_creds_fetch *f);

/* snprintf into a fixed error buffer, truncating quietly. */
void aws_errf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Service endpoints, honouring AWS_ENDPOINT_URL_<SERVICE> then AWS_ENDPOINT_URL
 * (service_env is e.g. "STS", "SSO", "KMS", "SSM"), else
 * https://<prefix>.<region>.<partition suffix>. malloc'd. */
char *aws_endpoint_for(const char *service_env, const char *prefix, const char *region);

#endif
