/* smux v1 client: framing, fragmentation, streams, FIN, errors, backpressure,
 * keepalive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "ssm_msg.h"
#include "ssm_smux.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct rec {
    uint32_t sids[4096];
    size_t n;
    ssm_smux *m;
    bool close_on_notify; /* re-entrancy check */
} rec;

static void on_readable(void *user, uint32_t sid, void *stream_user)
{
    rec *r = user;
    (void)stream_user;
    if (r->n < 4096)
        r->sids[r->n++] = sid;
    if (r->close_on_notify)
        ssm_smux_close(r->m, sid);
}

static ssm_smux *mk(rec *r, const ssm_smux_config *cfg)
{
    memset(r, 0, sizeof(*r));
    ssm_smux_callbacks cb = {.on_readable = on_readable};
    r->m = ssm_smux_new(cfg, &cb, r, 0);
    assert_non_null(r->m);
    return r->m;
}

static size_t frame(uint8_t *out, uint8_t ver, uint8_t cmd, uint32_t sid, const void *data,
                    uint16_t len)
{
    out[0] = ver;
    out[1] = cmd;
    out[2] = (uint8_t)len;
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)sid;
    out[5] = (uint8_t)(sid >> 8);
    out[6] = (uint8_t)(sid >> 16);
    out[7] = (uint8_t)(sid >> 24);
    if (len)
        memcpy(out + 8, data, len);
    return 8u + len;
}

static size_t drain(ssm_smux *m, uint8_t *buf, size_t cap)
{
    return ssm_smux_out_read(m, buf, cap);
}

/* ---- tests -------------------------------------------------------------- */

static void test_open_ids_and_syn(void **st)
{
    (void)st;
    rec r;
    ssm_smux *m = mk(&r, NULL);
    uint32_t a, b;
    assert_int_equal(ssm_smux_open(m, NULL, &a), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_open(m, NULL, &b), SSM_SMUX_OK);
    assert_int_equal(a, 3);
    assert_int_equal(b, 5);
    uint8_t out[64];
    assert_int_equal(drain(m, out, sizeof(out)), 16);
    static const uint8_t want[16] = {1, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0};
    assert_memory_equal(out, want, 16);
    ssm_smux_free(m);
}

static void test_write_splits_psh(void **st)
{
    (void)st;
    rec r;
    ssm_smux *m = mk(&r, NULL);
    uint32_t sid;
    ssm_smux_open(m, NULL, &sid);
    uint8_t tmp[8];
    drain(m, tmp, sizeof(tmp));
    size_t n = 70000;
    uint8_t *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7);
    assert_int_equal(ssm_smux_write(m, sid, data, n), (long)n);
    size_t out_n = ssm_smux_out_pending(m);
    assert_int_equal(out_n, n + 3 * 8);
    uint8_t *out = malloc(out_n);
    assert_int_equal(drain(m, out, out_n), out_n);
    size_t off = 0, got = 0;
    const size_t lens[3] = {32768, 32768, 70000 - 65536};
    for (int f = 0; f < 3; f++) {
        assert_int_equal(out[off], 1);
        assert_int_equal(out[off + 1], SSM_SMUX_PSH);
        size_t len = out[off + 2] | (out[off + 3] << 8);
        assert_int_equal(len, lens[f]);
        assert_int_equal(out[off + 4], 3);
        assert_memory_equal(out + off + 8, data + got, len);
        got += len;
        off += 8 + len;
    }
    assert_int_equal(off, out_n);
    /* unknown stream */
    assert_int_equal(ssm_smux_write(m, 99, data, 1), SSM_SMUX_ENOENT);
    free(out);
    free(data);
    ssm_smux_free(m);
}

static void test_write_space_bounded_control_still_fits(void **st)
{
    (void)st;
    rec r;
    ssm_smux_config cfg;
    ssm_smux_config_default(&cfg);
    cfg.tx_cap = 4096;
    cfg.max_streams = 4;
    ssm_smux *m = mk(&r, &cfg);
    uint32_t sid;
    ssm_smux_open(m, NULL, &sid);
    uint8_t data[10000] = {0};
    size_t space = ssm_smux_write_space(m);
    assert_true(space > 0 && space < 4096);
    long w = ssm_smux_write(m, sid, data, sizeof(data));
    assert_true(w > 0 && (size_t)w < sizeof(data));
    assert_int_equal(ssm_smux_write_space(m), 0);
    assert_int_equal(ssm_smux_write(m, sid, data, 10), 0);
    size_t before = ssm_smux_out_pending(m);
    /* control frames use the reserve */
    uint32_t s2;
    assert_int_equal(ssm_smux_open(m, NULL, &s2), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_close(m, sid), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_out_pending(m), before + 16);
    ssm_smux_free(m);
}

/* A mixed stream of frames; verify what every stream received. */
typedef struct script {
    uint8_t bytes[4096];
    size_t n;
} script;

static void build_script(script *s)
{
    uint8_t a[300], b[200];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (uint8_t)('a' + i % 26);
    for (size_t i = 0; i < sizeof(b); i++)
        b[i] = (uint8_t)(i ^ 0x5a);
    s->n = 0;
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_NOP, 0, NULL, 0);
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_PSH, 3, a, 100);
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_PSH, 5, b, 200);
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_PSH, 99, a, 50); /* unknown: discarded */
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_PSH, 3, a + 100, 0); /* empty */
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_PSH, 3, a + 100, 200);
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_SYN, 8, NULL, 0);  /* ignored */
    uint8_t upd[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_UPD, 3, NULL, 0);
    memcpy(s->bytes + s->n, upd, 8);
    s->n += 8;
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_FIN, 3, NULL, 0);
    s->n += frame(s->bytes + s->n, 1, SSM_SMUX_FIN, 77, NULL, 0); /* unknown */
}

static void check_script_result(ssm_smux *m)
{
    uint8_t got[1024];
    uint8_t a[300], b[200];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (uint8_t)('a' + i % 26);
    for (size_t i = 0; i < sizeof(b); i++)
        b[i] = (uint8_t)(i ^ 0x5a);
    assert_false(ssm_smux_eof(m, 3));
    assert_int_equal(ssm_smux_readable(m, 3), 300);
    assert_int_equal(ssm_smux_read(m, 3, got, sizeof(got)), 300);
    assert_memory_equal(got, a, 300);
    assert_true(ssm_smux_eof(m, 3));
    assert_int_equal(ssm_smux_read(m, 5, got, sizeof(got)), 200);
    assert_memory_equal(got, b, 200);
    assert_false(ssm_smux_eof(m, 5));
    ssm_smux_stats stt;
    ssm_smux_get_stats(m, &stt);
    assert_int_equal(stt.bytes_discarded, 50 + 8);
    assert_int_equal(stt.rx_buffered, 0);
    assert_int_equal(stt.nops_in, 1);
}

static ssm_smux *mk_two_streams(rec *r)
{
    ssm_smux *m = mk(r, NULL);
    uint32_t a, b;
    ssm_smux_open(m, NULL, &a);
    ssm_smux_open(m, NULL, &b);
    return m;
}

static void test_fragmentation_every_boundary(void **st)
{
    (void)st;
    script s;
    build_script(&s);
    /* One split point anywhere, then two split points anywhere. */
    for (size_t i = 0; i <= s.n; i++) {
        rec r;
        ssm_smux *m = mk_two_streams(&r);
        assert_int_equal(ssm_smux_feed(m, s.bytes, i, 0), SSM_SMUX_OK);
        assert_int_equal(ssm_smux_feed(m, s.bytes + i, s.n - i, 0), SSM_SMUX_OK);
        check_script_result(m);
        ssm_smux_free(m);
    }
    for (size_t i = 0; i <= s.n; i += 7) {
        for (size_t j = i; j <= s.n; j += 3) {
            rec r;
            ssm_smux *m = mk_two_streams(&r);
            assert_int_equal(ssm_smux_feed(m, s.bytes, i, 0), SSM_SMUX_OK);
            assert_int_equal(ssm_smux_feed(m, s.bytes + i, j - i, 0), SSM_SMUX_OK);
            assert_int_equal(ssm_smux_feed(m, s.bytes + j, s.n - j, 0), SSM_SMUX_OK);
            check_script_result(m);
            ssm_smux_free(m);
        }
    }
    /* Byte by byte. */
    rec r;
    ssm_smux *m = mk_two_streams(&r);
    for (size_t i = 0; i < s.n; i++)
        assert_int_equal(ssm_smux_feed(m, s.bytes + i, 1, 0), SSM_SMUX_OK);
    check_script_result(m);
    ssm_smux_free(m);
}

static void test_notifications(void **st)
{
    (void)st;
    rec r;
    ssm_smux *m = mk_two_streams(&r);
    uint8_t buf[64];
    size_t n = frame(buf, 1, SSM_SMUX_PSH, 3, "hello", 5);
    n += frame(buf + n, 1, SSM_SMUX_PSH, 3, "world", 5);
    n += frame(buf + n, 1, SSM_SMUX_FIN, 5, NULL, 0);
    assert_int_equal(ssm_smux_feed(m, buf, n, 0), SSM_SMUX_OK);
    /* one notification per stream per feed */
    assert_int_equal(r.n, 2);
    assert_int_equal(r.sids[0], 3);
    assert_int_equal(r.sids[1], 5);
    assert_true(ssm_smux_eof(m, 5));
    const uint8_t *p;
    assert_int_equal(ssm_smux_peek(m, 3, &p), 10);
    assert_memory_equal(p, "helloworld", 10);
    ssm_smux_consume(m, 3, 4);
    assert_int_equal(ssm_smux_readable(m, 3), 6);
    ssm_smux_free(m);
}

static void test_close_from_callback(void **st)
{
    (void)st;
    rec r;
    ssm_smux *m = mk_two_streams(&r);
    r.close_on_notify = true;
    uint8_t buf[64];
    size_t n = frame(buf, 1, SSM_SMUX_PSH, 3, "abc", 3);
    n += frame(buf + n, 1, SSM_SMUX_PSH, 5, "def", 3);
    size_t half = n - 4; /* the second PSH is split across feeds */
    assert_int_equal(ssm_smux_feed(m, buf, half, 0), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_feed(m, buf + half, n - half, 0), SSM_SMUX_OK);
    ssm_smux_stats s;
    ssm_smux_get_stats(m, &s);
    assert_int_equal(s.open_streams, 0);
    assert_int_equal(s.rx_buffered, 0);
    /* SYN 3, SYN 5, FIN 3, FIN 5 */
    uint8_t out[64];
    assert_int_equal(drain(m, out, sizeof(out)), 32);
    assert_int_equal(out[17], SSM_SMUX_FIN);
    assert_int_equal(out[25], SSM_SMUX_FIN);
    /* data for closed streams is discarded */
    n = frame(buf, 1, SSM_SMUX_PSH, 3, "zz", 2);
    assert_int_equal(ssm_smux_feed(m, buf, n, 0), SSM_SMUX_OK);
    ssm_smux_free(m);
}

static void test_many_streams(void **st)
{
    (void)st;
    rec r;
    ssm_smux *m = mk(&r, NULL);
    enum { N = 300 };
    uint32_t sids[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(ssm_smux_open(m, NULL, &sids[i]), SSM_SMUX_OK);
        assert_int_equal(sids[i], 3u + 2u * (uint32_t)i);
    }
    /* close every third stream to exercise table deletion */
    for (int i = 0; i < N; i += 3)
        assert_int_equal(ssm_smux_close(m, sids[i]), SSM_SMUX_OK);
    /* interleave 10 rounds of a small PSH to every stream, in 100-byte feeds */
    static uint8_t wire[N * 10 * 12];
    size_t n = 0;
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < N; i++) {
            uint8_t d[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)round, 0xee};
            n += frame(wire + n, 1, SSM_SMUX_PSH, sids[i], d, 4);
        }
    for (size_t off = 0; off < n; off += 100) {
        size_t k = n - off < 100 ? n - off : 100;
        assert_int_equal(ssm_smux_feed(m, wire + off, k, 0), SSM_SMUX_OK);
    }
    for (int i = 0; i < N; i++) {
        uint8_t got[64];
        size_t k = ssm_smux_read(m, sids[i], got, sizeof(got));
        if (i % 3 == 0) {
            assert_int_equal(k, 0);
            continue;
        }
        assert_int_equal(k, 40);
        for (int round = 0; round < 10; round++) {
            assert_int_equal(got[round * 4], (uint8_t)i);
            assert_int_equal(got[round * 4 + 1], (uint8_t)(i >> 8));
            assert_int_equal(got[round * 4 + 2], round);
        }
    }
    ssm_smux_free(m);
}

static void test_stream_limit(void **st)
{
    (void)st;
    rec r;
    ssm_smux_config cfg;
    ssm_smux_config_default(&cfg);
    cfg.max_streams = 2;
    ssm_smux *m = mk(&r, &cfg);
    uint32_t a, b, c;
    assert_int_equal(ssm_smux_open(m, NULL, &a), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_open(m, NULL, &b), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_open(m, NULL, &c), SSM_SMUX_ELIMIT);
    ssm_smux_close(m, a);
    assert_int_equal(ssm_smux_open(m, NULL, &c), SSM_SMUX_OK);
    assert_int_equal(c, 7);
    assert_int_equal(ssm_smux_close(m, 3), SSM_SMUX_ENOENT);
    ssm_smux_free(m);
}

static void test_protocol_errors(void **st)
{
    (void)st;
    uint8_t bad[3][8] = {
        {2, SSM_SMUX_NOP, 0, 0, 0, 0, 0, 0}, /* version 2 */
        {1, 5, 0, 0, 3, 0, 0, 0},            /* unknown cmd */
        {0, SSM_SMUX_PSH, 0, 0, 3, 0, 0, 0}, /* version 0 */
    };
    for (int i = 0; i < 3; i++) {
        rec r;
        ssm_smux *m = mk_two_streams(&r);
        uint8_t buf[32];
        size_t n = frame(buf, 1, SSM_SMUX_PSH, 3, "ok", 2);
        memcpy(buf + n, bad[i], 8);
        n += 8;
        assert_int_equal(ssm_smux_feed(m, buf, n, 0), SSM_SMUX_EPROTO);
        assert_true(ssm_smux_dead(m));
        /* data before the error was still delivered */
        assert_int_equal(ssm_smux_readable(m, 3), 2);
        assert_int_equal(ssm_smux_feed(m, buf, 8, 0), SSM_SMUX_EDEAD);
        uint32_t sid;
        assert_int_equal(ssm_smux_open(m, NULL, &sid), SSM_SMUX_EDEAD);
        assert_int_equal(ssm_smux_write(m, 3, buf, 1), SSM_SMUX_EDEAD);
        assert_int_equal(ssm_smux_tick(m, 100000), SSM_SMUX_EDEAD);
        ssm_smux_free(m);
    }
}

static void test_backpressure(void **st)
{
    (void)st;
    rec r;
    ssm_smux_config cfg;
    ssm_smux_config_default(&cfg);
    cfg.stream_rx_cap = SSM_SMUX_MIN_FEED;
    ssm_smux *m = mk(&r, &cfg);
    uint32_t sid;
    ssm_smux_open(m, NULL, &sid);
    /* 70 PSH frames of 1000 bytes = 70000 > 65536: the stream fills up. */
    uint8_t chunk[1008];
    uint8_t payload[1000];
    size_t fed = 0;
    int rc = SSM_SMUX_OK;
    for (int i = 0; i < 70; i++) {
        memset(payload, i, sizeof(payload));
        frame(chunk, 1, SSM_SMUX_PSH, sid, payload, sizeof(payload));
        rc = ssm_smux_feed(m, chunk, sizeof(chunk), 0);
        if (rc == SSM_SMUX_NOT_READY)
            break;
        assert_int_equal(rc, SSM_SMUX_OK);
        fed++;
    }
    assert_int_equal(rc, SSM_SMUX_NOT_READY);
    assert_true(fed >= 60 && fed < 70);
    assert_false(ssm_smux_can_feed(m, sizeof(chunk)));
    assert_int_equal(ssm_smux_readable(m, sid), fed * 1000);
    /* drain some, the refused chunk goes in unchanged */
    uint8_t sink[4096];
    assert_int_equal(ssm_smux_read(m, sid, sink, sizeof(sink)), 4096);
    assert_true(ssm_smux_can_feed(m, sizeof(chunk)));
    assert_int_equal(ssm_smux_feed(m, chunk, sizeof(chunk), 0), SSM_SMUX_OK);
    /* the data order is intact */
    size_t total = 0;
    int expect = 0;
    size_t k;
    while ((k = ssm_smux_read(m, sid, sink, 1000)) > 0) {
        for (size_t i = 0; i < k; i++) {
            size_t pos = 4096 + total + i;
            expect = (int)(pos / 1000);
            assert_int_equal(sink[i], (uint8_t)expect);
        }
        total += k;
    }
    assert_int_equal(total + 4096, (fed + 1) * 1000);
    /* oversized feed */
    static uint8_t big[SSM_SMUX_MIN_FEED + 1];
    assert_int_equal(ssm_smux_feed(m, big, sizeof(big), 0), SSM_SMUX_E2BIG);
    assert_false(ssm_smux_dead(m));
    ssm_smux_free(m);
}

static void test_session_rx_cap(void **st)
{
    (void)st;
    rec r;
    ssm_smux_config cfg;
    ssm_smux_config_default(&cfg);
    cfg.stream_rx_cap = SSM_SMUX_MIN_FEED;
    cfg.session_rx_cap = 70000;
    ssm_smux *m = mk(&r, &cfg);
    uint32_t a, b;
    ssm_smux_open(m, NULL, &a);
    ssm_smux_open(m, NULL, &b);
    uint8_t f[8 + 30000];
    uint8_t d[30000] = {0};
    frame(f, 1, SSM_SMUX_PSH, a, d, 30000);
    assert_int_equal(ssm_smux_feed(m, f, sizeof(f), 0), SSM_SMUX_OK);
    frame(f, 1, SSM_SMUX_PSH, b, d, 30000);
    /* both streams have room but the session total would exceed 70000 */
    assert_int_equal(ssm_smux_feed(m, f, sizeof(f), 0), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_feed(m, f, sizeof(f), 0), SSM_SMUX_NOT_READY);
    ssm_smux_close(m, a);
    assert_int_equal(ssm_smux_feed(m, f, 8, 0), SSM_SMUX_OK);
    ssm_smux_free(m);
}

static void test_keepalive(void **st)
{
    (void)st;
    rec r;
    ssm_smux *m = mk(&r, NULL);
    uint8_t out[64];
    assert_int_equal(ssm_smux_next_timeout(m, 0), 10000);
    assert_int_equal(ssm_smux_tick(m, 9999), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_out_pending(m), 0);
    assert_int_equal(ssm_smux_tick(m, 10000), SSM_SMUX_OK);
    assert_int_equal(drain(m, out, sizeof(out)), 8);
    static const uint8_t nop[8] = {1, 3, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, nop, 8);
    /* a frame arrives before the first check: survives it */
    uint8_t f[8];
    frame(f, 1, SSM_SMUX_NOP, 0, NULL, 0);
    assert_int_equal(ssm_smux_feed(m, f, 8, 15000), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_tick(m, 20000), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_tick(m, 30000), SSM_SMUX_OK);
    /* nothing more arrives: the next check (at 60000) kills it */
    assert_int_equal(ssm_smux_tick(m, 40000), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_tick(m, 50000), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_tick(m, 60000), SSM_SMUX_ETIMEDOUT);
    assert_true(ssm_smux_dead(m));
    ssm_smux_free(m);

    /* disabled: no NOPs, no deadline */
    ssm_smux_config cfg;
    ssm_smux_config_default(&cfg);
    cfg.keepalive = false;
    m = mk(&r, &cfg);
    assert_int_equal(ssm_smux_next_timeout(m, 0), -1);
    assert_int_equal(ssm_smux_tick(m, 1000000), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_out_pending(m), 0);
    ssm_smux_free(m);
}

static void test_keepalive_not_while_blocked(void **st)
{
    (void)st;
    rec r;
    ssm_smux_config cfg;
    ssm_smux_config_default(&cfg);
    cfg.stream_rx_cap = SSM_SMUX_MIN_FEED;
    ssm_smux *m = mk(&r, &cfg);
    uint32_t sid;
    ssm_smux_open(m, NULL, &sid);
    static uint8_t f[8 + 60000];
    static uint8_t d[60000];
    frame(f, 1, SSM_SMUX_PSH, sid, d, 60000);
    assert_int_equal(ssm_smux_feed(m, f, sizeof(f), 0), SSM_SMUX_OK);
    assert_int_equal(ssm_smux_feed(m, f, sizeof(f), 1), SSM_SMUX_NOT_READY);
    assert_int_equal(ssm_smux_tick(m, 30000), SSM_SMUX_OK); /* data_ready from the feed */
    assert_int_equal(ssm_smux_tick(m, 60000), SSM_SMUX_OK); /* blocked: not dead */
    assert_int_equal(ssm_smux_tick(m, 90000), SSM_SMUX_OK);
    ssm_smux_free(m);
}

/* ---- golden: the official plugin's smux bytes (fixtures/port_mux.jsonl) --- */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void bytes_add(bytes *b, const uint8_t *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Concatenates the Output payloads of one direction, in sequence order. */
static void fixture_stream(const char *dir, bytes *out)
{
    FILE *f = fopen(SSM_FIXTURES_DIR "/official-plugin/port_mux.jsonl", "r");
    assert_non_null(f);
    static char line[1 << 17];
    int64_t next = 0;
    while (fgets(line, sizeof(line), f)) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        const cJSON *d = cJSON_GetObjectItem(o, "dir");
        const cJSON *hex = cJSON_GetObjectItem(o, "hex");
        const cJSON *op = cJSON_GetObjectItem(o, "opcode");
        if (cJSON_IsString(d) && strcmp(d->valuestring, dir) == 0 && cJSON_IsString(hex) &&
            cJSON_IsNumber(op) && op->valueint == 2) {
            size_t hl = strlen(hex->valuestring) / 2;
            uint8_t *raw = malloc(hl);
            for (size_t i = 0; i < hl; i++)
                raw[i] = (uint8_t)(hexval(hex->valuestring[2 * i]) << 4 |
                                   hexval(hex->valuestring[2 * i + 1]));
            ssm_msg m;
            if (ssm_msg_decode(raw, hl, &m) == SSM_MSG_OK && m.payload_type == SSM_PT_OUTPUT &&
                strstr(m.type, "stream_data") && m.seq == next) {
                bytes_add(out, m.payload, m.payload_len);
                next++;
            } else if (ssm_msg_decode(raw, hl, &m) == SSM_MSG_OK && strstr(m.type, "stream_data") &&
                       m.seq == next) {
                next++; /* handshake or flag: same sequence space, not smux */
            }
            free(raw);
        }
        cJSON_Delete(o);
    }
    fclose(f);
}

static void test_official_fixture_bytes(void **st)
{
    (void)st;
    bytes c2s = {0}, s2c = {0};
    fixture_stream("c2s", &c2s);
    fixture_stream("s2c", &s2c);
    assert_true(c2s.n > 16 && s2c.n > 16);

    /* Our client, doing what the official one did (open, write, close, twice),
     * must produce exactly the official byte stream. The data is taken from
     * the fixture's PSH frames. */
    rec r;
    ssm_smux *m = mk(&r, NULL);
    size_t off = 0;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(c2s.p[off + 1], SSM_SMUX_SYN);
        uint32_t sid;
        assert_int_equal(ssm_smux_open(m, NULL, &sid), SSM_SMUX_OK);
        off += 8;
        assert_int_equal(c2s.p[off + 1], SSM_SMUX_PSH);
        size_t len = c2s.p[off + 2] | (c2s.p[off + 3] << 8);
        assert_int_equal(ssm_smux_write(m, sid, c2s.p + off + 8, len), (long)len);
        off += 8 + len;
        assert_int_equal(c2s.p[off + 1], SSM_SMUX_FIN);
        off += 8;
    }
    assert_int_equal(off, c2s.n);
    bytes ours = {0};
    uint8_t buf[1024];
    size_t k;
    while ((k = ssm_smux_out_read(m, buf, sizeof(buf))) > 0)
        bytes_add(&ours, buf, k);
    /* the fixture interleaves SYN/PSH/FIN of stream 3 before stream 5: rebuild
     * that order from our frames (3's FIN goes before 5's SYN). */
    ssm_smux_close(m, 3);
    bytes fin3 = {0};
    while ((k = ssm_smux_out_read(m, buf, sizeof(buf))) > 0)
        bytes_add(&fin3, buf, k);
    size_t first_len = 8 + 8 + (size_t)(c2s.p[10] | (c2s.p[11] << 8));
    assert_memory_equal(ours.p, c2s.p, first_len);                     /* SYN 3, PSH 3 */
    assert_memory_equal(fin3.p, c2s.p + first_len, 8);                 /* FIN 3 */
    assert_memory_equal(ours.p + first_len, c2s.p + first_len + 8,
                        ours.n - first_len);                            /* SYN 5, PSH 5 */

    /* The agent's frames parse into the echoed data (minus the "ECHO\n"
     * command the fixture's destination consumed). */
    assert_int_equal(ssm_smux_feed(m, s2c.p, s2c.n > 60000 ? 60000 : s2c.n, 0), SSM_SMUX_OK);
    size_t len3 = c2s.p[10] | (c2s.p[11] << 8);
    uint8_t *got = malloc(len3);
    /* stream 3 was closed above: its data is discarded; stream 5 is checked */
    size_t n5 = ssm_smux_read(m, 5, got, len3);
    size_t off5 = first_len + 8 + 8;
    size_t len5 = c2s.p[off5 + 2] | (c2s.p[off5 + 3] << 8);
    assert_int_equal(n5, len5 - 5);
    assert_memory_equal(got, c2s.p + off5 + 8 + 5, n5);
    ssm_smux_stats stt;
    ssm_smux_get_stats(m, &stt);
    assert_int_equal(stt.bytes_discarded, len3 - 5);
    free(got);
    free(ours.p);
    free(fin3.p);
    free(c2s.p);
    free(s2c.p);
    ssm_smux_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_ids_and_syn),
        cmocka_unit_test(test_write_splits_psh),
        cmocka_unit_test(test_write_space_bounded_control_still_fits),
        cmocka_unit_test(test_fragmentation_every_boundary),
        cmocka_unit_test(test_notifications),
        cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_many_streams),
        cmocka_unit_test(test_stream_limit),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_session_rx_cap),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_keepalive_not_while_blocked),
        cmocka_unit_test(test_official_fixture_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
