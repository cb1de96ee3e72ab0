/* libFuzzer: acknowledge body parsing must reject garbage cleanly, and an
 * accepted sequence number must survive a body round trip. */
#include <stdint.h>
#include <stdlib.h>

#include "ssm_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t seq;
    if (ssm_ack_parse(data, size, &seq) != 0)
        return 0;
    static const uint8_t id[16] = {0};
    char body[256];
    int n = ssm_ack_body(body, sizeof body, SSM_MT_OUTPUT, id, seq);
    int64_t again;
    if (n <= 0 || ssm_ack_parse((const uint8_t *)body, (size_t)n, &again) != 0 || again != seq)
        abort();
    return 0;
}
