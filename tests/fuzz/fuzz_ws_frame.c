/* libFuzzer: the server-frame parser must never crash or read out of bounds,
 * whatever the bytes and however they are split; fed whole or in two parts
 * it must report the same messages (or fail the same way). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ssm_ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct digest {
    uint64_t h; /* FNV-1a over (opcode, length, bytes) of every event */
    size_t events;
} digest;

static int on_frame(void *user, unsigned op, const uint8_t *p, size_t n)
{
    digest *d = user;
    uint64_t h = d->h ^ op;
    h = (h ^ n) * 1099511628211ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    d->h = h;
    d->events++;
    return 0;
}

static int run(const uint8_t *data, size_t size, size_t split, digest *d)
{
    static uint8_t msg[4096];
    ssm_ws_rx r;
    ssm_ws_rx_init(&r, msg, sizeof msg);
    d->h = 14695981039346656037ull;
    d->events = 0;
    int rc = ssm_ws_rx_feed(&r, data, split, on_frame, d, NULL);
    if (rc == SSM_WS_OK)
        rc = ssm_ws_rx_feed(&r, data + split, size - split, on_frame, d, NULL);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the split point; a copy on the heap makes any
     * read past the end visible to ASan. */
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, n);
    size_t split = n ? data[0] % (n + 1) : 0;
    digest a, b;
    int ra = run(buf, n, n, &a);
    int rb = run(buf, n, split, &b);
    if (ra != rb || a.h != b.h || a.events != b.events)
        abort();
    free(buf);
    return 0;
}
