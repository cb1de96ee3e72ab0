/* The `~` escape filter of shell sessions (PROTOCOL-NEWEST.md §4.1), as a
 * pure function over stdin chunks. It knows nothing of terminals or sockets:
 * the caller prints help/notices and ends the session. */
#ifndef SSM_ESCAPE_H
#define SSM_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ssm_escape {
    bool enabled; /* false after ~- */
    bool newline; /* last forwarded byte was CR or LF */
    bool escaped; /* a '~' after a newline is held back */
} ssm_escape;

enum ssm_escape_action {
    SSM_ESC_NONE = 0,      /* input exhausted */
    SSM_ESC_HELP = 1,      /* ~? : print ssm_escape_help_text */
    SSM_ESC_TERMINATE = 2, /* ~. : TerminateSession, restore, exit 0 */
    SSM_ESC_DISABLED = 3,  /* ~- : print ssm_escape_disabled_text */
};

extern const char ssm_escape_help_text[];     /* CRLF line ends */
extern const char ssm_escape_disabled_text[]; /* CRLF line ends */

void ssm_escape_init(ssm_escape *e);

/* Filters in[0..n) and appends the bytes to forward at out[*out_len]. The
 * caller reserves n + 1 bytes past *out_len (a '~' held from an earlier chunk
 * can come out together with the current byte). Stops right after a byte
 * that triggers an action and returns it; *consumed says how much of in was
 * processed. Call again with the rest until it returns SSM_ESC_NONE. */
int ssm_escape_filter(ssm_escape *e, const uint8_t *in, size_t n, uint8_t *out, size_t *out_len,
                      size_t *consumed);

#endif
