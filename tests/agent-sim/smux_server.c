/* smux v1 server for the simulator. */
#include "smux_server.h"

#include <string.h>

void smuxs_init(smuxs *m, const smuxs_ops *ops, void *user)
{
    memset(m, 0, sizeof(*m));
    m->ops = *ops;
    m->user = user;
}

void smuxs_free(smuxs *m) { pq_free(&m->in); }

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int smuxs_feed(smuxs *m, const uint8_t *p, size_t n)
{
    if (m->broken)
        return -1;
    if (pq_append(&m->in, p, n) != 0)
        return -1;
    for (;;) {
        const uint8_t *f = m->in.p + m->in.off;
        size_t have = m->in.len;
        if (have < 8)
            return 0;
        if (f[0] != 1) {
            m->broken = 1;
            return -1;
        }
        size_t body = (size_t)f[2] | (size_t)f[3] << 8;
        uint32_t sid = le32(f + 4);
        uint8_t cmd = f[1];
        if (cmd == SMUXS_UPD)
            body = 8;
        else if (cmd > SMUXS_UPD) {
            m->broken = 1;
            return -1;
        } else if (cmd != SMUXS_PSH)
            body = 0; /* smux ignores Length on control frames */
        if (have < 8 + body)
            return 0;
        m->frames_in++;
        /* Copy out before the callback: it may append to other queues. */
        switch (cmd) {
        case SMUXS_SYN:
            pq_consume(&m->in, 8);
            m->ops.on_syn(m->user, sid);
            break;
        case SMUXS_FIN:
            pq_consume(&m->in, 8);
            m->ops.on_fin(m->user, sid);
            break;
        case SMUXS_PSH:
            if (body)
                m->ops.on_data(m->user, sid, f + 8, body);
            pq_consume(&m->in, 8 + body);
            break;
        case SMUXS_NOP:
            m->nops_in++;
            pq_consume(&m->in, 8);
            break;
        default:
            pq_consume(&m->in, 8 + body);
            break;
        }
    }
}

int smuxs_put(pq *q, uint8_t cmd, uint32_t sid, const uint8_t *data, size_t n)
{
    do {
        size_t k = n > SMUXS_MAX_FRAME ? SMUXS_MAX_FRAME : n;
        uint8_t h[8] = {1, cmd, (uint8_t)k, (uint8_t)(k >> 8),
                        (uint8_t)sid, (uint8_t)(sid >> 8), (uint8_t)(sid >> 16), (uint8_t)(sid >> 24)};
        if (pq_append(q, h, 8) != 0 || (k && pq_append(q, data, k) != 0))
            return -1;
        data += k;
        n -= k;
    } while (n > 0);
    return 0;
}
