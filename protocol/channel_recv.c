/* Incoming side of the data channel (PROTOCOL.md §7.2 with its recommended
 * deviations): in-order delivery, the reorder pool, duplicate re-acks and the
 * bounded queue of acknowledgements waiting to be pulled.
 *
 * Rule: a message is acknowledged only once it was delivered (on_payload
 * returned OK) or copied into the reorder pool.
 *
 * NOT_READY for an in-order message: we KEEP it, unacknowledged, in its
 * reorder slot (when it fits) and deliver and acknowledge it on
 * ssm_chan_resume_delivery() or when the agent retransmits it. This saves a
 * retransmission round trip compared with dropping it; leaving it unacked
 * keeps the agent retransmitting, so nothing is lost if we are never resumed. */
#include <string.h>

#include "channel_internal.h"
#include "ssm_uuid.h"

/* ---- acknowledgement queue ---- */

void chan_ack_push(ssm_chan *c, int64_t seq, const uint8_t id[16])
{
    if (c->ack_count == CHAN_ACK_SLOTS) {
        /* Drop the oldest: the agent retransmits it and we re-ack then. */
        c->ack_head = (c->ack_head + 1) % CHAN_ACK_SLOTS;
        c->ack_count--;
        chan_log(c, 2, "channel: ack queue full, dropped the oldest ack");
    }
    struct chan_ack_rec *r = &c->acks[(c->ack_head + c->ack_count) % CHAN_ACK_SLOTS];
    r->seq = seq;
    memcpy(r->id, id, 16);
    c->ack_count++;
}

size_t chan_ack_pull(ssm_chan *c, uint64_t now_ms, uint8_t *out, size_t cap)
{
    const struct chan_ack_rec *r = &c->acks[c->ack_head];
    char body[CHAN_ACK_BODY_MAX];
    int blen = ssm_ack_body(body, sizeof body, SSM_MT_OUTPUT, r->id, r->seq);
    if (blen < 0) {
        /* Cannot happen with our bounded body; drop rather than wedge. */
        c->ack_head = (c->ack_head + 1) % CHAN_ACK_SLOTS;
        c->ack_count--;
        return 0;
    }
    if (cap < ssm_msg_encoded_size((size_t)blen))
        return 0;
    ssm_msg m;
    memset(&m, 0, sizeof m);
    memcpy(m.type, SSM_MT_ACK, sizeof SSM_MT_ACK);
    m.schema_version = 1;
    m.created_ms = chan_created_ms(c, now_ms);
    m.seq = 0;
    m.flags = SSM_MSGFLAG_ACK;
    chan_new_msg_id(c, m.id);
    m.payload_type = SSM_PT_NONE;
    m.payload = (const uint8_t *)body;
    m.payload_len = (size_t)blen;
    long n = ssm_msg_encode(&m, out, cap);
    if (n < 0)
        return 0;
    c->ack_head = (c->ack_head + 1) % CHAN_ACK_SLOTS;
    c->ack_count--;
    c->st.acks_sent++;
    return (size_t)n;
}

/* ---- reorder pool ---- */

static struct chan_rx_slot *slot_for(const ssm_chan *c, int64_t seq)
{
    return &c->rx[(uint64_t)seq % c->cfg.reorder_slots];
}

static uint8_t *slot_data(const ssm_chan *c, const struct chan_rx_slot *s)
{
    return c->rx_data + (size_t)(s - c->rx) * c->cfg.max_payload;
}

/* Slot s holding seq: by construction only sequence numbers in
 * [expected, expected + reorder_slots) are stored, so they never collide. */
static struct chan_rx_slot *held(const ssm_chan *c, int64_t seq)
{
    if (!c->cfg.reorder_slots)
        return NULL;
    struct chan_rx_slot *s = slot_for(c, seq);
    return s->used && s->seq == seq ? s : NULL;
}

static void store(ssm_chan *c, const ssm_msg *m, bool acked)
{
    struct chan_rx_slot *s = slot_for(c, m->seq);
    s->seq = m->seq;
    s->payload_type = m->payload_type;
    s->len = (uint32_t)m->payload_len;
    memcpy(s->id, m->id, 16);
    s->acked = acked;
    s->used = true;
    if (m->payload_len)
        memcpy(slot_data(c, s), m->payload, m->payload_len);
    c->rx_buffered++;
}

static void advance_expected(ssm_chan *c)
{
    c->st.recv_msgs++;
    if (c->expected == INT64_MAX)
        c->expected_done = true;
    else
        c->expected++;
}

static bool deliver(ssm_chan *c, uint32_t type, const uint8_t *p, size_t n)
{
    c->delivering = true;
    int rc = c->cb.on_payload(c->user, type, p, n);
    c->delivering = false;
    return rc == SSM_DELIVER_OK;
}

void chan_rx_drain(ssm_chan *c)
{
    if (c->delivering)
        return; /* called from on_payload: the running loop carries on */
    struct chan_rx_slot *s;
    while (!c->expected_done && (s = held(c, c->expected)) != NULL) {
        if (!deliver(c, s->payload_type, slot_data(c, s), s->len))
            break;
        if (!s->acked)
            chan_ack_push(c, s->seq, s->id);
        s->used = false;
        c->rx_buffered--;
        advance_expected(c);
    }
}

void chan_rx_stream_data(ssm_chan *c, const ssm_msg *m, uint64_t now_ms)
{
    (void)now_ms;
    if (c->expected_done || m->seq < c->expected) {
        /* Already delivered: the agent lost our ack. Re-ack, never re-deliver. */
        c->st.recv_dup++;
        chan_ack_push(c, m->seq, m->id);
        return;
    }
    if (m->seq == c->expected) {
        struct chan_rx_slot *s = held(c, m->seq);
        if (s) {
            /* We hold it (refused by the handler earlier): the retransmission
             * is a cue to retry delivery of the stored copy. */
            c->st.recv_dup++;
            if (s->acked)
                chan_ack_push(c, m->seq, m->id);
            chan_rx_drain(c);
            return;
        }
        if (c->delivering)
            return; /* re-entrant receive: contract violation, drop unacked */
        if (deliver(c, m->payload_type, m->payload, m->payload_len)) {
            chan_ack_push(c, m->seq, m->id);
            advance_expected(c);
            chan_rx_drain(c);
        } else if (c->cfg.reorder_slots && m->payload_len <= c->cfg.max_payload) {
            store(c, m, false);
        } else {
            c->st.recv_dropped++;
        }
        return;
    }
    /* Early: m->seq > expected, so the unsigned difference is exact. */
    uint64_t dist = (uint64_t)m->seq - (uint64_t)c->expected;
    if (dist >= c->cfg.reorder_slots || m->payload_len > c->cfg.max_payload) {
        c->st.recv_dropped++;
        return;
    }
    struct chan_rx_slot *s = held(c, m->seq);
    if (s) {
        c->st.recv_dup++;
        if (s->acked)
            chan_ack_push(c, m->seq, m->id);
        return;
    }
    store(c, m, true);
    c->st.recv_early++;
    chan_ack_push(c, m->seq, m->id);
}
