/* Data channel engine (PROTOCOL.md §7, §13.2): sequencing, acks, RTT/RTO,
 * retransmission, reordering, flow control, publication control, reconnect
 * replay. A fake agent built here encodes frames with ssm_msg_encode and
 * decodes everything the channel hands out with ssm_msg_decode. Time is
 * synthetic. The randomized soak lives in test_channel_soak.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "channel_internal.h"
#include "ssm_channel.h"
#include "ssm_msg.h"
#include "ssm_uuid.h"

#define WALL_OFFSET 1700000000000LL
#define MAXF 8192

/* ---- harness ---- */

typedef struct harness {
    ssm_chan *c;
    uint64_t now;
    uint64_t rng;
    /* deliveries */
    int64_t got[4096]; /* first 8 bytes of each delivered payload (our tag) */
    uint32_t got_type[4096];
    size_t ngot;
    int not_ready; /* on_payload answers NOT_READY while set */
    int payload_calls;
    int sends_from_payload; /* on_payload sends this many bytes back */
    /* closes */
    int closed;
    char closed_out[256];
    int space_calls;
} harness;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int on_payload(void *u, uint32_t type, const uint8_t *p, size_t n)
{
    harness *h = u;
    h->payload_calls++;
    if (h->not_ready)
        return SSM_DELIVER_NOT_READY;
    int64_t tag = -1;
    if (n >= 8)
        memcpy(&tag, p, 8);
    assert_true(h->ngot < 4096);
    h->got_type[h->ngot] = type;
    h->got[h->ngot++] = tag;
    if (h->sends_from_payload) {
        uint8_t buf[64] = {0};
        assert_int_equal(ssm_chan_send(h->c, SSM_PT_HANDSHAKE_RESPONSE, buf,
                                       (size_t)h->sends_from_payload, h->now),
                         SSM_CHAN_OK);
    }
    return SSM_DELIVER_OK;
}

static void on_closed(void *u, const char *out)
{
    harness *h = u;
    h->closed++;
    snprintf(h->closed_out, sizeof h->closed_out, "%s", out);
}

static void on_send_space(void *u)
{
    ((harness *)u)->space_calls++;
}

static void rnd(void *u, uint8_t *buf, size_t n)
{
    harness *h = u;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)xorshift(&h->rng);
}

static const ssm_chan_callbacks CBS = {
    .on_payload = on_payload,
    .on_closed = on_closed,
    .on_send_space = on_send_space,
    .random = rnd,
};

static harness *mk(const ssm_chan_config *cfg)
{
    harness *h = calloc(1, sizeof *h);
    assert_non_null(h);
    h->rng = 0x9e3779b97f4a7c15ull;
    h->now = 1000;
    h->c = ssm_chan_new(cfg, &CBS, h);
    assert_non_null(h->c);
    ssm_chan_set_clock_offset(h->c, WALL_OFFSET);
    return h;
}

static void rm(harness *h)
{
    ssm_chan_free(h->c);
    free(h);
}

/* ---- the fake agent's frames ---- */

static void id_for(int64_t seq, uint8_t id[16])
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(seq * 31 + i * 7 + 1);
    ssm_uuid_v4_from_random(id);
}

static size_t build(uint8_t *out, const char *type, int64_t seq, uint32_t ptype, const void *p,
                    size_t n)
{
    ssm_msg m;
    memset(&m, 0, sizeof m);
    snprintf(m.type, sizeof m.type, "%s", type);
    m.schema_version = 1;
    m.created_ms = 1700000000123ull;
    m.seq = seq;
    m.flags = seq == 0 ? 1 : 0;
    id_for(seq, m.id);
    m.payload_type = ptype;
    m.payload = p;
    m.payload_len = n;
    long r = ssm_msg_encode(&m, out, MAXF);
    assert_true(r > 0);
    return (size_t)r;
}

/* output_stream_data whose 8-byte payload is its own sequence number. */
static int agent_data(harness *h, int64_t seq)
{
    uint8_t f[MAXF];
    size_t n = build(f, SSM_MT_OUTPUT, seq, SSM_PT_OUTPUT, &seq, sizeof seq);
    return ssm_chan_receive(h->c, f, n, h->now);
}

static int agent_ack(harness *h, int64_t seq)
{
    char body[256];
    uint8_t id[16];
    id_for(seq, id);
    int bl = ssm_ack_body(body, sizeof body, SSM_MT_INPUT, id, seq);
    assert_true(bl > 0);
    uint8_t f[MAXF];
    size_t n = build(f, SSM_MT_ACK, 0, SSM_PT_NONE, body, (size_t)bl);
    return ssm_chan_receive(h->c, f, n, h->now);
}

static int agent_simple(harness *h, const char *type, const void *p, size_t n)
{
    uint8_t f[MAXF];
    size_t len = build(f, type, 0, 0, p, n);
    return ssm_chan_receive(h->c, f, len, h->now);
}

/* One pulled frame, decoded (payload points into buf). */
typedef struct pulled {
    uint8_t buf[MAXF];
    size_t len;
    ssm_msg m;
} pulled;

static int pull(harness *h, pulled *p)
{
    p->len = ssm_chan_pull(h->c, h->now, p->buf, sizeof p->buf);
    if (!p->len)
        return 0;
    assert_int_equal(ssm_msg_decode(p->buf, p->len, &p->m), SSM_MSG_OK);
    return 1;
}

static int64_t ack_seq_of(const pulled *p)
{
    assert_string_equal(p->m.type, SSM_MT_ACK);
    /* Exact int64 from the text (cJSON numbers are doubles, the Go agent's
     * are not), cross-checked with ssm_ack_parse where a double is exact. */
    char txt[512];
    assert_true(p->m.payload_len < sizeof txt);
    memcpy(txt, p->m.payload, p->m.payload_len);
    txt[p->m.payload_len] = 0;
    const char *k = strstr(txt, "\"AcknowledgedMessageSequenceNumber\":");
    assert_non_null(k);
    int64_t s = strtoll(k + strlen("\"AcknowledgedMessageSequenceNumber\":"), NULL, 10);
    int64_t d;
    if (s > -((int64_t)1 << 53) && s < ((int64_t)1 << 53)) {
        assert_int_equal(ssm_ack_parse(p->m.payload, p->m.payload_len, &d), 0);
        assert_int_equal(d, s);
    }
    return s;
}

/* Pulls everything due; returns the number of frames and fills the acked
 * sequence numbers and data sequence numbers seen (in order). */
static int drain(harness *h, int64_t *acks, int *nacks, int64_t *data, int *ndata)
{
    pulled p;
    int total = 0;
    if (nacks)
        *nacks = 0;
    if (ndata)
        *ndata = 0;
    while (pull(h, &p)) {
        total++;
        if (strcmp(p.m.type, SSM_MT_ACK) == 0) {
            if (acks)
                acks[(*nacks)++] = ack_seq_of(&p);
        } else {
            assert_string_equal(p.m.type, SSM_MT_INPUT);
            if (data)
                data[(*ndata)++] = p.m.seq;
        }
        assert_true(total < 100000);
    }
    return total;
}

static void send_tag(harness *h, int64_t tag)
{
    assert_int_equal(ssm_chan_send(h->c, SSM_PT_OUTPUT, (const uint8_t *)&tag, sizeof tag, h->now),
                     SSM_CHAN_OK);
}

static ssm_chan_stats stats(harness *h)
{
    ssm_chan_stats st;
    ssm_chan_get_stats(h->c, &st);
    return st;
}

/* ---- tests ---- */

static void test_config(void **state)
{
    (void)state;
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    assert_int_equal(cfg.send_window_bytes, 1024 * 1024);
    assert_int_equal(cfg.send_window_msgs, 4096);
    assert_int_equal(cfg.reorder_slots, 128);
    assert_int_equal(cfg.max_payload, 4096);
    assert_int_equal(cfg.give_up_ms, 300000);
    assert_int_equal(cfg.pace_msgs_per_sec, 0);
    assert_int_equal(cfg.pace_burst, 16);

    harness h0 = {0};
    assert_null(ssm_chan_new(&cfg, NULL, &h0));
    ssm_chan_callbacks nornd = CBS;
    nornd.random = NULL;
    assert_null(ssm_chan_new(&cfg, &nornd, &h0));
    ssm_chan_config bad = cfg;
    bad.max_payload = 0;
    assert_null(ssm_chan_new(&bad, &CBS, &h0));
    bad = cfg;
    bad.send_window_msgs = 0;
    assert_null(ssm_chan_new(&bad, &CBS, &h0));

    /* A byte window smaller than one full frame is raised to one. */
    cfg.send_window_bytes = 10;
    cfg.max_payload = 100;
    harness *h = mk(&cfg);
    assert_int_equal(ssm_chan_send_space(h->c), 100);
    assert_true(ssm_chan_max_frame(h->c) >= 120 + 100);
    assert_true(ssm_chan_max_frame(h->c) >= 120 + 200); /* acks always fit */
    uint8_t big[101] = {0};
    assert_int_equal(ssm_chan_send(h->c, 1, big, 101, h->now), SSM_CHAN_E2BIG);
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), -1);
    assert_false(ssm_chan_want_write(h->c, h->now));
    rm(h);

    /* NULL config means defaults. */
    h = calloc(1, sizeof *h);
    h->c = ssm_chan_new(NULL, &CBS, h);
    assert_non_null(h->c);
    assert_int_equal(ssm_chan_send_space(h->c), 4096);
    rm(h);
}

static void test_outgoing_frames(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    const char *pl[3] = {"ls\r", "", "hello"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(ssm_chan_send(h->c, SSM_PT_OUTPUT, (const uint8_t *)pl[i], strlen(pl[i]),
                                       h->now + (uint64_t)i),
                         SSM_CHAN_OK);
    assert_true(ssm_chan_want_write(h->c, h->now));
    uint8_t ids[3][16];
    for (int i = 0; i < 3; i++) {
        pulled p;
        assert_true(pull(h, &p));
        assert_string_equal(p.m.type, SSM_MT_INPUT);
        assert_int_equal(p.m.seq, i);
        assert_int_equal(p.m.flags, 0);
        assert_int_equal(p.m.schema_version, 1);
        assert_int_equal(p.m.header_length, 116);
        assert_int_equal(p.m.payload_type, SSM_PT_OUTPUT);
        assert_int_equal(p.m.created_ms, (uint64_t)WALL_OFFSET + 1000 + (uint64_t)i);
        assert_int_equal(p.m.payload_len, strlen(pl[i]));
        assert_memory_equal(p.m.payload, pl[i], strlen(pl[i]));
        assert_int_equal(p.m.id[6] >> 4, 4);      /* version 4 */
        assert_int_equal(p.m.id[8] & 0xc0, 0x80); /* RFC 4122 variant */
        memcpy(ids[i], p.m.id, 16);
        /* Space padding on the wire. */
        assert_int_equal(p.buf[4 + strlen(SSM_MT_INPUT)], ' ');
    }
    assert_memory_not_equal(ids[0], ids[1], 16);
    assert_memory_not_equal(ids[1], ids[2], 16);
    pulled p;
    assert_false(pull(h, &p));
    assert_false(ssm_chan_want_write(h->c, h->now));
    ssm_chan_stats st = stats(h);
    assert_int_equal(st.sent_msgs, 3);
    assert_int_equal(st.unacked_msgs, 3);
    assert_int_equal(st.next_seq, 3);
    /* A cap too small for the frame yields 0 and loses nothing. */
    h->now += 200;
    uint8_t tiny[50];
    assert_int_equal(ssm_chan_pull(h->c, h->now, tiny, sizeof tiny), 0);
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, 0);
    rm(h);
}

static void test_inorder_delivery_and_ack_fields(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    for (int64_t s = 0; s < 3; s++)
        assert_int_equal(agent_data(h, s), SSM_CHAN_OK);
    assert_int_equal(h->ngot, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(h->got[i], i);
        assert_int_equal(h->got_type[i], SSM_PT_OUTPUT);
    }
    uint8_t prev_id[16] = {0};
    for (int64_t s = 0; s < 3; s++) {
        pulled p;
        assert_true(pull(h, &p));
        assert_string_equal(p.m.type, SSM_MT_ACK);
        assert_int_equal(p.m.seq, 0);
        assert_int_equal(p.m.flags, 3);
        assert_int_equal(p.m.payload_type, 0);
        assert_int_equal(p.m.schema_version, 1);
        assert_int_equal(p.m.created_ms, (uint64_t)WALL_OFFSET + h->now);
        assert_int_equal(p.m.id[6] >> 4, 4);
        assert_memory_not_equal(p.m.id, prev_id, 16);
        memcpy(prev_id, p.m.id, 16);
        cJSON *j = cJSON_ParseWithLength((const char *)p.m.payload, p.m.payload_len);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(j, "AcknowledgedMessageType")->valuestring,
                            "output_stream_data");
        uint8_t id[16];
        char want[SSM_UUID_STRLEN + 1];
        id_for(s, id);
        ssm_uuid_format(id, want);
        assert_string_equal(cJSON_GetObjectItem(j, "AcknowledgedMessageId")->valuestring, want);
        assert_int_equal(
            (int64_t)cJSON_GetObjectItem(j, "AcknowledgedMessageSequenceNumber")->valuedouble, s);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "IsSequentialMessage")));
        cJSON_Delete(j);
    }
    pulled p;
    assert_false(pull(h, &p));
    ssm_chan_stats st = stats(h);
    assert_int_equal(st.expected_seq, 3);
    assert_int_equal(st.acks_sent, 3);
    assert_int_equal(st.recv_msgs, 3);
    rm(h);
}

static void test_created_date_never_zero(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    ssm_chan_set_clock_offset(h->c, -(int64_t)h->now - 5000);
    send_tag(h, 1);
    assert_int_equal(agent_data(h, 0), SSM_CHAN_OK);
    pulled p;
    assert_true(pull(h, &p)); /* ack */
    assert_int_equal(p.m.created_ms, 1);
    assert_true(pull(h, &p)); /* data */
    assert_int_equal(p.m.created_ms, 1);
    ssm_chan_set_clock_offset(h->c, INT64_MAX);
    h->now = UINT64_MAX - 3;
    send_tag(h, 2);
    assert_true(pull(h, &p));
    assert_int_equal(p.m.created_ms, UINT64_MAX);
    rm(h);
}

/* The official estimator (§7.4) with exact numbers, and Karn's rule. */
static void test_rtt_estimator_exact(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    ssm_chan_stats st = stats(h);
    assert_true(st.rtt_ms == 100.0 && st.rttvar_ms == 0.0 && st.rto_ms == 200.0);

    pulled p;
    send_tag(h, 0);
    assert_true(pull(h, &p));
    h->now += 50;
    agent_ack(h, 0);
    st = stats(h);
    assert_true(st.rttvar_ms == 12.5);
    assert_true(st.rtt_ms == 93.75);
    assert_true(st.rto_ms == 143.75);

    send_tag(h, 1);
    assert_true(pull(h, &p));
    h->now += 300;
    agent_ack(h, 1);
    st = stats(h);
    assert_true(st.rttvar_ms == 60.9375);
    assert_true(st.rtt_ms == 119.53125);
    assert_true(st.rto_ms == 119.53125 + 243.75);

    /* A huge sample caps RTO at 1 s. */
    send_tag(h, 2);
    assert_true(pull(h, &p));
    h->now += 5000;
    agent_ack(h, 2);
    st = stats(h);
    assert_true(st.rto_ms == 1000.0);
    assert_true(st.rtt_ms == 0.875 * 119.53125 + 0.125 * 5000);
    rm(h);

    /* Zero variance: RTO = RTT + G. */
    h = mk(NULL);
    send_tag(h, 0);
    assert_true(pull(h, &p));
    h->now += 100;
    agent_ack(h, 0);
    st = stats(h);
    assert_true(st.rtt_ms == 100.0 && st.rttvar_ms == 0.0 && st.rto_ms == 110.0);

    /* Karn: the ack of a retransmitted message gives no sample. */
    send_tag(h, 1);
    assert_true(pull(h, &p));
    h->now += 110;
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, 1);
    h->now += 5;
    agent_ack(h, 1);
    st = stats(h);
    assert_true(st.rtt_ms == 100.0 && st.rttvar_ms == 0.0 && st.rto_ms == 110.0);
    assert_int_equal(st.unacked_msgs, 0);
    assert_int_equal(st.acks_received, 2);
    rm(h);
}

/* Loss client -> agent: retransmission exactly at RTO, same bytes, RTO not
 * doubled, send time refreshed. */
static void test_retransmission_timing(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    send_tag(h, 7);
    pulled first, p;
    assert_true(pull(h, &first));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 200);
    uint64_t t0 = h->now;
    h->now = t0 + 199;
    assert_false(ssm_chan_want_write(h->c, h->now));
    assert_false(pull(h, &p));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 1);
    h->now = t0 + 200;
    assert_true(ssm_chan_want_write(h->c, h->now));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 0);
    assert_true(pull(h, &p));
    assert_int_equal(p.len, first.len);
    assert_memory_equal(p.buf, first.buf, p.len); /* same id, seq, date, digest */
    assert_false(pull(h, &p));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 200); /* not doubled */
    h->now = t0 + 399;
    assert_false(pull(h, &p));
    h->now = t0 + 400;
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, 0);
    assert_int_equal(stats(h).retransmits, 2);

    /* Several outstanding: only the expired ones, oldest first. */
    h->now = t0 + 450;
    send_tag(h, 8);
    send_tag(h, 9);
    int64_t data[16];
    int nd;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 2);
    assert_int_equal(data[0], 1);
    assert_int_equal(data[1], 2);
    agent_ack(h, 1); /* 0 and 2 stay lost */
    h->now = t0 + 600;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 1);
    assert_int_equal(data[0], 0); /* last sent at 400 */
    h->now = t0 + 650;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 1);
    assert_int_equal(data[0], 2); /* first sent at 450 */
    h->now = t0 + 800;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 1);
    assert_int_equal(data[0], 0);
    agent_ack(h, 0);
    agent_ack(h, 2);
    assert_int_equal(stats(h).unacked_msgs, 0);
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), -1);
    rm(h);
}

/* Retransmission bursts are capped per round; the head-of-line message is
 * outside the budget; next_timeout names the end of the round (never 0 while
 * held back). */
static void test_retransmission_burst_cap(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    for (int i = 0; i < 40; i++)
        send_tag(h, i);
    int64_t data[64];
    int nd;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 40);
    h->now += 200;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 1 + CHAN_RETX_BURST);
    for (int i = 0; i < nd; i++)
        assert_int_equal(data[i], i); /* head, then the least recently sent */
    assert_false(ssm_chan_want_write(h->c, h->now));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), CHAN_RETX_ROUND_MS);
    h->now += CHAN_RETX_ROUND_MS - 1;
    assert_false(ssm_chan_want_write(h->c, h->now));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 1);
    h->now += 1;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, CHAN_RETX_BURST); /* head not due again until +200 */
    assert_int_equal(data[0], CHAN_RETX_BURST + 1);
    assert_int_equal(data[nd - 1], 2 * CHAN_RETX_BURST);
    rm(h);
}

/* Messages behind the head back off exponentially per resend (capped at
 * RTO << CHAN_RETX_BACKOFF_MAX_SHIFT); the head is resent every RTO. */
static void test_retransmission_backoff(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    uint64_t t0 = h->now;
    send_tag(h, 0);
    send_tag(h, 1);
    int64_t data[8];
    int nd;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 2);
    /* Count resends of each over 20 s with the timer driving the clock. */
    int resends[2] = {0, 0};
    uint64_t last1 = t0, gap1[16];
    int ngap = 0;
    while (h->now < t0 + 20000) {
        int64_t to = ssm_chan_next_timeout(h->c, h->now);
        assert_true(to > 0);
        h->now += (uint64_t)to;
        drain(h, NULL, NULL, data, &nd);
        assert_true(nd >= 1); /* a timeout that fires always yields a frame */
        for (int i = 0; i < nd; i++) {
            resends[data[i]]++;
            if (data[i] == 1) {
                if (ngap < 16)
                    gap1[ngap++] = h->now - last1;
                last1 = h->now;
            }
        }
    }
    assert_int_equal(resends[0], 100); /* every 200 ms */
    assert_true(ngap >= 5);
    assert_int_equal(gap1[0], 200);
    assert_int_equal(gap1[1], 400);
    assert_int_equal(gap1[2], 800);
    assert_int_equal(gap1[3], 1600);
    assert_int_equal(gap1[4], 1600); /* capped */
    assert_int_equal(resends[1], 4 + (20000 - 3000) / 1600);
    /* Once the head is acked, the old tail becomes the head: one RTO again. */
    agent_ack(h, 0);
    assert_true(ssm_chan_next_timeout(h->c, h->now) <= 200);
    rm(h);
}

/* Invariant behind the session's timer: next_timeout is 0 exactly when
 * there is a frame to pull; otherwise nothing becomes pullable before the
 * returned time. Random sends, acks, losses, pauses and reconnects. */
static void test_next_timeout_consistent(void **state)
{
    (void)state;
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    cfg.send_window_msgs = 64;
    cfg.pace_msgs_per_sec = 500;
    cfg.pace_burst = 4;
    harness *h = mk(&cfg);
    uint64_t rng = 12345;
    int64_t tag = 0;
    pulled p;
    for (int step = 0; step < 20000; step++) {
        unsigned r = (unsigned)(xorshift(&rng) % 100);
        if (r < 30 && ssm_chan_send_space(h->c) >= sizeof tag)
            send_tag(h, tag++);
        else if (r < 45) {
            ssm_chan_stats st = stats(h);
            if (st.next_seq > 0)
                agent_ack(h, (int64_t)(xorshift(&rng) % (uint64_t)st.next_seq));
        } else if (r < 46)
            ssm_chan_transport_down(h->c);
        else if (r < 48)
            ssm_chan_transport_up(h->c, h->now);
        else if (r < 49)
            agent_simple(h, SSM_MT_PAUSE_PUB, NULL, 0);
        else if (r < 51)
            agent_simple(h, SSM_MT_START_PUB, NULL, 0);
        int64_t to = ssm_chan_next_timeout(h->c, h->now);
        bool ww = ssm_chan_want_write(h->c, h->now);
        assert_int_equal(to == 0, ww);
        if (to == 0) {
            /* Pull a few (or all) of them; lost ones stay unacked. */
            int k = (int)(xorshift(&rng) % 4);
            while (k-- > 0 && pull(h, &p))
                ;
        } else if (to > 0) {
            uint64_t jump = (uint64_t)to - 1;
            assert_false(ssm_chan_want_write(h->c, h->now + jump));
            h->now += (uint64_t)(xorshift(&rng) % (uint64_t)to) + 1;
        } else {
            assert_false(ssm_chan_want_write(h->c, h->now + 100000));
            h->now += 50;
        }
    }
    assert_true(stats(h).retransmits > 100);
    rm(h);
}

/* Loss agent -> client, and duplicates: buffered ahead, acked, delivered in
 * order once the gap fills; duplicates re-acked, never re-delivered. */
static void test_loss_and_duplicates_incoming(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    int64_t acks[64];
    int na;
    agent_data(h, 0);
    agent_data(h, 2); /* 1 lost */
    agent_data(h, 3);
    assert_int_equal(h->ngot, 1);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 3);
    assert_int_equal(acks[0], 0);
    assert_int_equal(acks[1], 2);
    assert_int_equal(acks[2], 3);
    assert_int_equal(stats(h).buffered_msgs, 2);
    agent_data(h, 3); /* duplicate of a buffered one */
    assert_int_equal(h->ngot, 1);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 1);
    assert_int_equal(acks[0], 3);
    agent_data(h, 1); /* the retransmission */
    assert_int_equal(h->ngot, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(h->got[i], i);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 1);
    assert_int_equal(acks[0], 1);
    /* Old duplicates: re-acked (recommended deviation), not re-delivered. */
    agent_data(h, 0);
    agent_data(h, 2);
    assert_int_equal(h->ngot, 4);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 2);
    assert_int_equal(acks[0], 0);
    assert_int_equal(acks[1], 2);
    ssm_chan_stats st = stats(h);
    assert_int_equal(st.recv_dup, 3);
    assert_int_equal(st.recv_early, 2);
    assert_int_equal(st.expected_seq, 4);
    assert_int_equal(st.buffered_msgs, 0);
    rm(h);
}

/* Too far ahead or too big for the pool: dropped unacked. */
static void test_reorder_limits(void **state)
{
    (void)state;
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    cfg.reorder_slots = 8;
    cfg.max_payload = 16;
    harness *h = mk(&cfg);
    int64_t acks[64];
    int na;
    agent_data(h, 8); /* distance 8 == slots: no room */
    agent_data(h, 7);
    uint8_t f[MAXF];
    uint8_t big[17] = {0};
    size_t n = build(f, SSM_MT_OUTPUT, 3, SSM_PT_OUTPUT, big, sizeof big);
    ssm_chan_receive(h->c, f, n, h->now);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 1);
    assert_int_equal(acks[0], 7);
    assert_int_equal(stats(h).recv_dropped, 2);
    /* In order, an oversized payload is still delivered directly. */
    n = build(f, SSM_MT_OUTPUT, 0, SSM_PT_OUTPUT, big, sizeof big);
    ssm_chan_receive(h->c, f, n, h->now);
    assert_int_equal(h->ngot, 1);
    /* A sequence number near INT64_MAX is far ahead: no overflow, dropped. */
    agent_data(h, INT64_MAX);
    agent_data(h, INT64_MAX - 1);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 1);
    assert_int_equal(acks[0], 0);
    rm(h);
}

/* Random permutations of a window with random duplicates: every message is
 * delivered once, in order, and acknowledged only after it was received. */
static void test_reorder_permutations(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    for (int round = 0; round < 200; round++) {
        harness *h = mk(NULL);
        int n = 1 + (int)(xorshift(&rng) % 128);
        int64_t order[512];
        int no = 0;
        for (int i = 0; i < n; i++)
            order[no++] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(xorshift(&rng) % (uint64_t)(i + 1));
            int64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int d = (int)(xorshift(&rng) % 20); d > 0; d--) /* duplicates */
            order[no++] = (int64_t)(xorshift(&rng) % (uint64_t)n);
        bool seen[128] = {0};
        int acked_count[128] = {0};
        for (int k = 0; k < no; k++) {
            agent_data(h, order[k]);
            seen[order[k]] = true;
            int64_t acks[256];
            int na;
            drain(h, acks, &na, NULL, NULL);
            for (int a = 0; a < na; a++) {
                assert_true(acks[a] >= 0 && acks[a] < n);
                assert_true(seen[acks[a]]);
                acked_count[acks[a]]++;
            }
        }
        assert_int_equal(h->ngot, n);
        for (int i = 0; i < n; i++) {
            assert_int_equal(h->got[i], i);
            assert_true(acked_count[i] >= 1);
        }
        assert_int_equal(stats(h).buffered_msgs, 0);
        rm(h);
    }
}

/* Lost acks: retransmission; duplicate, stale and never-sent acks harmless. */
static void test_ack_loss_and_bogus_acks(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    for (int i = 0; i < 3; i++)
        send_tag(h, i);
    drain(h, NULL, NULL, NULL, NULL);
    agent_ack(h, 5);  /* never sent */
    agent_ack(h, -1); /* nonsense */
    agent_ack(h, 1);  /* 0's ack lost */
    agent_ack(h, 1);  /* duplicate */
    ssm_chan_stats st = stats(h);
    assert_int_equal(st.unacked_msgs, 2);
    assert_int_equal(st.acks_received, 4);
    h->now += 200;
    int64_t data[8];
    int nd;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 2);
    assert_int_equal(data[0], 0);
    assert_int_equal(data[1], 2);
    agent_ack(h, 0);
    agent_ack(h, 2);
    agent_ack(h, 0); /* stale */
    st = stats(h);
    assert_int_equal(st.unacked_msgs, 0);
    assert_int_equal(st.unacked_bytes, 0);
    /* Sequence numbers continue; an ack for a not-yet-pulled one is ignored. */
    send_tag(h, 3);
    agent_ack(h, 3);
    assert_int_equal(stats(h).unacked_msgs, 1);
    pulled p;
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, 3);
    rm(h);
}

static void test_stall_and_give_up(void **state)
{
    (void)state;
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    harness *h = mk(&cfg);
    uint64_t t0 = h->now;
    /* Never transmitted (transport down) is not a stall. */
    ssm_chan_transport_down(h->c);
    send_tag(h, 0);
    h->now += 400000;
    assert_false(ssm_chan_timed_out(h->c, h->now));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), -1);
    ssm_chan_transport_up(h->c, h->now);
    t0 = h->now;
    pulled p;
    assert_true(pull(h, &p));
    h->now += 1000;
    send_tag(h, 1);
    drain(h, NULL, NULL, NULL, NULL);
    /* Retransmitting for the whole period keeps it alive until give_up. */
    int rounds = 0;
    for (;;) {
        int64_t to = ssm_chan_next_timeout(h->c, h->now);
        assert_true(to > 0 && to <= 1000);
        if (h->now + (uint64_t)to > t0 + 300000)
            break;
        h->now += (uint64_t)to;
        assert_false(ssm_chan_timed_out(h->c, h->now));
        assert_true(drain(h, NULL, NULL, NULL, NULL) >= 1);
        rounds++;
    }
    assert_true(rounds > 300);
    h->now = t0 + 300000;
    assert_false(ssm_chan_timed_out(h->c, h->now));
    h->now = t0 + 300001;
    assert_true(ssm_chan_timed_out(h->c, h->now));
    /* The oldest one counts: acking it clears the stall. */
    agent_ack(h, 0);
    assert_false(ssm_chan_timed_out(h->c, h->now));
    rm(h);

    /* next_timeout reports the give-up deadline when it is nearest. */
    cfg.give_up_ms = 50;
    h = mk(&cfg);
    send_tag(h, 0);
    assert_true(pull(h, &p));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 51);
    ssm_chan_transport_down(h->c);
    h->now += 10;
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 41);
    h->now += 41;
    assert_true(ssm_chan_timed_out(h->c, h->now));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), -1);
    rm(h);
}

/* Window full -> EFULL; acks free it -> on_send_space once; nothing evicted. */
static void test_window_full(void **state)
{
    (void)state;
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    cfg.max_payload = 100;
    cfg.send_window_bytes = 3 * (120 + 100) + 50;
    harness *h = mk(&cfg);
    uint8_t buf[100] = {0};
    for (int i = 0; i < 3; i++) {
        memcpy(buf, &i, sizeof i);
        assert_int_equal(ssm_chan_send(h->c, 1, buf, 100, h->now), SSM_CHAN_OK);
    }
    assert_int_equal(ssm_chan_send_space(h->c), 0); /* 50 bytes left: no frame fits */
    assert_int_equal(ssm_chan_send(h->c, 1, buf, 1, h->now), SSM_CHAN_EFULL);
    assert_int_equal(ssm_chan_send(h->c, 1, buf, 0, h->now), SSM_CHAN_EFULL);
    drain(h, NULL, NULL, NULL, NULL);
    agent_ack(h, 1); /* not the head: no bytes freed */
    assert_int_equal(h->space_calls, 0);
    assert_int_equal(ssm_chan_send_space(h->c), 0);
    agent_ack(h, 0); /* head and 1 freed */
    assert_int_equal(h->space_calls, 1);
    assert_int_equal(ssm_chan_send_space(h->c), 100);
    agent_ack(h, 2);
    assert_int_equal(h->space_calls, 1); /* once per starvation */
    /* The ring wraps: frames (and their retransmissions) keep their bytes
     * across the end. One message stays outstanding so the head moves on. */
    int64_t pending = -1;
    for (int round = 0; round < 30; round++) {
        size_t len = 37 + (size_t)round * 2;
        for (size_t b = 0; b < len; b++)
            buf[b] = (uint8_t)(round * 3 + b);
        assert_int_equal(ssm_chan_send(h->c, 1, buf, len, h->now), SSM_CHAN_OK);
        pulled p, r;
        assert_true(pull(h, &p));
        assert_int_equal(p.m.payload_len, len);
        for (size_t b = 0; b < len; b++)
            assert_int_equal(p.m.payload[b], (uint8_t)(round * 3 + b));
        h->now += 1000;
        assert_true(pull(h, &r));
        if (pending >= 0) {
            assert_int_equal(r.m.seq, pending);
            assert_true(pull(h, &r));
        }
        assert_int_equal(r.len, p.len);
        assert_memory_equal(r.buf, p.buf, p.len);
        if (pending >= 0)
            agent_ack(h, pending);
        pending = p.m.seq;
    }
    rm(h);

    /* The message-count cap. */
    ssm_chan_config_default(&cfg);
    cfg.send_window_msgs = 4;
    h = mk(&cfg);
    for (int i = 0; i < 4; i++)
        send_tag(h, i);
    assert_int_equal(ssm_chan_send_space(h->c), 0);
    int64_t tag = 9;
    assert_int_equal(ssm_chan_send(h->c, 1, (uint8_t *)&tag, 8, h->now), SSM_CHAN_EFULL);
    drain(h, NULL, NULL, NULL, NULL);
    agent_ack(h, 0);
    assert_int_equal(h->space_calls, 1);
    send_tag(h, 4);
    assert_int_equal(stats(h).next_seq, 5);
    rm(h);
}

static void test_pause_start_publication(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    send_tag(h, 0);
    agent_simple(h, SSM_MT_PAUSE_PUB, NULL, 0);
    assert_true(stats(h).paused);
    assert_false(ssm_chan_want_write(h->c, h->now));
    pulled p;
    assert_false(pull(h, &p));
    agent_simple(h, SSM_MT_START_PUB, NULL, 0);
    assert_false(stats(h).paused);
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, 0);
    /* Paused: no retransmission either, but acks flow. */
    agent_simple(h, SSM_MT_PAUSE_PUB, NULL, 0);
    h->now += 1000;
    assert_false(pull(h, &p));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 300000 - 1000 + 1);
    /* output_stream_data unpauses (and is acked). */
    agent_data(h, 0);
    assert_false(stats(h).paused);
    assert_true(pull(h, &p));
    assert_string_equal(p.m.type, SSM_MT_ACK);
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, 0); /* the overdue retransmission */
    /* An acknowledge unpauses. */
    agent_simple(h, SSM_MT_PAUSE_PUB, NULL, 0);
    agent_data(h, 1); /* unpauses, ack queued */
    agent_simple(h, SSM_MT_PAUSE_PUB, NULL, 0);
    send_tag(h, 1);
    assert_true(pull(h, &p));
    assert_string_equal(p.m.type, SSM_MT_ACK); /* acks flow while paused */
    assert_false(pull(h, &p));
    agent_ack(h, 0);
    assert_false(stats(h).paused);
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, 1);
    /* transport_up unpauses. */
    agent_simple(h, SSM_MT_PAUSE_PUB, NULL, 0);
    ssm_chan_transport_down(h->c);
    ssm_chan_transport_up(h->c, h->now);
    assert_false(stats(h).paused);
    rm(h);
}

/* Reconnect: everything unacked is replayed in sequence order; counters,
 * the reorder pool and pending acks persist. */
static void test_transport_down_up(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    for (int i = 0; i < 5; i++)
        send_tag(h, i);
    pulled p;
    for (int i = 0; i < 3; i++)
        assert_true(pull(h, &p));
    agent_ack(h, 1);
    agent_data(h, 0);
    agent_data(h, 2);
    ssm_chan_transport_down(h->c);
    assert_false(ssm_chan_want_write(h->c, h->now));
    assert_false(pull(h, &p)); /* not even acks */
    h->now += 5000;
    assert_false(pull(h, &p));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 300000 - 5000 + 1);
    send_tag(h, 5);
    ssm_chan_transport_up(h->c, h->now);
    int64_t acks[8], data[8];
    int na, nd;
    drain(h, acks, &na, data, &nd);
    assert_int_equal(na, 2); /* acks queued before the drop still go out */
    assert_int_equal(acks[0], 0);
    assert_int_equal(acks[1], 2);
    int64_t want[] = {0, 2, 3, 4, 5};
    assert_int_equal(nd, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(data[i], want[i]);
    ssm_chan_stats st = stats(h);
    assert_int_equal(st.retransmits, 2); /* 0 and 2 were replays */
    assert_int_equal(st.sent_msgs, 6);
    assert_int_equal(st.next_seq, 6);
    assert_int_equal(st.expected_seq, 1);
    assert_int_equal(st.buffered_msgs, 1);
    agent_data(h, 1);
    assert_int_equal(h->ngot, 3);
    /* A replayed message's ack gives no RTT sample (Karn). */
    h->now += 30;
    double rtt = stats(h).rtt_ms;
    agent_ack(h, 0);
    assert_true(stats(h).rtt_ms == rtt);
    agent_ack(h, 3); /* first transmission: sampled, R = 30 */
    assert_true(stats(h).rtt_ms == 0.875 * rtt + 0.125 * 30);
    rm(h);
}

/* NOT_READY: held unacked, delivered and acked on resume or on the
 * retransmission; a NOT_READY during the drain keeps the rest. */
static void test_not_ready(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    int64_t acks[16];
    int na;
    h->not_ready = 1;
    agent_data(h, 0);
    assert_int_equal(h->ngot, 0);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 0); /* never acked before delivery */
    agent_data(h, 1);
    agent_data(h, 2);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 2); /* early ones are safely buffered */
    assert_int_equal(stats(h).buffered_msgs, 3);
    ssm_chan_resume_delivery(h->c, h->now); /* still not ready */
    assert_int_equal(h->ngot, 0);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 0);
    h->not_ready = 0;
    ssm_chan_resume_delivery(h->c, h->now);
    assert_int_equal(h->ngot, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(h->got[i], i);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 1);
    assert_int_equal(acks[0], 0);
    assert_int_equal(stats(h).expected_seq, 3);

    /* Retransmission retries delivery without a resume call. */
    h->not_ready = 1;
    agent_data(h, 3);
    h->not_ready = 0;
    agent_data(h, 3);
    assert_int_equal(h->ngot, 4);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 1);
    assert_int_equal(acks[0], 3);

    /* NOT_READY in the middle of a drain stops it and keeps the rest. */
    agent_data(h, 5);
    agent_data(h, 6);
    drain(h, acks, &na, NULL, NULL);
    h->not_ready = 1;
    h->payload_calls = 0;
    agent_data(h, 4);
    assert_int_equal(h->payload_calls, 1);
    h->not_ready = 0;
    ssm_chan_resume_delivery(h->c, h->now);
    assert_int_equal(h->ngot, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(h->got[i], i);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 1);
    assert_int_equal(acks[0], 4);
    rm(h);

    /* Without a reorder pool a refused message is dropped, unacked. */
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    cfg.reorder_slots = 0;
    h = mk(&cfg);
    h->not_ready = 1;
    agent_data(h, 0);
    agent_data(h, 1);
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, 0);
    assert_int_equal(stats(h).recv_dropped, 2);
    h->not_ready = 0;
    ssm_chan_resume_delivery(h->c, h->now);
    assert_int_equal(h->ngot, 0);
    agent_data(h, 0);
    assert_int_equal(h->ngot, 1);
    rm(h);
}

/* Handshake-style: on_payload sends a reply; the ack goes out first. */
static void test_send_from_payload(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    h->sends_from_payload = 10;
    uint8_t f[MAXF];
    const char *req = "{\"AgentVersion\":\"3.3.0.0\",\"RequestedClientActions\":[]}";
    size_t n = build(f, SSM_MT_OUTPUT, 0, SSM_PT_HANDSHAKE_REQUEST, req, strlen(req));
    assert_int_equal(ssm_chan_receive(h->c, f, n, h->now), SSM_CHAN_OK);
    assert_int_equal(h->got_type[0], SSM_PT_HANDSHAKE_REQUEST);
    pulled p;
    assert_true(pull(h, &p));
    assert_string_equal(p.m.type, SSM_MT_ACK);
    assert_true(pull(h, &p));
    assert_string_equal(p.m.type, SSM_MT_INPUT);
    assert_int_equal(p.m.payload_type, SSM_PT_HANDSHAKE_RESPONSE);
    rm(h);
}

static void test_seq_near_int64_max(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    assert_int_equal(ssm_chan_test_set_seq(h->c, INT64_MAX - 2, INT64_MAX - 3), 0);
    int64_t acks[16];
    int na;
    agent_data(h, INT64_MAX);
    agent_data(h, INT64_MAX - 2);
    agent_data(h, INT64_MAX - 5); /* duplicate from "before" */
    agent_data(h, INT64_MAX - 3);
    assert_int_equal(h->ngot, 2);
    assert_int_equal(h->got[0], INT64_MAX - 3);
    assert_int_equal(h->got[1], INT64_MAX - 2);
    agent_data(h, INT64_MAX - 1);
    assert_int_equal(h->ngot, 4);
    assert_int_equal(h->got[3], INT64_MAX);
    agent_data(h, INT64_MAX); /* after the last one: duplicate */
    agent_data(h, 0);
    assert_int_equal(h->ngot, 4);
    drain(h, acks, &na, NULL, NULL);
    int64_t want[] = {
        INT64_MAX, INT64_MAX - 2, INT64_MAX - 5, INT64_MAX - 3, INT64_MAX - 1, INT64_MAX, 0};
    assert_int_equal(na, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(acks[i], want[i]);
    ssm_chan_stats st = stats(h);
    assert_int_equal(st.expected_seq, INT64_MAX);

    /* Outgoing: numbers up to INT64_MAX - 1, then the window stays full. */
    send_tag(h, 1);
    send_tag(h, 2);
    assert_int_equal(ssm_chan_send_space(h->c), 0);
    int64_t t = 3;
    assert_int_equal(ssm_chan_send(h->c, 1, (uint8_t *)&t, 8, h->now), SSM_CHAN_EFULL);
    pulled p;
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, INT64_MAX - 2);
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, INT64_MAX - 1);
    /* The test hook refuses while anything is outstanding. */
    assert_int_equal(ssm_chan_test_set_seq(h->c, 0, 0), -1);
    rm(h);

    /* Acks near 2^53 (the largest a JSON number carries exactly). */
    h = mk(NULL);
    int64_t big = (int64_t)1 << 53;
    assert_int_equal(ssm_chan_test_set_seq(h->c, big - 1, 0), 0);
    send_tag(h, 0);
    send_tag(h, 1);
    drain(h, NULL, NULL, NULL, NULL);
    agent_ack(h, big);
    agent_ack(h, big - 1);
    assert_int_equal(stats(h).unacked_msgs, 0);
    rm(h);
}

/* Malformed frames: dropped, counted, never acked, never fatal. */
static void test_malformed(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    uint8_t f[MAXF];
    int64_t seq = 0;
    size_t n = build(f, SSM_MT_OUTPUT, 0, SSM_PT_OUTPUT, &seq, sizeof seq);
    int bad = 0;
    /* truncations */
    for (size_t cut = 0; cut < n; cut += 7) {
        assert_int_equal(ssm_chan_receive(h->c, f, cut, h->now), SSM_CHAN_EINVAL);
        bad++;
    }
    /* digest mismatch */
    uint8_t g[MAXF];
    memcpy(g, f, n);
    g[n - 1] ^= 1;
    assert_int_equal(ssm_chan_receive(h->c, g, n, h->now), SSM_CHAN_EINVAL);
    bad++;
    /* CreatedDate 0 */
    memcpy(g, f, n);
    memset(g + 40, 0, 8);
    assert_int_equal(ssm_chan_receive(h->c, g, n, h->now), SSM_CHAN_EINVAL);
    bad++;
    /* HeaderLength lying past the end */
    memcpy(g, f, n);
    g[0] = 0x7f;
    assert_int_equal(ssm_chan_receive(h->c, g, n, h->now), SSM_CHAN_EINVAL);
    bad++;
    /* acknowledge with a bad body */
    n = build(g, SSM_MT_ACK, 0, 0, "{not json", 9);
    assert_int_equal(ssm_chan_receive(h->c, g, n, h->now), SSM_CHAN_EINVAL);
    bad++;
    n = build(g, SSM_MT_ACK, 0, 0, "", 0);
    assert_int_equal(ssm_chan_receive(h->c, g, n, h->now), SSM_CHAN_EINVAL);
    bad++;
    /* negative sequence number */
    int64_t neg = -4;
    n = build(g, SSM_MT_OUTPUT, -4, SSM_PT_OUTPUT, &neg, sizeof neg);
    assert_int_equal(ssm_chan_receive(h->c, g, n, h->now), SSM_CHAN_EINVAL);
    bad++;
    assert_int_equal(ssm_chan_receive(h->c, NULL, 0, h->now), SSM_CHAN_EINVAL);
    assert_int_equal(stats(h).recv_invalid, (uint64_t)bad);
    pulled p;
    assert_false(pull(h, &p));
    assert_int_equal(h->ngot, 0);
    /* Still works. */
    agent_data(h, 0);
    assert_int_equal(h->ngot, 1);
    assert_true(pull(h, &p));
    rm(h);
}

static void test_channel_closed_and_unknown(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    const char *js = "{\"MessageType\":\"channel_closed\",\"SchemaVersion\":1,"
                     "\"Output\":\"port 22 refused\",\"SessionId\":5}";
    assert_int_equal(agent_simple(h, SSM_MT_CHANNEL_CLOSED, js, strlen(js)), SSM_CHAN_OK);
    assert_int_equal(h->closed, 1);
    assert_string_equal(h->closed_out, "port 22 refused");
    assert_int_equal(agent_simple(h, SSM_MT_CHANNEL_CLOSED, "nope", 4), SSM_CHAN_OK);
    assert_int_equal(h->closed, 2);
    assert_string_equal(h->closed_out, "");
    pulled p;
    assert_false(pull(h, &p)); /* not acknowledged */
    assert_int_equal(agent_simple(h, "agent_session_state", "{}", 2), SSM_CHAN_OK);
    assert_int_equal(agent_simple(h, "something_new", "x", 1), SSM_CHAN_OK);
    uint8_t f[MAXF];
    int64_t s = 0;
    size_t n = build(f, SSM_MT_INPUT, 0, 1, &s, 8); /* never sent to us: ignored */
    assert_int_equal(ssm_chan_receive(h->c, f, n, h->now), SSM_CHAN_OK);
    assert_false(pull(h, &p));
    assert_int_equal(h->ngot, 0);
    rm(h);
}

static void test_pacing(void **state)
{
    (void)state;
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    cfg.pace_msgs_per_sec = 10;
    cfg.pace_burst = 2;
    harness *h = mk(&cfg);
    for (int i = 0; i < 6; i++)
        send_tag(h, i);
    assert_int_equal(ssm_chan_unsent(h->c), 6);
    int64_t data[8];
    int nd;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 2);
    assert_int_equal(ssm_chan_unsent(h->c), 4); /* the rest waits for tokens */
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 100);
    h->now += 99;
    assert_false(ssm_chan_want_write(h->c, h->now));
    assert_int_equal(ssm_chan_next_timeout(h->c, h->now), 1);
    h->now += 1;
    drain(h, NULL, NULL, data, &nd);
    assert_int_equal(nd, 1);
    assert_int_equal(data[0], 2);
    /* Acks are never paced; a long idle refills only up to the burst. */
    agent_data(h, 0);
    agent_data(h, 1);
    agent_data(h, 2);
    agent_ack(h, 0);
    agent_ack(h, 1);
    agent_ack(h, 2);
    h->now += 10000;
    int64_t acks[8];
    int na;
    drain(h, acks, &na, data, &nd);
    assert_int_equal(na, 3);
    assert_int_equal(nd, 2);
    assert_int_equal(data[0], 3);
    assert_int_equal(data[1], 4);
    assert_int_equal(ssm_chan_unsent(h->c), 1); /* acks of sent ones change nothing */
    assert_int_equal(ssm_chan_unsent(NULL), 0);
    rm(h);
}

/* The unsent backlog after a reconnect: replays count until pulled, and
 * acks (late ones for the previous connection) shrink it without a pull. */
static void test_unsent_after_reconnect(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    for (int i = 0; i < 3; i++)
        send_tag(h, i);
    assert_int_equal(ssm_chan_unsent(h->c), 3);
    drain(h, NULL, NULL, NULL, NULL);
    assert_int_equal(ssm_chan_unsent(h->c), 0);
    ssm_chan_transport_down(h->c);
    ssm_chan_transport_up(h->c, h->now);
    assert_int_equal(ssm_chan_unsent(h->c), 3); /* to replay */
    agent_ack(h, 1);
    agent_ack(h, 2);
    assert_int_equal(ssm_chan_unsent(h->c), 3); /* the head still waits */
    agent_ack(h, 0);
    assert_int_equal(ssm_chan_unsent(h->c), 0); /* all acked, nothing pulled */
    rm(h);
}

/* Pending acks are bounded; overflow drops the oldest. */
static void test_ack_queue_overflow(void **state)
{
    (void)state;
    harness *h = mk(NULL);
    int total = CHAN_ACK_SLOTS + 10;
    for (int i = 0; i < total; i++)
        agent_data(h, i);
    assert_int_equal(h->ngot, total);
    int64_t *acks = calloc((size_t)total, sizeof *acks);
    int na;
    drain(h, acks, &na, NULL, NULL);
    assert_int_equal(na, CHAN_ACK_SLOTS);
    assert_int_equal(acks[0], 10);
    assert_int_equal(acks[na - 1], total - 1);
    free(acks);
    /* The agent retransmits an unacked one: re-acked. */
    agent_data(h, 3);
    pulled p;
    assert_true(pull(h, &p));
    assert_int_equal(ack_seq_of(&p), 3);
    rm(h);
}

/* ssm_chan_trim: buffers are handed back only while they hold nothing. */
typedef struct released {
    const void *p[4];
    size_t n[4];
    int count;
} released;

static void record_release(void *ctx, void *p, size_t n)
{
    released *r = ctx;
    assert_true(r->count < 4);
    r->p[r->count] = p;
    r->n[r->count++] = n;
    memset(p, 0xA5, n); /* what the channel must not rely on any more */
}

static void test_trim(void **state)
{
    (void)state;
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    cfg.reorder_slots = 8;
    cfg.max_payload = 1024;
    harness *h = mk(&cfg);
    released r = {0};
    pulled p;

    /* Unacked data in the ring, an early message in the pool: nothing goes. */
    send_tag(h, 0);
    assert_true(pull(h, &p));
    assert_int_equal(agent_data(h, 2), SSM_CHAN_OK);
    assert_int_equal(stats(h).buffered_msgs, 1);
    ssm_chan_trim(h->c, record_release, &r);
    assert_int_equal(r.count, 0);

    /* Acked, and the gap filled: both go, whole. */
    agent_ack(h, 0);
    assert_int_equal(agent_data(h, 0), SSM_CHAN_OK);
    assert_int_equal(agent_data(h, 1), SSM_CHAN_OK);
    assert_int_equal(stats(h).buffered_msgs, 0);
    ssm_chan_trim(h->c, record_release, &r);
    assert_int_equal(r.count, 2);
    assert_true(r.n[0] >= ssm_msg_encoded_size(1024)); /* the send ring */
    assert_int_equal(r.n[1], 8 * 1024);                /* the reorder pool */

    /* Trimmed buffers are rewritten before they are read: the channel works
     * on (the harness sees what it sends and what it delivers). */
    size_t before = h->ngot;
    drain(h, NULL, NULL, NULL, NULL); /* the acks of 0 and 1 */
    send_tag(h, 1);
    assert_true(pull(h, &p));
    assert_int_equal(p.m.seq, 1);
    int64_t tag;
    memcpy(&tag, p.m.payload, sizeof tag);
    assert_int_equal(tag, 1);
    assert_int_equal(agent_data(h, 4), SSM_CHAN_OK);
    assert_int_equal(agent_data(h, 3), SSM_CHAN_OK);
    assert_int_equal(h->ngot - before, 2);
    assert_int_equal(h->got[before], 3);
    assert_int_equal(h->got[before + 1], 4);
    ssm_chan_trim(NULL, record_release, &r); /* no channel: nothing */
    rm(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_outgoing_frames),
        cmocka_unit_test(test_inorder_delivery_and_ack_fields),
        cmocka_unit_test(test_created_date_never_zero),
        cmocka_unit_test(test_rtt_estimator_exact),
        cmocka_unit_test(test_retransmission_timing),
        cmocka_unit_test(test_retransmission_burst_cap),
        cmocka_unit_test(test_retransmission_backoff),
        cmocka_unit_test(test_next_timeout_consistent),
        cmocka_unit_test(test_loss_and_duplicates_incoming),
        cmocka_unit_test(test_reorder_limits),
        cmocka_unit_test(test_reorder_permutations),
        cmocka_unit_test(test_ack_loss_and_bogus_acks),
        cmocka_unit_test(test_stall_and_give_up),
        cmocka_unit_test(test_window_full),
        cmocka_unit_test(test_pause_start_publication),
        cmocka_unit_test(test_transport_down_up),
        cmocka_unit_test(test_not_ready),
        cmocka_unit_test(test_send_from_payload),
        cmocka_unit_test(test_seq_near_int64_max),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_channel_closed_and_unknown),
        cmocka_unit_test(test_pacing),
        cmocka_unit_test(test_unsent_after_reconnect),
        cmocka_unit_test(test_ack_queue_overflow),
        cmocka_unit_test(test_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
