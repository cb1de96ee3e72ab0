/* The simulator's own reliable layer, written from PROTOCOL.md §7 from the
 * agent's point of view (independent of protocol/channel.c on purpose):
 * sequenced output with SYN on seq 0, head-of-line retransmission every tick
 * once older than the RTO, acks for every accepted client message, an
 * out-of-order buffer, re-acks for duplicates, withheld acks when not ready. */
#include <string.h>

#include <uuid/uuid.h>

#include "kms.h"
#include "sim.h"

static void drain(sim_session *s);

static struct sim_out_entry *out_at(sim_session *s, size_t i)
{
    return &s->out[(s->out_head + i) % SIM_OUT_WINDOW];
}

void sim_rel_init(sim_session *s)
{
    s->next_seq = 0;
    s->expected = 0;
    s->rtt_ms = 100.0;
    s->rttvar_ms = 0.0;
    s->rto_ms = 200.0;
    s->held_seq = -1;
}

static long encode(const char *type, int64_t seq, uint64_t flags, uint32_t ptype, const uint8_t *p,
                   size_t n, uint8_t *out, size_t cap)
{
    ssm_msg m;
    memset(&m, 0, sizeof m);
    snprintf(m.type, sizeof m.type, "%s", type);
    m.schema_version = 1;
    m.created_ms = sim_wall_ms();
    m.seq = seq;
    m.flags = flags;
    uuid_generate_random(m.id);
    m.payload_type = ptype;
    m.payload = p;
    m.payload_len = n;
    return ssm_msg_encode(&m, out, cap);
}

static cJSON *seq_fields(int64_t seq)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "seq", (double)seq);
    return f;
}

static struct sim_out_entry *find_out(sim_session *s, int64_t seq)
{
    for (size_t i = 0; i < s->out_count; i++) {
        struct sim_out_entry *e = out_at(s, i);
        if (e->seq == seq && e->len > 0)
            return e;
    }
    return NULL;
}

static void release_held(sim_session *s)
{
    if (s->held_seq < 0)
        return;
    struct sim_out_entry *e = find_out(s, s->held_seq);
    if (e && s->conn && s->conn->opened) {
        sim_conn_queue(s->conn, e->buf, e->len, 0);
        e->sent_ms = sim_now_ms();
        sim_record(s, "fault_reorder_release", seq_fields(e->seq));
    }
    s->held_seq = -1;
}

/* Puts one sequenced message on the wire, applying the agent->client faults
 * to first transmissions (drop also to retransmissions). */
static void transmit(sim_session *s, struct sim_out_entry *e, int retransmit)
{
    struct sim_conn *c = s->conn;
    if (c == NULL || !c->opened)
        return;
    uint64_t now = sim_now_ms();
    /* Backpressure: a message, its duplicate and a garbage frame need up to 3
     * slots; wait for room rather than drop (and keep the order). */
    if (SIM_TX_SLOTS - sim_conn_room(c) + 3 > SIM_TX_DATA_MAX || (s->deferred && !e->deferred)) {
        if (!e->deferred && !retransmit) {
            e->deferred = 1;
            s->deferred = 1;
            sim_record(s, "tx_deferred", seq_fields(e->seq));
        }
        return;
    }
    e->deferred = 0;
    if (sim_chance(g_cfg.drop)) {
        e->sent_ms = now;
        sim_record(s, "fault_drop", seq_fields(e->seq));
        return;
    }
    if (!retransmit && sim_chance(g_cfg.malformed)) {
        static uint8_t junk[SIM_FRAME_MAX];
        const char *kind = "";
        size_t n = sim_fault_malformed(e->buf, e->len, junk, sizeof junk, &kind);
        if (n > 0 && sim_conn_queue(c, junk, n, 0) == 0) {
            cJSON *f = seq_fields(e->seq);
            cJSON_AddStringToObject(f, "kind", kind);
            cJSON_AddNumberToObject(f, "len", (double)n);
            sim_record(s, "fault_malformed", f);
        }
    }
    if (!retransmit && s->held_seq < 0 && sim_chance(g_cfg.reorder)) {
        s->held_seq = e->seq;
        s->held_ms = now;
        e->sent_ms = now;
        sim_record(s, "fault_reorder_hold", seq_fields(e->seq));
        return;
    }
    sim_conn_queue(c, e->buf, e->len, 0);
    e->sent_ms = now;
    if (!retransmit && sim_chance(g_cfg.dup)) {
        sim_conn_queue(c, e->buf, e->len, 0);
        sim_record(s, "fault_dup", seq_fields(e->seq));
    }
    if (s->held_seq >= 0 && s->held_seq != e->seq)
        release_held(s);
}

int sim_rel_send(sim_session *s, uint32_t ptype, const uint8_t *p, size_t n)
{
    if (s->state >= ST_ENDING || p == NULL || n == 0 || n > SIM_FRAME_MAX - SSM_MSG_PAYLOAD_OFFSET)
        return SIM_SEND_ERROR;
    if (s->out_count >= SIM_OUT_WINDOW)
        return SIM_SEND_FULL;
    uint8_t sealed[SIM_FRAME_MAX];
    if (sim_kms_active(s) && sim_kms_encrypts(ptype)) {
        long m = sim_kms_seal(s, p, n, sealed, sizeof sealed - SSM_MSG_PAYLOAD_OFFSET);
        if (m < 0)
            return SIM_SEND_ERROR;
        p = sealed;
        n = (size_t)m;
    }
    struct sim_out_entry *e = out_at(s, s->out_count);
    int64_t seq = s->next_seq;
    long len = encode(SSM_MT_OUTPUT, seq, seq == 0 ? SSM_MSGFLAG_SYN : SSM_MSGFLAG_DATA, ptype, p, n,
                      e->buf, sizeof e->buf);
    if (len < 0)
        return SIM_SEND_ERROR;
    e->len = (size_t)len;
    e->seq = seq;
    e->sent_ms = 0;
    e->resends = 0;
    e->deferred = 0;
    s->out_count++;
    s->next_seq++;
    cJSON *f = seq_fields(seq);
    cJSON_AddNumberToObject(f, "payload_type", ptype);
    cJSON_AddNumberToObject(f, "len", (double)n);
    sim_record(s, "send", f);
    transmit(s, e, 0);
    return SIM_SEND_OK;
}

static int send_control_at(sim_session *s, size_t mark, const char *type, uint32_t ptype,
                           const uint8_t *p, size_t n, uint64_t flags)
{
    uint8_t buf[SIM_FRAME_MAX];
    if (s->conn == NULL || !s->conn->opened)
        return -1;
    long len = encode(type, 0, flags, ptype, p, n, buf, sizeof buf);
    if (len < 0)
        return -1;
    return sim_conn_queue_at(s->conn, mark, buf, (size_t)len, 0);
}

int sim_send_control(sim_session *s, const char *type, uint32_t ptype, const uint8_t *p, size_t n,
                     uint64_t flags)
{
    return send_control_at(s, sim_conn_mark(s->conn), type, ptype, p, n, flags);
}

/* The ack goes at `mark`: ahead of anything its input produced while being
 * processed (the agent acks first, PROTOCOL.md §7.2). */
static void send_ack_at(sim_session *s, const ssm_msg *m, const char *why, size_t mark)
{
    char body[256];
    int n = ssm_ack_body(body, sizeof body, m->type, m->id, m->seq);
    if (n < 0)
        return;
    int rc = send_control_at(s, mark, SSM_MT_ACK, SSM_PT_NONE, (const uint8_t *)body, (size_t)n,
                             SSM_MSGFLAG_ACK);
    cJSON *f = seq_fields(m->seq);
    cJSON_AddStringToObject(f, "why", why);
    cJSON_AddBoolToObject(f, "queued", rc == 0);
    sim_record(s, "ack_sent", f);
}

static void send_ack(sim_session *s, const ssm_msg *m, const char *why)
{
    send_ack_at(s, m, why, sim_conn_mark(s->conn));
}

/* Pops acknowledged entries from the head so the head is the oldest unacked. */
static void pop_acked(sim_session *s)
{
    while (s->out_count > 0 && out_at(s, 0)->len == 0) {
        s->out_head = (s->out_head + 1) % SIM_OUT_WINDOW;
        s->out_count--;
    }
}

void sim_rel_on_ack(sim_session *s, const uint8_t *payload, size_t n)
{
    int64_t seq = -1;
    if (ssm_ack_parse(payload, n, &seq) != 0) {
        sim_record(s, "ack_invalid", NULL);
        return;
    }
    struct sim_out_entry *e = find_out(s, seq);
    cJSON *f = seq_fields(seq);
    cJSON_AddBoolToObject(f, "known", e != NULL);
    if (e) {
        /* RFC 6298 style, the agent's constants (§7.4), in milliseconds. */
        double r = e->sent_ms ? (double)(sim_now_ms() - e->sent_ms) : 0.0;
        double dev = s->rtt_ms > r ? s->rtt_ms - r : r - s->rtt_ms;
        s->rttvar_ms = 0.75 * s->rttvar_ms + 0.25 * dev;
        s->rtt_ms = 0.875 * s->rtt_ms + 0.125 * r;
        s->rto_ms = s->rtt_ms + (4.0 * s->rttvar_ms > 10.0 ? 4.0 * s->rttvar_ms : 10.0);
        if (s->rto_ms > 1000.0)
            s->rto_ms = 1000.0;
        cJSON_AddNumberToObject(f, "rtt_sample_ms", r);
        cJSON_AddNumberToObject(f, "rto_ms", s->rto_ms);
        cJSON_AddNumberToObject(f, "resends", e->resends);
        if (seq == 0)
            s->hs_request_acked = 1;
        if (s->held_seq == seq)
            s->held_seq = -1;
        e->len = 0;
        pop_acked(s);
    }
    sim_record(s, "ack_received", f);
    if (s->want_writable && s->out_count < SIM_OUT_WINDOW && s->beh_started && s->state == ST_RUNNING) {
        s->want_writable = 0;
        if (s->beh->on_writable)
            s->beh->on_writable(s, s->beh_state);
    }
    drain(s); /* input held while not ready may fit now */
}

static int is_handshake_type(uint32_t t)
{
    return t == SSM_PT_HANDSHAKE_REQUEST || t == SSM_PT_HANDSHAKE_RESPONSE ||
           t == SSM_PT_HANDSHAKE_COMPLETE || t == SSM_PT_ENC_CHALLENGE_REQUEST ||
           t == SSM_PT_ENC_CHALLENGE_RESPONSE;
}

/* Hands one in-order payload to the current stage. Returns 1 when consumed
 * (ack it), 0 when the handler is not ready (no ack, client retransmits). */
static int process(sim_session *s, uint32_t ptype, const uint8_t *p, size_t n)
{
    switch (s->state) {
    case ST_WAIT_CONNECT:
        return 0;
    case ST_HANDSHAKE:
        if (ptype == SSM_PT_HANDSHAKE_RESPONSE || ptype == SSM_PT_ENC_CHALLENGE_RESPONSE)
            return sim_handshake_on_input(s, ptype, p, n);
        /* The agent acks but discards data sent during the handshake (§8.7). */
        {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddNumberToObject(f, "payload_type", ptype);
            sim_record(s, "discarded_during_handshake", f);
        }
        return 1;
    case ST_RUNNING:
        if (is_handshake_type(ptype))
            return 1;
        if (!s->beh_started)
            return 0;
        if (ptype == SSM_PT_OUTPUT && sim_kms_active(s)) {
            static uint8_t plain[SIM_FRAME_MAX];
            long m = sim_kms_open(s, p, n, plain, sizeof plain);
            if (m < 0) {
                sim_record(s, "kms_decrypt_failed", NULL);
                return 1; /* acked and dropped */
            }
            return s->beh->on_input(s, s->beh_state, ptype, plain, (size_t)m) == SIM_INPUT_OK;
        }
        return s->beh->on_input(s, s->beh_state, ptype, p, n) == SIM_INPUT_OK;
    default:
        return 1; /* ending: swallow */
    }
}

static void drain(sim_session *s)
{
    for (;;) {
        struct sim_in_entry *b = sim_inbuf_find(s, s->expected);
        if (b == NULL)
            return;
        size_t mark = sim_conn_mark(s->conn);
        if (!process(s, b->ptype, b->buf, b->len))
            return; /* retried from the tick */
        if (b->need_ack) {
            ssm_msg m;
            memset(&m, 0, sizeof m);
            snprintf(m.type, sizeof m.type, "%s", SSM_MT_INPUT);
            memcpy(m.id, b->id, sizeof m.id);
            m.seq = b->seq;
            send_ack_at(s, &m, "ready_again", mark);
        }
        sim_inbuf_remove(s, s->expected);
        s->expected++;
    }
}

static void fault_resume_reads(sim_session *s, void *user)
{
    (void)user;
    sim_record(s, "fault_resume_reads", cJSON_CreateObject());
    if (s->conn)
        lws_rx_flow_control(s->conn->wsi, 1);
}

/* The agent stops reading its socket (a slow or busy host): the client's
 * socket fills up and its writes must wait, then resume intact. */
static void maybe_stall_reads(sim_session *s)
{
    if (!g_cfg.stall_reads_ms || s->reads_stalled || !s->conn)
        return;
    s->reads_stalled = 1;
    sim_record(s, "fault_stall_reads", cJSON_CreateObject());
    lws_rx_flow_control(s->conn->wsi, 0);
    sim_timer_after(s, g_cfg.stall_reads_ms, fault_resume_reads, NULL);
}

void sim_rel_on_input(sim_session *s, const ssm_msg *m)
{
    maybe_stall_reads(s);
    if (sim_chance(g_cfg.drop_in)) {
        sim_record(s, "fault_drop_in", seq_fields(m->seq));
        return;
    }
    if (g_cfg.withhold_acks_ms && sim_now_ms() < s->connect_ms + g_cfg.withhold_acks_ms) {
        sim_record(s, "fault_withhold_ack", seq_fields(m->seq));
        return;
    }
    if (m->seq == s->expected) {
        struct sim_in_entry *held = sim_inbuf_find(s, m->seq);
        if (held && held->need_ack) {
            /* A retransmission of input we hold while not ready. */
            sim_record(s, "not_ready", seq_fields(m->seq));
            return;
        }
        size_t mark = sim_conn_mark(s->conn);
        if (!process(s, m->payload_type, m->payload, m->payload_len)) {
            /* Not ready: no ack (the client retransmits), but keep it so the
             * tick can deliver it as soon as the behaviour is ready. */
            if (sim_inbuf_put(s, m, 1) != 0)
                sim_record(s, "in_buffer_full", seq_fields(m->seq));
            sim_record(s, "not_ready", seq_fields(m->seq));
            return;
        }
        send_ack_at(s, m, "in_order", mark);
        sim_inbuf_remove(s, m->seq); /* a stale early copy */
        s->expected++;
        drain(s);
    } else if (m->seq > s->expected) {
        /* The agent handles in-order input on its receive loop: while that
         * input cannot be delivered (here: held not ready) it reads nothing,
         * so later messages are neither buffered nor acked. */
        struct sim_in_entry *head = sim_inbuf_find(s, s->expected);
        if (head && head->need_ack) {
            sim_record(s, "blocked_not_ready", seq_fields(m->seq));
            return;
        }
        if (sim_inbuf_put(s, m, 0) != 0) {
            sim_record(s, "in_buffer_full", seq_fields(m->seq));
            return;
        }
        send_ack(s, m, "buffered");
    } else {
        send_ack(s, m, "duplicate");
    }
}

void sim_rel_tick(sim_session *s)
{
    uint64_t now = sim_now_ms();
    if (s->conn && s->conn->opened) {
        pop_acked(s);
        if (s->out_count > 0 && s->state != ST_CLOSED) {
            struct sim_out_entry *e = out_at(s, 0);
            if (e->sent_ms == 0 || (double)(now - e->sent_ms) > s->rto_ms) {
                if (s->held_seq == e->seq)
                    s->held_seq = -1;
                e->resends++;
                cJSON *f = seq_fields(e->seq);
                cJSON_AddNumberToObject(f, "resends", e->resends);
                cJSON_AddNumberToObject(f, "rto_ms", s->rto_ms);
                sim_record(s, "retransmit", f);
                transmit(s, e, 1);
            }
        }
        if (s->held_seq >= 0 && now - s->held_ms > 300)
            release_held(s);
    }
    drain(s);
}

void sim_rel_flush_deferred(sim_session *s)
{
    if (!s->deferred)
        return;
    s->deferred = 0;
    for (size_t i = 0; i < s->out_count; i++) {
        struct sim_out_entry *e = out_at(s, i);
        if (e->len == 0 || !e->deferred)
            continue;
        transmit(s, e, 0);
        if (e->deferred) { /* still no room: it and the rest wait in order */
            s->deferred = 1;
            return;
        }
    }
}

void sim_rel_reconnected(sim_session *s)
{
    /* Resend the oldest unacked at the next tick; the rest follow as acked. */
    s->held_seq = -1;
    if (s->out_count > 0)
        out_at(s, 0)->sent_ms = 0;
    sim_rel_flush_deferred(s);
}

size_t sim_rel_unacked(sim_session *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->out_count; i++)
        n += out_at(s, i)->len > 0;
    return n;
}
