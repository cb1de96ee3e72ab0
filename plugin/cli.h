/* The command-line contract of session-manager-plugin (PROTOCOL.md §1). */
#ifndef SSM_CLI_H
#define SSM_CLI_H

#include <stdbool.h>
#include <stdio.h>

typedef struct ssm_cli_args {
    char *session_id, *token, *stream_url; /* StartSession response */
    char *region, *operation, *profile, *endpoint;
    char *target;    /* argv[5] Target, "" when absent or not a string */
    bool legacy_cli; /* argc == 4: KMS encryption is refused */
} ssm_cli_args;

enum ssm_cli_action {
    SSM_CLI_EXIT = 0,  /* everything was printed; exit with *exit_code */
    SSM_CLI_START = 1, /* run a session with *out */
};

/* Parses argv exactly as the official plugin does, printing the contract's
 * texts to out. Reads and unsets AWS_SSM_START_SESSION_RESPONSE* variables. */
int ssm_cli_parse(int argc, char **argv, ssm_cli_args *args, int *exit_code, FILE *out);
/* After a successful parse: wipes a StartSession response given in argv[1]
 * (token included) where it lies, so /proc/PID/cmdline, readable by every
 * local user, no longer shows it. argv must be the process's own. */
void ssm_cli_wipe_argv(int argc, char **argv);
/* Frees and wipes (the token) everything in args. */
void ssm_cli_args_free(ssm_cli_args *args);

#endif
