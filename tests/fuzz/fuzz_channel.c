/* libFuzzer: drives one data channel with a script of operations read from
 * the input: raw frames, well-formed frames around fuzzed fields (sequence
 * numbers, payload types, ack bodies), sends, pulls, time jumps, reconnects,
 * handler refusals. Oracles: no crash/UB; every pulled frame decodes and is
 * an ack or our own data; pull hands out a frame whenever want_write says so;
 * next_timeout is 0 exactly when want_write, and nothing is due before
 * the time it reports; in-order deliveries equal expected_seq;
 * unacked accounting never exceeds the window. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ssm_channel.h"
#include "ssm_msg.h"
#include "ssm_uuid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
    const uint8_t *p;
    size_t n;
    bool not_ready;
    uint64_t delivered;
    uint64_t rnd;
    int64_t max_recv_seq;
} fz;

static uint8_t take(fz *f)
{
    if (!f->n)
        return 0;
    f->n--;
    return *f->p++;
}

static uint64_t take64(fz *f)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | take(f);
    return v;
}

static int on_payload(void *u, uint32_t type, const uint8_t *p, size_t n)
{
    fz *f = u;
    (void)type;
    if (n) /* touch every byte: ASan catches a bad pointer/length */
        f->rnd += p[0] + p[n - 1];
    if (f->not_ready)
        return SSM_DELIVER_NOT_READY;
    f->delivered++;
    return SSM_DELIVER_OK;
}

static void on_closed(void *u, const char *out)
{
    ((fz *)u)->rnd += strlen(out);
}

static void rnd(void *u, uint8_t *b, size_t n)
{
    fz *f = u;
    for (size_t i = 0; i < n; i++) {
        f->rnd = f->rnd * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (uint8_t)(f->rnd >> 33);
    }
}

static void build_and_receive(ssm_chan *c, fz *f, const char *type, int64_t seq, uint32_t pt,
                              const uint8_t *p, size_t n, uint64_t now)
{
    static uint8_t frame[8192];
    ssm_msg m;
    memset(&m, 0, sizeof m);
    strcpy(m.type, type);
    m.schema_version = 1;
    m.created_ms = 1700000000000ull;
    m.seq = seq;
    m.flags = take(f);
    rnd(f, m.id, 16);
    m.payload_type = pt;
    m.payload = p;
    m.payload_len = n;
    long len = ssm_msg_encode(&m, frame, sizeof frame);
    if (len > 0)
        ssm_chan_receive(c, frame, (size_t)len, now);
}

static void pull_all(ssm_chan *c, fz *f, uint64_t now)
{
    static uint8_t out[8192];
    size_t maxf = ssm_chan_max_frame(c);
    if (maxf > sizeof out)
        abort();
    for (int i = 0; i < 10000; i++) {
        bool want = ssm_chan_want_write(c, now);
        size_t n = ssm_chan_pull(c, now, out, maxf);
        if (want != (n != 0))
            abort();
        if (!n)
            return;
        ssm_msg m;
        if (ssm_msg_decode(out, n, &m) != SSM_MSG_OK)
            abort();
        ssm_chan_stats st;
        ssm_chan_get_stats(c, &st);
        if (strcmp(m.type, SSM_MT_ACK) == 0) {
            int64_t s;
            if (m.seq != 0 || m.flags != 3 || ssm_ack_parse(m.payload, m.payload_len, &s) != 0)
                abort();
            if (s < 0 || s > f->max_recv_seq)
                abort(); /* acked something never received */
        } else if (strcmp(m.type, SSM_MT_INPUT) == 0) {
            if (m.flags != 0 || m.seq < 0 || m.seq >= st.next_seq)
                abort();
        } else {
            abort();
        }
    }
    abort(); /* a pull loop that never ends */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = {.p = data, .n = size, .max_recv_seq = -1};
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    cfg.send_window_bytes = 4096;
    cfg.send_window_msgs = 24;
    cfg.reorder_slots = 16;
    cfg.max_payload = 300;
    cfg.give_up_ms = 20000;
    if (take(&f) & 1) {
        cfg.pace_msgs_per_sec = 1 + take(&f);
        cfg.pace_burst = take(&f) & 7;
    }
    ssm_chan_callbacks cb = {.on_payload = on_payload, .on_closed = on_closed, .random = rnd};
    ssm_chan *c = ssm_chan_new(&cfg, &cb, &f);
    if (!c)
        abort();
    ssm_chan_set_clock_offset(c, (int64_t)(take64(&f) >> 1) - INT64_MAX / 2);
    uint64_t now = take64(&f) >> 2;
    uint8_t buf[1024];

    while (f.n) {
        uint8_t op = take(&f) % 11;
        switch (op) {
        case 0: { /* raw frame */
            size_t len = take(&f);
            len = len << 2 | (take(&f) & 3);
            if (len > f.n)
                len = f.n;
            ssm_msg m; /* a raw frame may be valid stream data: remember its seq */
            if (ssm_msg_decode(f.p, len, &m) == SSM_MSG_OK && m.seq > f.max_recv_seq)
                f.max_recv_seq = m.seq;
            ssm_chan_receive(c, f.p, len, now);
            f.p += len;
            f.n -= len;
            break;
        }
        case 1: { /* output_stream_data near expected (or anywhere) */
            ssm_chan_stats st;
            ssm_chan_get_stats(c, &st);
            uint8_t sel = take(&f);
            int64_t seq =
                (sel & 0x80) ? (int64_t)take64(&f) : st.expected_seq + (int64_t)(sel & 0x3f) - 8;
            uint32_t pt = take(&f) % 14;
            size_t n = take(&f) * 2u;
            for (size_t i = 0; i < n; i++)
                buf[i] = take(&f);
            if (seq > f.max_recv_seq)
                f.max_recv_seq = seq;
            build_and_receive(c, &f, SSM_MT_OUTPUT, seq, pt, buf, n, now);
            break;
        }
        case 2: { /* acknowledge for a fuzzed sequence number */
            ssm_chan_stats st;
            ssm_chan_get_stats(c, &st);
            uint8_t sel = take(&f);
            int64_t seq =
                (sel & 0x80) ? (int64_t)take64(&f) : st.next_seq - 1 - (int64_t)(sel & 0x1f);
            char body[256];
            uint8_t id[16];
            rnd(&f, id, 16);
            int bl = ssm_ack_body(body, sizeof body, SSM_MT_INPUT, id, seq);
            if (bl > 0)
                build_and_receive(c, &f, SSM_MT_ACK, 0, 0, (uint8_t *)body, (size_t)bl, now);
            break;
        }
        case 3: { /* ack / channel_closed / control with a raw body */
            static const char *types[] = {SSM_MT_ACK, SSM_MT_CHANNEL_CLOSED, SSM_MT_PAUSE_PUB,
                                          SSM_MT_START_PUB, "agent_session_state"};
            const char *t = types[take(&f) % 5];
            size_t n = take(&f);
            for (size_t i = 0; i < n; i++)
                buf[i] = take(&f);
            build_and_receive(c, &f, t, 0, 0, buf, n, now);
            break;
        }
        case 4: { /* send */
            size_t n = take(&f) * 2u;
            size_t space = ssm_chan_send_space(c);
            int rc = ssm_chan_send(c, 1, buf, n, now);
            if (n > cfg.max_payload) {
                if (rc != SSM_CHAN_E2BIG)
                    abort();
            } else if ((rc == SSM_CHAN_OK) != (space && n <= space)) {
                abort();
            }
            break;
        }
        case 5:
            pull_all(c, &f, now);
            break;
        case 6:
            now += take(&f) * (uint64_t)(1 + (take(&f) & 15));
            break;
        case 7:
            if (take(&f) & 1)
                ssm_chan_transport_down(c);
            else
                ssm_chan_transport_up(c, now);
            break;
        case 8:
            f.not_ready = take(&f) & 1;
            ssm_chan_resume_delivery(c, now);
            break;
        case 9: {
            int64_t to = ssm_chan_next_timeout(c, now);
            bool want = ssm_chan_want_write(c, now);
            if (want && to != 0)
                abort();
            if (to == 0 && !want)
                abort();
            /* Nothing becomes due before the reported time (no early
             * wake-up that finds nothing, which would make a timer spin). */
            if (to > 1 && now <= UINT64_MAX - (uint64_t)to &&
                ssm_chan_want_write(c, now + (uint64_t)to - 1))
                abort();
            break;
        }
        default: {
            ssm_chan_stats st;
            ssm_chan_get_stats(c, &st);
            if (st.unacked_msgs > cfg.send_window_msgs ||
                st.unacked_bytes > cfg.send_window_bytes || st.buffered_msgs > cfg.reorder_slots)
                abort();
            if ((uint64_t)st.expected_seq != f.delivered)
                abort();
            break;
        }
        }
    }
    pull_all(c, &f, now);
    ssm_chan_free(c);
    return 0;
}
