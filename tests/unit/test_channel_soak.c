/* Randomized soak of the data channel: thousands of messages in both
 * directions over a simulated network with 10% loss, 5% duplication and 10%
 * reordering each way, reconnects, pause/start publication and a handler
 * that is sometimes not ready. A fake agent (sequencing, acks, duplicate
 * re-acks, retransmission) sits on the far side. Both byte streams must
 * arrive intact, in order, exactly once. Seeded PRNG: failures reproduce. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ssm_channel.h"
#include "ssm_msg.h"
#include "ssm_uuid.h"

#define N_MSGS 4000 /* per direction */
#define TICK_MS 5u
#define AGENT_WINDOW 160 /* agent's unacked cap: beyond our 128-slot reorder pool */
#define AGENT_RTO_MS 250u
#define MAXF 8192

static uint64_t rng_state;
static uint64_t rnd64(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static unsigned pct(void)
{
    return (unsigned)(rnd64() % 100);
}

/* Message i of a direction: 4-byte index, then bytes derived from it. */
static size_t msg_len(uint32_t dir, uint32_t i)
{
    return 4 + ((i * 2654435761u + dir * 97u) % 1021u);
}
static void msg_fill(uint32_t dir, uint32_t i, uint8_t *p)
{
    size_t n = msg_len(dir, i);
    memcpy(p, &i, 4);
    for (size_t k = 4; k < n; k++)
        p[k] = (uint8_t)(i * 131u + k * 7u + dir);
}
static void msg_check(uint32_t dir, uint32_t want, const uint8_t *p, size_t n)
{
    uint8_t ref[1100];
    assert_int_equal(n, msg_len(dir, want));
    msg_fill(dir, want, ref);
    assert_memory_equal(p, ref, n);
}

/* ---- simulated network: one queue per direction ---- */

typedef struct qframe {
    uint64_t at;
    size_t len;
    uint8_t *buf;
} qframe;
typedef struct queue {
    qframe *f;
    size_t n, cap;
} queue;

static void q_push_one(queue *q, uint64_t at, const uint8_t *b, size_t len)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 256;
        q->f = realloc(q->f, q->cap * sizeof *q->f);
        assert_non_null(q->f);
    }
    qframe *f = &q->f[q->n++];
    f->at = at;
    f->len = len;
    f->buf = malloc(len);
    assert_non_null(f->buf);
    memcpy(f->buf, b, len);
}

/* 10% dropped, 5% duplicated, 10% delayed past later frames. */
static void q_send(queue *q, uint64_t now, const uint8_t *b, size_t len)
{
    if (pct() < 10)
        return;
    int copies = pct() < 5 ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        uint64_t at = now + 10;
        if (pct() < 10)
            at += 1 + rnd64() % 80;
        q_push_one(q, at, b, len);
    }
}

/* Pops the earliest-inserted frame that is due; returns 0 when none. */
static size_t q_pop_due(queue *q, uint64_t now, uint8_t *out)
{
    for (size_t i = 0; i < q->n; i++) {
        if (q->f[i].at <= now) {
            size_t len = q->f[i].len;
            memcpy(out, q->f[i].buf, len);
            free(q->f[i].buf);
            memmove(&q->f[i], &q->f[i + 1], (q->n - i - 1) * sizeof *q->f);
            q->n--;
            return len;
        }
    }
    return 0;
}

static void q_clear(queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->f[i].buf);
    q->n = 0;
}

/* ---- the fake agent ---- */

typedef struct agent {
    /* outgoing */
    uint32_t next; /* next message index == sequence number */
    bool acked[N_MSGS];
    uint64_t last_send[N_MSGS];
    bool sent[N_MSGS];
    uint32_t base; /* lowest unacked */
    /* incoming */
    uint32_t expected;
    uint8_t *early[N_MSGS];
    size_t early_len[N_MSGS];
} agent;

static void agent_frame(uint8_t *out, size_t *len, const char *type, int64_t seq, uint32_t pt,
                        const uint8_t *p, size_t n, uint64_t now)
{
    ssm_msg m;
    memset(&m, 0, sizeof m);
    snprintf(m.type, sizeof m.type, "%s", type);
    m.schema_version = 1;
    m.created_ms = 1700000000000ull + now;
    m.seq = seq;
    m.flags = strcmp(type, SSM_MT_ACK) == 0 ? 3 : seq == 0;
    for (int i = 0; i < 16; i++)
        m.id[i] = (uint8_t)rnd64();
    ssm_uuid_v4_from_random(m.id);
    m.payload_type = pt;
    m.payload = p;
    m.payload_len = n;
    long r = ssm_msg_encode(&m, out, MAXF);
    assert_true(r > 0);
    *len = (size_t)r;
}

static void agent_send_ack(queue *s2c, uint64_t now, int64_t seq, const uint8_t id[16])
{
    char body[256];
    int bl = ssm_ack_body(body, sizeof body, SSM_MT_INPUT, id, seq);
    assert_true(bl > 0);
    uint8_t f[MAXF];
    size_t len;
    agent_frame(f, &len, SSM_MT_ACK, 0, 0, (const uint8_t *)body, (size_t)bl, now);
    q_send(s2c, now, f, len);
}

/* A frame from the client. */
static void agent_receive(agent *a, queue *s2c, uint64_t now, const uint8_t *f, size_t len)
{
    ssm_msg m;
    assert_int_equal(ssm_msg_decode(f, len, &m), SSM_MSG_OK);
    if (strcmp(m.type, SSM_MT_ACK) == 0) {
        int64_t s;
        assert_int_equal(ssm_ack_parse(m.payload, m.payload_len, &s), 0);
        assert_true(s >= 0 && s < a->next);
        a->acked[s] = true;
        while (a->base < a->next && a->acked[a->base])
            a->base++;
        return;
    }
    assert_string_equal(m.type, SSM_MT_INPUT);
    assert_int_equal(m.flags, 0);
    assert_true(m.seq >= 0 && m.seq < N_MSGS);
    uint32_t s = (uint32_t)m.seq;
    if (s < a->expected) {
        agent_send_ack(s2c, now, m.seq, m.id); /* duplicate: re-ack */
        return;
    }
    if (s > a->expected) {
        if (!a->early[s]) {
            a->early[s] = malloc(m.payload_len);
            memcpy(a->early[s], m.payload, m.payload_len);
            a->early_len[s] = m.payload_len;
        } else {
            assert_int_equal(a->early_len[s], m.payload_len);
            assert_memory_equal(a->early[s], m.payload, m.payload_len);
        }
        agent_send_ack(s2c, now, m.seq, m.id);
        return;
    }
    msg_check(1, s, m.payload, m.payload_len);
    agent_send_ack(s2c, now, m.seq, m.id);
    a->expected++;
    while (a->expected < N_MSGS && a->early[a->expected]) {
        msg_check(1, a->expected, a->early[a->expected], a->early_len[a->expected]);
        free(a->early[a->expected]);
        a->early[a->expected] = NULL;
        a->expected++;
    }
}

static void agent_transmit(agent *a, queue *s2c, uint64_t now, uint32_t i)
{
    uint8_t p[1100], f[MAXF];
    size_t len;
    msg_fill(0, i, p);
    agent_frame(f, &len, SSM_MT_OUTPUT, i, SSM_PT_OUTPUT, p, msg_len(0, i), now);
    q_send(s2c, now, f, len);
    a->sent[i] = true;
    a->last_send[i] = now;
}

static void agent_tick(agent *a, queue *s2c, uint64_t now)
{
    int budget = 20;
    for (uint32_t i = a->base; i < a->next && budget > 0; i++)
        if (!a->acked[i] && now - a->last_send[i] >= AGENT_RTO_MS) {
            agent_transmit(a, s2c, now, i);
            budget--;
        }
    int fresh = (int)(rnd64() % 8);
    while (fresh-- > 0 && a->next < N_MSGS && a->next - a->base < AGENT_WINDOW)
        agent_transmit(a, s2c, now, a->next++);
}

/* ---- the client side ---- */

typedef struct client {
    ssm_chan *c;
    uint32_t got;  /* agent messages delivered */
    uint32_t sent; /* client messages queued */
    int not_ready_pct;
    bool want_resume;
    int space_calls;
    int efull;
} client;

static int c_payload(void *u, uint32_t type, const uint8_t *p, size_t n)
{
    client *cl = u;
    assert_int_equal(type, SSM_PT_OUTPUT);
    if ((int)pct() < cl->not_ready_pct) {
        cl->want_resume = true;
        return SSM_DELIVER_NOT_READY;
    }
    uint32_t idx;
    assert_true(n >= 4);
    memcpy(&idx, p, 4);
    assert_int_equal(idx, cl->got); /* in order, exactly once */
    msg_check(0, idx, p, n);
    cl->got++;
    return SSM_DELIVER_OK;
}
static void c_closed(void *u, const char *o)
{
    (void)u;
    (void)o;
    fail_msg("unexpected channel_closed");
}
static void c_space(void *u)
{
    ((client *)u)->space_calls++;
}
static void c_random(void *u, uint8_t *b, size_t n)
{
    (void)u;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)rnd64();
}

static void run_soak(uint64_t seed, bool reconnects)
{
    rng_state = seed;
    ssm_chan_config cfg;
    ssm_chan_config_default(&cfg);
    cfg.send_window_bytes = 48 * 1024; /* small: exercises EFULL and wrap */
    client cl = {0};
    cl.not_ready_pct = 3;
    ssm_chan_callbacks cb = {.on_payload = c_payload,
                             .on_closed = c_closed,
                             .on_send_space = c_space,
                             .random = c_random};
    cl.c = ssm_chan_new(&cfg, &cb, &cl);
    assert_non_null(cl.c);
    agent *a = calloc(1, sizeof *a);
    assert_non_null(a);
    queue c2s = {0}, s2c = {0};
    uint8_t buf[MAXF];
    bool down = false;
    uint64_t down_until = 0, next_drop = 3000;
    int reconnect_count = 0;
    uint64_t now = 1000;

    for (; now < 1000 + 30u * 60u * 1000u; now += TICK_MS) {
        /* connection loss: frames in flight both ways are gone */
        if (reconnects && !down && now >= next_drop) {
            down = true;
            down_until = now + 200 + rnd64() % 2000;
            next_drop = now + 3000 + rnd64() % 5000;
            reconnect_count++;
            ssm_chan_transport_down(cl.c);
            q_clear(&c2s);
            q_clear(&s2c);
        }
        if (down && now >= down_until) {
            down = false;
            ssm_chan_transport_up(cl.c, now);
        }
        /* occasional pause/start publication from the service */
        if (!down && pct() == 0) {
            uint8_t f[MAXF];
            size_t len;
            agent_frame(f, &len, pct() < 50 ? SSM_MT_PAUSE_PUB : SSM_MT_START_PUB, 0, 0, NULL, 0,
                        now);
            q_push_one(&s2c, now + 10, f, len);
        }

        /* agent side */
        size_t n;
        while ((n = q_pop_due(&c2s, now, buf)) != 0)
            agent_receive(a, &s2c, now, buf, n);
        agent_tick(a, &s2c, now);
        if (down)
            q_clear(&s2c); /* sent into a dead connection */

        /* client side */
        while ((n = q_pop_due(&s2c, now, buf)) != 0)
            assert_int_not_equal(ssm_chan_receive(cl.c, buf, n, now), SSM_CHAN_EINVAL);
        if (cl.want_resume) {
            cl.want_resume = false;
            ssm_chan_resume_delivery(cl.c, now);
        }
        for (int k = (int)(rnd64() % 12); k > 0 && cl.sent < N_MSGS; k--) {
            uint8_t p[1100];
            msg_fill(1, cl.sent, p);
            int rc = ssm_chan_send(cl.c, SSM_PT_OUTPUT, p, msg_len(1, cl.sent), now);
            if (rc == SSM_CHAN_EFULL) {
                cl.efull++;
                assert_true(ssm_chan_send_space(cl.c) < msg_len(1, cl.sent));
                break;
            }
            assert_int_equal(rc, SSM_CHAN_OK);
            cl.sent++;
        }
        if (ssm_chan_next_timeout(cl.c, now) == 0)
            assert_true(ssm_chan_want_write(cl.c, now));
        size_t fl;
        while ((fl = ssm_chan_pull(cl.c, now, buf, sizeof buf)) != 0) {
            assert_false(down);
            q_send(&c2s, now, buf, fl);
        }
        assert_false(ssm_chan_timed_out(cl.c, now));

        ssm_chan_stats st;
        ssm_chan_get_stats(cl.c, &st);
        if (cl.got == N_MSGS && a->expected == N_MSGS && cl.sent == N_MSGS &&
            st.unacked_msgs == 0 && a->base == N_MSGS)
            break;
    }
    ssm_chan_stats st;
    ssm_chan_get_stats(cl.c, &st);
    print_message("soak seed %llu: %llu ms simulated, %llu retransmits, %llu dup, %llu early, "
                  "%llu dropped, %d EFULL, %d on_send_space, %d reconnects\n",
                  (unsigned long long)seed, (unsigned long long)(now - 1000),
                  (unsigned long long)st.retransmits, (unsigned long long)st.recv_dup,
                  (unsigned long long)st.recv_early, (unsigned long long)st.recv_dropped, cl.efull,
                  cl.space_calls, reconnect_count);
    assert_int_equal(cl.got, N_MSGS);
    assert_int_equal(a->expected, N_MSGS);
    assert_int_equal(a->base, N_MSGS);
    assert_int_equal(st.unacked_msgs, 0);
    assert_int_equal(st.unacked_bytes, 0);
    assert_int_equal(st.next_seq, N_MSGS);
    assert_int_equal(st.expected_seq, N_MSGS);
    assert_true(st.retransmits > 0);
    assert_true(st.recv_dup > 0);
    assert_true(st.recv_early > 0);
    assert_true(cl.efull > 0);
    assert_true(cl.space_calls > 0);
    if (reconnects)
        assert_true(reconnect_count >= 3);

    q_clear(&c2s);
    q_clear(&s2c);
    free(c2s.f);
    free(s2c.f);
    for (int i = 0; i < N_MSGS; i++)
        free(a->early[i]);
    free(a);
    ssm_chan_free(cl.c);
}

static void test_soak_lossy(void **state)
{
    (void)state;
    run_soak(0x1234567887654321ull, false);
}

static void test_soak_lossy_with_reconnects(void **state)
{
    (void)state;
    run_soak(0xdeadbeefcafef00dull, true);
    run_soak(42, true);
    run_soak(7, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soak_lossy),
        cmocka_unit_test(test_soak_lossy_with_reconnects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
