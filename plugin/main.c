/* PLACEHOLDER main (written by the cli engineer so the binary builds and the
 * CLI contract can be tested). The session engineer replaces this file with
 * the real entry point that runs a session when ssm_cli_parse says START. */
#include "cli.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    ssm_cli_args args;
    int exit_code = 0;
    if (ssm_cli_parse(argc, argv, &args, &exit_code, stdout) == SSM_CLI_START) {
        fputs("Cannot perform start session: sessions are not implemented yet\n", stdout);
        ssm_cli_args_free(&args);
        return 0;
    }
    ssm_cli_args_free(&args);
    return exit_code;
}
