/* ExitCode payload bookkeeping for standalone mode (see standalone_exit.h).
 * One session per process, so one static slot is enough. */
#include "standalone_exit.h"

#include <string.h>

static bool have_code;
static int last_code;

int ssm_exit_code_parse(const uint8_t *p, size_t n, int *code)
{
    static const char prefix[] = "EXIT_CODE:";
    size_t i = sizeof prefix - 1;
    if (!p || n <= i || memcmp(p, prefix, i) != 0)
        return -1;
    while (i < n && p[i] == ' ')
        i++;
    int v = 0, digits = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        v = v * 10 + (p[i] - '0');
        if (++digits > 3 || v > 255) /* POSIX exit statuses are 0..255 */
            return -1;
    }
    while (i < n && (p[i] == ' ' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (!digits || i != n)
        return -1;
    *code = v;
    return 0;
}

void ssm_exit_code_note(const uint8_t *p, size_t n)
{
    int c;
    if (ssm_exit_code_parse(p, n, &c) == 0) {
        last_code = c;
        have_code = true;
    }
}

bool ssm_exit_code_get(int *code)
{
    if (have_code && code)
        *code = last_code;
    return have_code;
}

void ssm_exit_code_reset(void)
{
    have_code = false;
    last_code = 0;
}
