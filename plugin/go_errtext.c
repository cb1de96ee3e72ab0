/* See go_errtext.h. */
#include "go_errtext.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char *ssm_go_errno_text(int e, char *buf, size_t cap)
{
    if (!cap)
        return buf;
    snprintf(buf, cap, "%s", strerror(e));
    buf[0] = (char)tolower((unsigned char)buf[0]);
    return buf;
}
