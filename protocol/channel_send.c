/* Outgoing side of the data channel: the send window (a byte ring of
 * serialized frames plus a ring of entry records indexed by sequence
 * number), acknowledgement matching, the RTT/RTO estimator, pacing,
 * retransmission and the pull scheduler. */
#include <string.h>

#include "channel_internal.h"
#include "ssm_uuid.h"

/* ---- small helpers ---- */

uint64_t chan_created_ms(const ssm_chan *c, uint64_t now_ms)
{
    /* Saturating now + offset; CreatedDate 0 makes the agent drop the frame. */
    int64_t off = c->clock_offset_ms;
    uint64_t v;
    if (off >= 0)
        v = now_ms > UINT64_MAX - (uint64_t)off ? UINT64_MAX : now_ms + (uint64_t)off;
    else {
        uint64_t sub = (uint64_t)(-(off + 1)) + 1u;
        v = now_ms > sub ? now_ms - sub : 0;
    }
    return v ? v : 1;
}

static uint64_t elapsed_ms(uint64_t now_ms, uint64_t then_ms)
{
    return now_ms > then_ms ? now_ms - then_ms : 0;
}

static int64_t ceil_ms(double x)
{
    if (x <= 0)
        return 0;
    int64_t i = (int64_t)x;
    return (double)i < x ? i + 1 : i;
}

static uint32_t tx_index(const ssm_chan *c, uint32_t k)
{
    return (uint32_t)(((uint64_t)c->tx_head + k) % c->cfg.send_window_msgs);
}

static struct chan_tx_entry *tx_at(const ssm_chan *c, uint32_t k)
{
    return &c->tx[tx_index(c, k)];
}

static void ring_write(ssm_chan *c, size_t off, const uint8_t *p, size_t n)
{
    size_t cap = c->cfg.send_window_bytes;
    size_t first = cap - off < n ? cap - off : n;
    memcpy(c->ring + off, p, first);
    memcpy(c->ring, p + first, n - first);
}

static void ring_read(const ssm_chan *c, size_t off, uint8_t *out, size_t n)
{
    size_t cap = c->cfg.send_window_bytes;
    size_t first = cap - off < n ? cap - off : n;
    memcpy(out, c->ring + off, first);
    memcpy(out + first, c->ring, n - first);
}

/* ---- sent-order list: entries by last transmission, oldest first ---- */

static void list_remove(ssm_chan *c, uint32_t i)
{
    struct chan_tx_entry *e = &c->tx[i];
    if (!e->in_list)
        return;
    if (e->prev != CHAN_NIL)
        c->tx[e->prev].next = e->next;
    else
        c->sent_first = e->next;
    if (e->next != CHAN_NIL)
        c->tx[e->next].prev = e->prev;
    else
        c->sent_last = e->prev;
    e->prev = e->next = CHAN_NIL;
    e->in_list = false;
}

/* now_ms only grows, so appending keeps the list sorted by last_send and the
 * first element is always the next retransmission due. */
static void list_push_back(ssm_chan *c, uint32_t i)
{
    struct chan_tx_entry *e = &c->tx[i];
    list_remove(c, i);
    e->prev = c->sent_last;
    e->next = CHAN_NIL;
    if (c->sent_last != CHAN_NIL)
        c->tx[c->sent_last].next = i;
    else
        c->sent_first = i;
    c->sent_last = i;
    e->in_list = true;
}

void chan_tx_reset_connection(ssm_chan *c)
{
    for (uint32_t k = 0; k < c->tx_count; k++) {
        struct chan_tx_entry *e = tx_at(c, k);
        e->in_list = false;
        e->prev = e->next = CHAN_NIL;
    }
    c->sent_first = c->sent_last = CHAN_NIL;
    c->tx_cursor = 0;
}

/* ---- sending ---- */

static uint32_t next_fresh(const ssm_chan *c);

uint32_t ssm_chan_unsent(const ssm_chan *c)
{
    return c ? c->tx_count - next_fresh(c) : 0;
}

size_t ssm_chan_send_space(const ssm_chan *c)
{
    if (!c || c->next_seq == INT64_MAX || c->tx_count >= c->cfg.send_window_msgs)
        return 0;
    size_t free_bytes = c->cfg.send_window_bytes - c->ring_used;
    if (free_bytes <= SSM_MSG_PAYLOAD_OFFSET)
        return 0;
    size_t room = free_bytes - SSM_MSG_PAYLOAD_OFFSET;
    return room < c->cfg.max_payload ? room : c->cfg.max_payload;
}

int ssm_chan_send(ssm_chan *c, uint32_t payload_type, const uint8_t *p, size_t n, uint64_t now_ms)
{
    if (!c || (!p && n))
        return SSM_CHAN_EINVAL;
    if (n > c->cfg.max_payload)
        return SSM_CHAN_E2BIG;
    size_t space = ssm_chan_send_space(c);
    if (space == 0 || n > space) {
        c->space_starved = true;
        return SSM_CHAN_EFULL;
    }

    ssm_msg m;
    memset(&m, 0, sizeof m);
    memcpy(m.type, SSM_MT_INPUT, sizeof SSM_MT_INPUT);
    m.schema_version = 1;
    m.created_ms = chan_created_ms(c, now_ms);
    m.seq = c->next_seq;
    m.flags = SSM_MSGFLAG_DATA;
    chan_new_msg_id(c, m.id);
    m.payload_type = payload_type;
    m.payload = p;
    m.payload_len = n;
    long len = ssm_msg_encode(&m, c->scratch, ssm_chan_max_frame(c));
    if (len < 0)
        return SSM_CHAN_EINVAL;

    size_t off = (c->ring_head + c->ring_used) % c->cfg.send_window_bytes;
    ring_write(c, off, c->scratch, (size_t)len);
    struct chan_tx_entry *e = tx_at(c, c->tx_count);
    memset(e, 0, sizeof *e);
    e->off = off;
    e->len = (uint32_t)len;
    e->prev = e->next = CHAN_NIL;
    c->tx_count++;
    c->ring_used += (size_t)len;
    c->next_seq++;
    c->unacked_msgs++;
    c->unacked_bytes += (size_t)len;
    if (ssm_chan_send_space(c) < c->cfg.max_payload)
        c->space_starved = true;
    return SSM_CHAN_OK;
}

/* ---- acknowledgements ---- */

static void rtt_sample(ssm_chan *c, double r)
{
    double dev = c->rtt_ms - r;
    if (dev < 0)
        dev = -dev;
    /* RTTVAR first: it uses the previous RTT (§7.4). */
    c->rttvar_ms = 0.75 * c->rttvar_ms + 0.25 * dev;
    c->rtt_ms = 0.875 * c->rtt_ms + 0.125 * r;
    double var4 = 4.0 * c->rttvar_ms;
    c->rto_ms = c->rtt_ms + (var4 > CHAN_CLOCK_G_MS ? var4 : CHAN_CLOCK_G_MS);
    if (c->rto_ms > CHAN_RTO_MAX_MS)
        c->rto_ms = CHAN_RTO_MAX_MS;
}

static void pop_acked_head(ssm_chan *c)
{
    while (c->tx_count && c->tx[c->tx_head].acked) {
        struct chan_tx_entry *e = &c->tx[c->tx_head];
        c->ring_head = (c->ring_head + e->len) % c->cfg.send_window_bytes;
        c->ring_used -= e->len;
        c->tx_head = (c->tx_head + 1) % c->cfg.send_window_msgs;
        c->tx_count--;
        if (c->tx_cursor)
            c->tx_cursor--;
    }
    if (c->ring_used == 0)
        c->ring_head = 0;
}

void chan_tx_handle_ack(ssm_chan *c, int64_t seq, uint64_t now_ms)
{
    int64_t head_seq = c->next_seq - (int64_t)c->tx_count;
    if (seq < head_seq || seq >= c->next_seq)
        return; /* stale, duplicate or never sent: harmless */
    uint32_t k = (uint32_t)((uint64_t)seq - (uint64_t)head_seq);
    uint32_t i = tx_index(c, k);
    struct chan_tx_entry *e = &c->tx[i];
    /* An ack for a frame we never handed out is a lie; ignore it. */
    if (e->acked || !e->transmitted)
        return;
    /* Karn: a retransmitted message's ack is ambiguous, so no sample. */
    if (e->resends == 0)
        rtt_sample(c, (double)elapsed_ms(now_ms, e->last_send));
    e->acked = true;
    list_remove(c, i);
    c->unacked_msgs--;
    c->unacked_bytes -= e->len;
    pop_acked_head(c);
    if (c->space_starved && ssm_chan_send_space(c) >= c->cfg.max_payload) {
        c->space_starved = false;
        if (c->cb.on_send_space)
            c->cb.on_send_space(c->user);
    }
}

/* ---- pacing (first transmissions only) ---- */

static uint64_t pace_tokens(const ssm_chan *c, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)c->cfg.pace_burst * 1000u;
    if (!c->pace_started)
        return c->pace_milli;
    uint64_t rate = c->cfg.pace_msgs_per_sec; /* milli-tokens per ms */
    uint64_t el = elapsed_ms(now_ms, c->pace_last_ms);
    uint64_t room = cap > c->pace_milli ? cap - c->pace_milli : 0;
    if (el > room / rate)
        return cap;
    return c->pace_milli + el * rate;
}

static void pace_consume(ssm_chan *c, uint64_t now_ms)
{
    c->pace_milli = pace_tokens(c, now_ms) - 1000u;
    if (!c->pace_started || now_ms > c->pace_last_ms)
        c->pace_last_ms = now_ms;
    c->pace_started = true;
}

/* ---- scheduling ---- */

/* First entry at or after the cursor that still needs sending on this
 * connection (acked ones are skipped); tx_count when none. */
static uint32_t next_fresh(const ssm_chan *c)
{
    uint32_t k = c->tx_cursor;
    while (k < c->tx_count && tx_at(c, k)->acked)
        k++;
    return k;
}

static bool fresh_allowed(const ssm_chan *c, uint32_t k, uint64_t now_ms)
{
    if (k >= c->tx_count)
        return false;
    /* Replays after a reconnect were paced on their first transmission. */
    if (tx_at(c, k)->transmitted || c->cfg.pace_msgs_per_sec == 0)
        return true;
    return pace_tokens(c, now_ms) >= 1000u;
}

/* Milliseconds until entry i is due for retransmission (<= 0: due now).
 * The head-of-line message waits one RTO; any other one waits RTO doubled
 * per earlier resend (capped), so long-lost tails back off. */
static int64_t retx_wait(const ssm_chan *c, uint32_t i, uint64_t now_ms)
{
    const struct chan_tx_entry *e = &c->tx[i];
    double rto = c->rto_ms;
    if (i != c->tx_head) {
        uint32_t shift =
            e->resends < CHAN_RETX_BACKOFF_MAX_SHIFT ? e->resends : CHAN_RETX_BACKOFF_MAX_SHIFT;
        rto *= (double)(1u << shift);
    }
    double left = rto - (double)elapsed_ms(now_ms, e->last_send);
    return left <= 0 ? 0 : ceil_ms(left);
}

/* The head-of-line (oldest unacked) message if it was sent on this
 * connection; CHAN_NIL otherwise. */
static uint32_t retx_head(const ssm_chan *c)
{
    if (!c->tx_count || !c->tx[c->tx_head].in_list)
        return CHAN_NIL;
    return c->tx_head;
}

/* The other message due soonest (the least recently sent among equals);
 * CHAN_NIL when none. The list is ordered by last_send and no entry is due
 * before last_send + RTO, so the walk stops once that bound passes the best
 * candidate: a few steps unless many messages are backing off. */
static uint32_t retx_other(const ssm_chan *c, uint64_t now_ms, int64_t *wait)
{
    uint32_t best = CHAN_NIL;
    int64_t best_wait = 0;
    for (uint32_t i = c->sent_first; i != CHAN_NIL; i = c->tx[i].next) {
        if (best != CHAN_NIL) {
            double lower = c->rto_ms - (double)elapsed_ms(now_ms, c->tx[i].last_send);
            if (lower >= (double)best_wait)
                break;
        }
        if (i == c->tx_head)
            continue;
        int64_t w = retx_wait(c, i, now_ms);
        if (best == CHAN_NIL || w < best_wait) {
            best = i;
            best_wait = w;
        }
    }
    *wait = best_wait;
    return best;
}

static bool retx_new_round(const ssm_chan *c, uint64_t now_ms)
{
    return !c->retx_round_valid || elapsed_ms(now_ms, c->retx_round_start) >= CHAN_RETX_ROUND_MS;
}

static bool retx_budget(const ssm_chan *c, uint64_t now_ms)
{
    return retx_new_round(c, now_ms) || c->retx_round_count < CHAN_RETX_BURST;
}

/* Next retransmission to hand out now; CHAN_NIL when none may go yet. */
static uint32_t retx_next(const ssm_chan *c, uint64_t now_ms)
{
    uint32_t h = retx_head(c);
    if (h != CHAN_NIL && retx_wait(c, h, now_ms) == 0)
        return h;
    int64_t w;
    uint32_t o = retx_other(c, now_ms, &w);
    if (o != CHAN_NIL && w == 0 && retx_budget(c, now_ms))
        return o;
    return CHAN_NIL;
}

bool ssm_chan_want_write(const ssm_chan *c, uint64_t now_ms)
{
    if (!c || !c->up)
        return false;
    if (c->ack_count)
        return true;
    if (c->paused)
        return false;
    if (fresh_allowed(c, next_fresh(c), now_ms))
        return true;
    return retx_next(c, now_ms) != CHAN_NIL;
}

static size_t emit(ssm_chan *c, uint32_t i, uint64_t now_ms, uint8_t *out, size_t cap)
{
    struct chan_tx_entry *e = &c->tx[i];
    if (cap < e->len)
        return 0;
    ring_read(c, e->off, out, e->len);
    e->last_send = now_ms;
    list_push_back(c, i);
    return e->len;
}

size_t ssm_chan_pull(ssm_chan *c, uint64_t now_ms, uint8_t *out, size_t cap)
{
    if (!c || !out || !c->up)
        return 0;
    if (c->ack_count)
        return chan_ack_pull(c, now_ms, out, cap);
    if (c->paused)
        return 0;

    uint32_t k = next_fresh(c);
    c->tx_cursor = k;
    if (fresh_allowed(c, k, now_ms)) {
        uint32_t i = tx_index(c, k);
        struct chan_tx_entry *e = &c->tx[i];
        bool replay = e->transmitted;
        size_t n = emit(c, i, now_ms, out, cap);
        if (!n)
            return 0;
        c->tx_cursor = k + 1;
        if (replay) {
            e->resends++;
            c->st.retransmits++;
        } else {
            if (c->cfg.pace_msgs_per_sec)
                pace_consume(c, now_ms);
            e->transmitted = true;
            e->first_send = now_ms;
            c->st.sent_msgs++;
            c->st.sent_bytes += n;
        }
        return n;
    }

    uint32_t i = retx_next(c, now_ms);
    if (i == CHAN_NIL)
        return 0;
    bool head = i == c->tx_head;
    size_t n = emit(c, i, now_ms, out, cap);
    if (!n)
        return 0;
    if (!head) {
        /* Only resends behind the head draw on the burst budget. */
        if (retx_new_round(c, now_ms)) {
            c->retx_round_valid = true;
            c->retx_round_start = now_ms;
            c->retx_round_count = 0;
        }
        c->retx_round_count++;
    }
    c->tx[i].resends++;
    c->st.retransmits++;
    return n;
}

size_t ssm_chan_max_frame(const ssm_chan *c)
{
    size_t body =
        c && c->cfg.max_payload > CHAN_ACK_BODY_MAX ? c->cfg.max_payload : CHAN_ACK_BODY_MAX;
    return ssm_msg_encoded_size(body);
}

static void take_min(int64_t *best, int64_t v)
{
    if (*best < 0 || v < *best)
        *best = v;
}

int64_t ssm_chan_next_timeout(const ssm_chan *c, uint64_t now_ms)
{
    if (!c)
        return -1;
    if (ssm_chan_want_write(c, now_ms))
        return 0;
    int64_t best = -1;
    if (c->up && !c->paused) {
        uint32_t k = next_fresh(c);
        if (k < c->tx_count && !fresh_allowed(c, k, now_ms)) {
            uint64_t need = 1000u - pace_tokens(c, now_ms);
            uint64_t rate = c->cfg.pace_msgs_per_sec;
            take_min(&best, (int64_t)((need + rate - 1) / rate));
        }
        uint32_t h = retx_head(c);
        if (h != CHAN_NIL) {
            int64_t w = retx_wait(c, h, now_ms);
            take_min(&best, w > 0 ? w : 1);
        }
        int64_t w;
        if (retx_other(c, now_ms, &w) != CHAN_NIL) {
            /* Held back by the burst budget: due when the round ends, not now. */
            if (!retx_budget(c, now_ms)) {
                int64_t round =
                    (int64_t)CHAN_RETX_ROUND_MS - (int64_t)elapsed_ms(now_ms, c->retx_round_start);
                if (round > w)
                    w = round;
            }
            take_min(&best, w > 0 ? w : 1);
        }
    }
    if (c->tx_count) {
        const struct chan_tx_entry *h = &c->tx[c->tx_head];
        uint64_t age = elapsed_ms(now_ms, h->first_send);
        if (h->transmitted && age <= c->cfg.give_up_ms) {
            uint64_t rem = c->cfg.give_up_ms - age;
            take_min(&best, rem >= (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)rem + 1);
        }
    }
    return best;
}

bool ssm_chan_timed_out(const ssm_chan *c, uint64_t now_ms)
{
    if (!c || !c->tx_count)
        return false;
    /* The head is the oldest unacked entry (acked ones are popped) and first
     * transmissions go out in sequence order, so it was sent first. */
    const struct chan_tx_entry *h = &c->tx[c->tx_head];
    return h->transmitted && elapsed_ms(now_ms, h->first_send) > c->cfg.give_up_ms;
}
