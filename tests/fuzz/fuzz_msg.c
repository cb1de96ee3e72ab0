/* libFuzzer: ClientMessage decode must never crash or read out of bounds; a
 * frame it accepts must re-encode to a frame that decodes to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ssm_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ssm_msg a;
    if (ssm_msg_decode(data, size, &a) != SSM_MSG_OK)
        return 0;
    if (a.payload < data + 120 || a.payload + a.payload_len != data + size)
        abort();

    /* A decoded type is 1..32 NUL-free characters, so only size can stop
     * the re-encode. */
    static uint8_t out[1 << 20];
    long n = ssm_msg_encode(&a, out, sizeof out);
    if (n == SSM_MSG_ERR_BUFFER && a.payload_len + 120 > sizeof out)
        return 0;
    if (n != (long)(120 + a.payload_len))
        abort();

    ssm_msg b;
    int rc = ssm_msg_decode(out, (size_t)n, &b);
    /* Re-encoding normalises HeaderLength, PayloadLength and the digest;
     * type and CreatedDate already passed (or were exempt), so it must
     * decode again with identical fields. */
    if (rc != SSM_MSG_OK)
        abort();
    if (strcmp(a.type, b.type) != 0 || b.header_length != SSM_MSG_HEADER_LENGTH ||
        a.schema_version != b.schema_version || a.created_ms != b.created_ms || a.seq != b.seq ||
        a.flags != b.flags || memcmp(a.id, b.id, 16) != 0 || a.payload_type != b.payload_type ||
        b.payload_length != a.payload_len || b.payload_len != a.payload_len ||
        memcmp(a.payload, b.payload, a.payload_len) != 0)
        abort();
    return 0;
}
