/* RFC 6455 client framing and server-frame parsing (see ssm_ws_frame.h). */
#include "ssm_ws_frame.h"

#include <string.h>

/* ---- masking ---------------------------------------------------------------- */

static uint64_t key64(const uint8_t mask[4])
{
    uint8_t k[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    uint64_t w;
    memcpy(&w, k, sizeof w);
    return w;
}

/* dst = src ^ key; 8 bytes a step (memcpy keeps unaligned access defined).
 * dst == src is allowed. */
static void mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4])
{
    uint64_t k = key64(mask);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, sizeof w);
        w ^= k;
        memcpy(dst + i, &w, sizeof w);
    }
    for (; i < n; i++) /* i is a multiple of 4 here plus the tail index */
        dst[i] = src[i] ^ mask[i & 3];
}

void ssm_ws_mask(uint8_t *buf, size_t n, const uint8_t mask[4])
{
    mask_copy(buf, buf, n, mask);
}

/* ---- client frames out -------------------------------------------------------- */

static size_t hdr_len_for(size_t n)
{
    return (n < 126 ? 2u : n <= 0xffff ? 4u : 10u) + 4u;
}

size_t ssm_ws_client_frame_len(size_t n)
{
    return hdr_len_for(n) + n;
}

size_t ssm_ws_client_frame(uint8_t *out, size_t cap, unsigned opcode, const uint8_t *p,
                           size_t n, const uint8_t mask[4])
{
    if ((opcode & 0x8) && n > SSM_WS_MAX_CTRL)
        return 0;
    size_t h = hdr_len_for(n);
    if (cap < h || cap - h < n)
        return 0;
    out[0] = (uint8_t)(0x80u | (opcode & 0x0fu)); /* FIN, no RSV bits */
    if (n < 126) {
        out[1] = (uint8_t)(0x80u | n);
    } else if (n <= 0xffff) {
        out[1] = 0x80u | 126u;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
    } else {
        out[1] = 0x80u | 127u;
        uint64_t l = (uint64_t)n;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(l >> (56 - 8 * i));
    }
    memcpy(out + h - 4, mask, 4);
    mask_copy(out + h, p, n, mask);
    return h + n;
}

/* ---- server frames in ------------------------------------------------------------ */

void ssm_ws_rx_init(ssm_ws_rx *r, uint8_t *msg, size_t msg_cap)
{
    memset(r, 0, sizeof *r);
    r->msg = msg;
    r->msg_cap = msg_cap;
}

/* Header length once its first two bytes are known. */
static size_t full_hdr_len(const uint8_t *h)
{
    unsigned l7 = h[1] & 0x7fu;
    return 2u + (l7 == 126 ? 2u : l7 == 127 ? 8u : 0u) + ((h[1] & 0x80u) ? 4u : 0u);
}

/* Validates the complete header in r->hdr and enters the payload state. */
static int begin_frame(ssm_ws_rx *r)
{
    const uint8_t *h = r->hdr;
    if (h[0] & 0x70u)
        return SSM_WS_EPROTO; /* RSV bits: no extension was negotiated */
    if (h[1] & 0x80u)
        return SSM_WS_EPROTO; /* servers never mask (RFC 6455 §5.1) */
    unsigned op = h[0] & 0x0fu;
    bool fin = (h[0] & 0x80u) != 0;
    unsigned l7 = h[1] & 0x7fu;
    uint64_t len = l7;
    if (l7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
    } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        if (len >> 63)
            return SSM_WS_EPROTO;
    }
    switch (op) {
    case SSM_WS_OP_CONT:
        if (!r->in_msg)
            return SSM_WS_EPROTO;
        break;
    case SSM_WS_OP_TEXT:
    case SSM_WS_OP_BINARY:
        if (r->in_msg)
            return SSM_WS_EPROTO; /* a new message inside a fragmented one */
        break;
    case SSM_WS_OP_CLOSE:
    case SSM_WS_OP_PING:
    case SSM_WS_OP_PONG:
        if (!fin || len > SSM_WS_MAX_CTRL)
            return SSM_WS_EPROTO;
        r->ctrl_len = 0;
        break;
    default:
        return SSM_WS_EPROTO;
    }
    r->op = op;
    r->fin = fin;
    r->left = len;
    r->in_payload = true;
    r->hdr_len = 0;
    return SSM_WS_OK;
}

int ssm_ws_rx_feed(ssm_ws_rx *r, const uint8_t *in, size_t n, ssm_ws_on_frame on_frame,
                   void *user, size_t *used)
{
    size_t pos = 0;
    int rc = SSM_WS_OK;
    for (;;) {
        if (!r->in_payload) {
            if (pos == n)
                break;
            /* Gather the header: 2 bytes, then the rest they announce. */
            size_t need = r->hdr_len < 2 ? 2 : full_hdr_len(r->hdr);
            while (r->hdr_len < need && pos < n) {
                r->hdr[r->hdr_len++] = in[pos++];
                if (r->hdr_len == 2)
                    need = full_hdr_len(r->hdr);
            }
            if (r->hdr_len < need)
                break;
            if ((rc = begin_frame(r)) != SSM_WS_OK)
                break;
            if (r->op == SSM_WS_OP_TEXT || r->op == SSM_WS_OP_BINARY) {
                /* Fast path: a whole unfragmented message already here. */
                if (r->fin && r->left <= n - pos && r->left <= r->msg_cap) {
                    size_t len = (size_t)r->left;
                    r->in_payload = false;
                    r->left = 0;
                    pos += len;
                    if (on_frame(user, r->op, in + pos - len, len)) {
                        rc = SSM_WS_STOPPED;
                        break;
                    }
                    continue;
                }
                r->in_msg = true;
                r->msg_op = r->op;
                r->msg_len = 0;
                r->msg_overflow = false;
            }
        }
        size_t take = r->left < n - pos ? (size_t)r->left : n - pos;
        if (r->op & 0x8u) {
            memcpy(r->ctrl + r->ctrl_len, in + pos, take); /* left <= 125 - ctrl_len */
            r->ctrl_len += take;
        } else if (!r->msg_overflow) {
            if (take > r->msg_cap - r->msg_len || r->left > r->msg_cap - r->msg_len) {
                r->msg_overflow = true; /* skip the rest of this message */
            } else {
                memcpy(r->msg + r->msg_len, in + pos, take);
                r->msg_len += take;
            }
        }
        pos += take;
        r->left -= take;
        if (r->left)
            break; /* input exhausted mid-payload */
        r->in_payload = false;
        int stop = 0;
        if (r->op & 0x8u) {
            stop = on_frame(user, r->op, r->ctrl, r->ctrl_len);
        } else if (r->fin) {
            r->in_msg = false;
            if (r->msg_overflow)
                r->dropped++;
            else
                stop = on_frame(user, r->msg_op, r->msg, r->msg_len);
            r->msg_len = 0;
            r->msg_overflow = false;
        }
        if (stop) {
            rc = SSM_WS_STOPPED;
            break;
        }
    }
    if (used)
        *used = pos;
    return rc;
}
