/* libFuzzer target: arbitrary agent bytes into the smux client, cut into
 * payloads at fuzzer-chosen points, interleaved with local stream actions. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ssm_smux.h"

typedef struct ctx {
    ssm_smux *m;
    uint8_t sink[4096];
} ctx;

static void on_readable(void *user, uint32_t sid, void *stream_user)
{
    ctx *c = user;
    (void)stream_user;
    /* Drain half the time; close at EOF: exercises re-entrant close. */
    if (sid & 2)
        ssm_smux_read(c->m, sid, c->sink, sizeof(c->sink));
    if (ssm_smux_eof(c->m, sid))
        ssm_smux_close(c->m, sid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ctx c;
    ssm_smux_config cfg;
    ssm_smux_config_default(&cfg);
    cfg.stream_rx_cap = SSM_SMUX_MIN_FEED;
    cfg.max_streams = 8;
    ssm_smux_callbacks cb = {.on_readable = on_readable};
    c.m = ssm_smux_new(&cfg, &cb, &c, 0);
    if (!c.m)
        return 0;
    uint32_t sids[8];
    size_t nsids = 0;
    for (int i = 0; i < 4; i++)
        if (ssm_smux_open(c.m, NULL, &sids[nsids]) == 0)
            nsids++;
    uint64_t now = 0;
    size_t i = 0;
    while (i < size) {
        /* control byte: chunk length and a side action */
        uint8_t ctl = data[i++];
        size_t len = (size_t)(ctl & 0x3f) * 23u + 1u;
        if (len > size - i)
            len = size - i;
        int rc = ssm_smux_feed(c.m, data + i, len, now);
        /* Invariants: errors are sticky, buffers stay within their caps. */
        if (rc < 0 && rc != SSM_SMUX_E2BIG && !ssm_smux_dead(c.m))
            abort();
        ssm_smux_stats st;
        ssm_smux_get_stats(c.m, &st);
        if (st.rx_buffered > cfg.session_rx_cap || st.open_streams > cfg.max_streams)
            abort();
        for (size_t k = 0; k < nsids; k++)
            if (ssm_smux_readable(c.m, sids[k]) > cfg.stream_rx_cap)
                abort();
        if (rc == SSM_SMUX_NOT_READY) {
            for (size_t k = 0; k < nsids; k++)
                while (ssm_smux_read(c.m, sids[k], c.sink, sizeof(c.sink)) > 0) {
                }
        }
        i += len;
        switch (ctl >> 6) {
        case 0:
            if (nsids < 8 && ssm_smux_open(c.m, NULL, &sids[nsids]) == 0)
                nsids++;
            break;
        case 1:
            if (nsids)
                ssm_smux_write(c.m, sids[ctl % nsids], data, len);
            break;
        case 2:
            if (nsids) {
                ssm_smux_close(c.m, sids[nsids - 1]);
                nsids--;
            }
            break;
        default:
            now += 7000;
            ssm_smux_tick(c.m, now);
            break;
        }
        while (ssm_smux_out_read(c.m, c.sink, sizeof(c.sink)) > 0) {
        }
    }
    ssm_smux_free(c.m);
    return 0;
}
