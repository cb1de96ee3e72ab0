/* Standalone mode: `session-manager-plugin start-session --target i-...`
 * calls SSM StartSession itself, then runs the same session as the drop-in
 * path (docs/standalone.md). */
#ifndef SSM_STANDALONE_H
#define SSM_STANDALONE_H

#include <stdbool.h>
#include <stdio.h>

/* Exit codes, as the AWS CLI uses them. */
#define SSM_SA_EXIT_USAGE 252  /* bad or missing arguments */
#define SSM_SA_EXIT_CONFIG 253 /* no region, no credentials */
#define SSM_SA_EXIT_API 254    /* StartSession failed */

#define SSM_SA_MAX_FORWARDS 16

typedef struct ssm_sa_opts {
    /* Pointers into argv (never freed); NULL when not given. */
    const char *target, *document, *parameters, *reason;
    const char *region, *profile, *endpoint, *listen_address;
    /* --forward LOCAL:REMOTE[:HOST], repeatable: one port session each. */
    const char *forward[SSM_SA_MAX_FORWARDS];
    unsigned nforward;
    bool help;
} ssm_sa_opts;

/* One --forward spec: LOCAL (0-65535, 0 = any free port) ":" REMOTE
 * (1-65535), optionally ":" HOST (the rest, IPv6 literals included).
 * Returns 0 with host pointing into spec (NULL when absent), or -1. */
int ssm_sa_forward_parse(const char *spec, unsigned *local, unsigned *remote, const char **host);
/* The StartSession body of forward i: AWS-StartPortForwardingSession, or
 * ...ToRemoteHost when a HOST is given, with portNumber/localPortNumber
 * (and host) parameters. NULL with err on failure. */
char *ssm_sa_forward_json(const ssm_sa_opts *o, unsigned i, char *err, size_t cap);

/* True when argv selects standalone mode: argv[1] is "start-session" and at
 * least one more argument follows (argc >= 3). */
bool ssm_sa_selected(int argc, char **argv);
/* Parses argv[2..]: "--name value" or "--name=value". Returns 0, or -1 with
 * a one-line reason in err. --help alone is valid (o->help). */
int ssm_sa_parse(int argc, char **argv, ssm_sa_opts *o, char *err, size_t cap);
/* The StartSession request body (compact JSON, malloc'd) from the options:
 * Target, DocumentName, Reason, and Parameters from either JSON
 * ({"k":["v"]} or {"k":"v"}) or the CLI shorthand k=v,k2=[a,b]. NULL with
 * err on bad parameters. */
char *ssm_sa_request_json(const ssm_sa_opts *o, char *err, size_t cap);
/* Region: --region, AWS_REGION, AWS_DEFAULT_REGION, then the profile's
 * region in the config file (AWS_CONFIG_FILE or ~/.aws/config). Profile:
 * --profile, AWS_PROFILE, AWS_DEFAULT_PROFILE, "default". malloc'd, or NULL
 * when none is configured. */
char *ssm_sa_region(const char *region_opt, const char *profile_opt);
/* Prints the usage text. */
void ssm_sa_usage(FILE *out);
/* Runs standalone mode from start to end; returns the process exit code:
 * the remote command's when an ExitCode payload arrived, else 0 for a
 * session, or one of SSM_SA_EXIT_*. */
int ssm_sa_main(int argc, char **argv, FILE *out);

#endif
