/* System error texts as the official (Go) plugin prints them: Go's syscall
 * table has glibc's strerror wording with a lowercase first letter
 * ("permission denied", "input/output error"). */
#ifndef SSM_GO_ERRTEXT_H
#define SSM_GO_ERRTEXT_H

#include <stddef.h>

/* Writes the text of errno value e into buf and returns buf. */
const char *ssm_go_errno_text(int e, char *buf, size_t cap);

#endif
