/* Dotted numeric version strings (PROTOCOL.md §8.8). */
#include "ssm_version.h"

#include <stddef.h>
#include <stdint.h>

#define MAX_COMPONENTS 16

/* Splits "1.2.3" into numbers. Each component must be 1..18 ASCII digits (no
 * sign, no spaces: stricter than strconv.Atoi, never ambiguous). Returns the
 * component count, or -1 if the string is not a dotted numeric version. */
static int parse(const char *s, uint64_t out[MAX_COMPONENTS])
{
    if (!s)
        return -1;
    int n = 0;
    for (;;) {
        uint64_t v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > 18)
                return -1;
            v = v * 10 + (uint64_t)(*s++ - '0');
        }
        if (digits == 0 || n == MAX_COMPONENTS)
            return -1;
        out[n++] = v;
        if (*s == '\0')
            return n;
        if (*s++ != '.')
            return -1;
    }
}

bool ssm_version_gt_strict(const char *v, const char *threshold)
{
    uint64_t a[MAX_COMPONENTS], b[MAX_COMPONENTS];
    int na = parse(v, a), nb = parse(threshold, b);
    if (na < 0 || nb < 0 || na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i])
            return a[i] > b[i];
    return false;
}

int ssm_version_cmp(const char *a, const char *b)
{
    uint64_t x[MAX_COMPONENTS], y[MAX_COMPONENTS];
    int nx = parse(a, x), ny = parse(b, y);
    if (nx < 0)
        nx = 0;
    if (ny < 0)
        ny = 0;
    for (int i = 0; i < nx || i < ny; i++) {
        uint64_t p = i < nx ? x[i] : 0, q = i < ny ? y[i] : 0;
        if (p != q)
            return p < q ? -1 : 1;
    }
    return 0;
}
