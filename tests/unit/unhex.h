/* Hex decoding for the golden tests that read the recorded fixture frames.
 * Include after <cmocka.h>. */
#ifndef UNIT_UNHEX_H
#define UNIT_UNHEX_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ssm_text.h"

/* Returns a malloc'd exact-size buffer (so ASan sees overreads). */
static inline uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    uint8_t *out = malloc(n / 2 ? n / 2 : 1);
    assert_non_null(out);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = ssm_hexval(hex[2 * i]), lo = ssm_hexval(hex[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

#endif
