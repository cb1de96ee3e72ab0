/* The remote command's exit code (ExitCode payload, "EXIT_CODE: <n>", sent
 * by NonInteractiveCommands sessions). The shell handler reports every
 * ExitCode payload here; only standalone mode uses the result (the drop-in
 * path always exits 0, PROTOCOL.md §1.5). */
#ifndef SSM_STANDALONE_EXIT_H
#define SSM_STANDALONE_EXIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Records the code from an ExitCode payload; text that is not
 * "EXIT_CODE: <0..255>" (spaces allowed around the number) is ignored. */
void ssm_exit_code_note(const uint8_t *p, size_t n);
/* True and *code when an ExitCode payload was recorded. */
bool ssm_exit_code_get(int *code);
/* Forgets any recorded code (tests, or before a new session). */
void ssm_exit_code_reset(void);
/* Parses "EXIT_CODE: <n>" into *code (0..255). Returns 0 or -1. */
int ssm_exit_code_parse(const uint8_t *p, size_t n, int *code);

#endif
