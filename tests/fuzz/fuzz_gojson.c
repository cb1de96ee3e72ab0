/* libFuzzer: the Go json.Unmarshal emulator (gojson_err.h) must take any
 * bytes, fit its texts in SSM_GOJSON_MSG_MAX, and hand back only spans that
 * are string literals inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gojson_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so ASan sees any read past the end */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    for (int sdk = SSM_GOJSON_SDK_V1; sdk <= SSM_GOJSON_SDK_V2; sdk++) {
        char msg[SSM_GOJSON_MSG_MAX];
        ssm_gojson_result res;
        int rc =
            ssm_gojson_start_session(text, size, (enum ssm_gojson_sdk)sdk, &res, msg, sizeof msg);
        if (rc != 0) {
            if (rc != -1 || strlen(msg) + 1 >= sizeof msg || msg[0] == '\0')
                abort(); /* a text that does not fit would be cut short */
            continue;
        }
        for (int f = 0; f < SSM_GOJSON_NFIELDS; f++) {
            ssm_gojson_span s = res.field[f];
            if (s.len == 0)
                continue;
            if (s.len < 2 || s.off + s.len > size || text[s.off] != '"' ||
                text[s.off + s.len - 1] != '"')
                abort();
            char *out = malloc(3 * s.len);
            if (!out)
                break;
            if (ssm_gojson_unquote(text + s.off, s.len, out) > 3 * s.len)
                abort();
            free(out);
        }
    }
    free(text);
    return 0;
}
