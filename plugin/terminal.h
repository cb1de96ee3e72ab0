/* The controlling terminal's mode for shell sessions (PROTOCOL.md §10.1.1):
 * cbreak (ICANON and ECHO cleared, VMIN 1, VTIME 0, nothing else touched)
 * and a restore that also forces ECHO on. */
#ifndef SSM_TERMINAL_H
#define SSM_TERMINAL_H

#include <stdbool.h>

/* Saves stdin's termios and sets cbreak. No-op (returns false) when stdin is
 * not a terminal. Registers an atexit restore the first time. */
bool ssm_term_cbreak(void);
/* Restores the saved mode with ECHO forced on. Idempotent; async-signal-safe
 * (only tcsetattr on saved state). */
void ssm_term_restore(void);
/* Window size of stdout; false when stdout is not a terminal (the caller
 * uses 300x100). A terminal may report 0x0. */
bool ssm_term_size(unsigned *cols, unsigned *rows);

#endif
