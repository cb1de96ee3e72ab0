/* UUID text <-> bytes in canonical RFC 4122 order (8-4-4-4-12 hex). */
#include "ssm_uuid.h"
#include "ssm_text.h"

#include <stddef.h>

/* In the text form a hyphen follows bytes 3, 5, 7 and 9. */
static int hyphen_after(int byte)
{
    return byte == 3 || byte == 5 || byte == 7 || byte == 9;
}

void ssm_uuid_format(const uint8_t id[16], char out[SSM_UUID_STRLEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        out[o++] = hex[id[i] >> 4];
        out[o++] = hex[id[i] & 15];
        if (hyphen_after(i))
            out[o++] = '-';
    }
    out[o] = '\0';
}


/* Only the canonical 36-character form (either case) is accepted: the
 * protocol never uses braces, URNs or the hyphen-less form. */
int ssm_uuid_parse(const char *s, uint8_t id[16])
{
    if (!s || !id)
        return -1;
    uint8_t tmp[16];
    size_t i = 0;
    for (int b = 0; b < 16; b++) {
        int hi = ssm_hexval(s[i]);
        int lo = hi < 0 ? -1 : ssm_hexval(s[i + 1]);
        if (lo < 0)
            return -1;
        tmp[b] = (uint8_t)(hi << 4 | lo);
        i += 2;
        if (hyphen_after(b)) {
            if (s[i] != '-')
                return -1;
            i++;
        }
    }
    if (s[i] != '\0')
        return -1;
    for (int b = 0; b < 16; b++)
        id[b] = tmp[b];
    return 0;
}

void ssm_uuid_v4_from_random(uint8_t id[16])
{
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* version 4 */
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* variant 10xx */
}
