/* session-manager-plugin: parse the AWS CLI's arguments, then run one
 * session on a libwebsockets loop. Every normal end exits 0 (PROTOCOL.md §1.5). */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "session.h"
#include "signals.h"
#include "stdio_fd.h"
#include "terminal.h"

int main(int argc, char **argv)
{
    ssm_signals_early(); /* before anything slow: SIGTERM must never kill us with 143 */
    ssm_log_init();
    ssm_cli_args args;
    int exit_code = 0;
    if (ssm_cli_parse(argc, argv, &args, &exit_code, stdout) != SSM_CLI_START) {
        fflush(stdout);
        return exit_code;
    }
    ssm_cli_wipe_argv(argc, argv);
    printf("\nStarting session with SessionId: %s\n", args.session_id);
    fflush(stdout); /* everything after this goes through the stdout ring */
    exit_code = ssm_session_run(&args);
    ssm_cli_args_free(&args);
    ssm_term_restore();
    ssm_stdio_restore();
    ssm_log_close();
    return exit_code;
}
