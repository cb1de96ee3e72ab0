/* RFC 6455 client framing and server-frame parsing (protocol/ws_frame.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ssm_ws_frame.h"

/* ---- helpers ------------------------------------------------------------ */

#define MAX_EVENTS 64

typedef struct rec {
    unsigned op[MAX_EVENTS];
    size_t len[MAX_EVENTS];
    uint8_t data[MAX_EVENTS][2048];
    const uint8_t *ptr[MAX_EVENTS];
    size_t n;
    size_t stop_after; /* 0 = never */
} rec;

static int on_frame(void *user, unsigned op, const uint8_t *p, size_t n)
{
    rec *r = user;
    assert_true(r->n < MAX_EVENTS);
    r->op[r->n] = op;
    r->len[r->n] = n;
    r->ptr[r->n] = p;
    memcpy(r->data[r->n], p, n < 2048 ? n : 2048);
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

/* A server frame (never masked): header for len, opcode, fin. */
static size_t server_frame(uint8_t *out, unsigned op, bool fin, const uint8_t *p, size_t n)
{
    size_t h;
    out[0] = (uint8_t)((fin ? 0x80u : 0) | op);
    if (n < 126) {
        out[1] = (uint8_t)n;
        h = 2;
    } else if (n <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
        h = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        h = 10;
    }
    if (n)
        memcpy(out + h, p, n);
    return h + n;
}

/* Independent reading of a client frame: checks the header, unmasks. */
static size_t read_client_frame(const uint8_t *f, size_t flen, unsigned *op, uint8_t *payload)
{
    assert_true(flen >= 6);
    assert_int_equal(f[0] & 0xf0, 0x80); /* FIN, no RSV */
    *op = f[0] & 0x0f;
    assert_true(f[1] & 0x80); /* masked */
    uint64_t n = f[1] & 0x7f;
    size_t h = 2;
    if (n == 126) {
        n = (uint64_t)f[2] << 8 | f[3];
        h = 4;
        assert_true(n >= 126); /* shortest form */
    } else if (n == 127) {
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | f[2 + i];
        h = 10;
        assert_true(n > 0xffff);
    }
    const uint8_t *key = f + h;
    h += 4;
    assert_int_equal(flen, h + n);
    for (size_t i = 0; i < n; i++)
        payload[i] = f[h + i] ^ key[i % 4];
    return (size_t)n;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 131 + (i >> 7));
}

/* ---- client frames out ------------------------------------------------------ */

static void test_client_frame_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 3, 4, 7, 8, 9, 125, 126, 127, 1000, 65535, 65536, 70001};
    static uint8_t payload[70001], frame[70001 + 14], back[70001];
    const uint8_t key[4] = {0x12, 0x9a, 0x00, 0xff};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        fill(payload, n, (unsigned)i);
        size_t w = ssm_ws_client_frame(frame, sizeof frame, SSM_WS_OP_BINARY, payload, n, key);
        assert_int_equal(w, ssm_ws_client_frame_len(n));
        unsigned op = 99;
        size_t got = read_client_frame(frame, w, &op, back);
        assert_int_equal(op, SSM_WS_OP_BINARY);
        assert_int_equal(got, n);
        assert_memory_equal(back, payload, n);
    }
}

static void test_client_frame_rejects(void **state)
{
    (void)state;
    uint8_t p[200] = {0}, out[300];
    const uint8_t key[4] = {1, 2, 3, 4};
    /* no room */
    assert_int_equal(ssm_ws_client_frame(out, 5, SSM_WS_OP_BINARY, p, 0, key), 0);
    assert_int_equal(ssm_ws_client_frame(out, 6, SSM_WS_OP_BINARY, p, 0, key), 6);
    assert_int_equal(ssm_ws_client_frame(out, 6 + 9, SSM_WS_OP_BINARY, p, 10, key), 0);
    /* control frames hold at most 125 bytes */
    assert_int_equal(ssm_ws_client_frame(out, sizeof out, SSM_WS_OP_PING, p, 126, key), 0);
    assert_int_equal(ssm_ws_client_frame(out, sizeof out, SSM_WS_OP_PING, p, 125, key), 131);
}

static void test_mask_matches_bytewise(void **state)
{
    (void)state;
    uint8_t a[67], b[67];
    const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
    for (size_t n = 0; n <= sizeof a; n++) {
        /* unaligned starts too */
        for (size_t off = 0; off < 3 && off <= n; off++) {
            fill(a, sizeof a, (unsigned)n);
            memcpy(b, a, sizeof a);
            ssm_ws_mask(a + off, n - off, key);
            for (size_t i = 0; i < n - off; i++)
                b[off + i] ^= key[i & 3];
            assert_memory_equal(a, b, sizeof a);
            ssm_ws_mask(a + off, n - off, key);
            fill(b, sizeof b, (unsigned)n);
            assert_memory_equal(a, b, sizeof a);
        }
    }
}

/* ---- server frames in -------------------------------------------------------- */

static uint8_t MSG[70000];

static void test_parse_whole_frames_in_place(void **state)
{
    (void)state;
    static uint8_t in[8192];
    uint8_t p1[1024], p2[200];
    fill(p1, sizeof p1, 1);
    fill(p2, sizeof p2, 2);
    size_t n = server_frame(in, SSM_WS_OP_BINARY, true, p1, sizeof p1);
    n += server_frame(in + n, SSM_WS_OP_TEXT, true, p2, sizeof p2);
    n += server_frame(in + n, SSM_WS_OP_BINARY, true, NULL, 0);
    ssm_ws_rx r;
    ssm_ws_rx_init(&r, MSG, sizeof MSG);
    rec e = {0};
    size_t used = 0;
    assert_int_equal(ssm_ws_rx_feed(&r, in, n, on_frame, &e, &used), SSM_WS_OK);
    assert_int_equal(used, n);
    assert_int_equal(e.n, 3);
    assert_int_equal(e.op[0], SSM_WS_OP_BINARY);
    assert_int_equal(e.len[0], sizeof p1);
    assert_memory_equal(e.data[0], p1, sizeof p1);
    assert_ptr_equal(e.ptr[0], in + 4); /* no copy */
    assert_int_equal(e.op[1], SSM_WS_OP_TEXT);
    assert_memory_equal(e.data[1], p2, sizeof p2);
    assert_int_equal(e.len[2], 0);
}

/* Any split of the input gives the same messages. */
static void test_parse_byte_at_a_time_and_splits(void **state)
{
    (void)state;
    static uint8_t in[80000];
    static uint8_t big[66000];
    uint8_t p1[300], ping[5] = {'h', 'e', 'l', 'l', 'o'};
    fill(p1, sizeof p1, 3);
    fill(big, sizeof big, 4);
    size_t n = server_frame(in, SSM_WS_OP_BINARY, true, p1, sizeof p1);
    n += server_frame(in + n, SSM_WS_OP_PING, true, ping, sizeof ping);
    n += server_frame(in + n, SSM_WS_OP_BINARY, true, big, sizeof big); /* 64-bit length */
    n += server_frame(in + n, SSM_WS_OP_BINARY, true, p1, 7);
    size_t steps[] = {1, 2, 3, 13, 1000, 4096};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        ssm_ws_rx r;
        ssm_ws_rx_init(&r, MSG, sizeof MSG);
        rec *e = calloc(1, sizeof *e);
        assert_non_null(e);
        for (size_t off = 0; off < n; off += steps[s]) {
            size_t k = n - off < steps[s] ? n - off : steps[s];
            size_t used = 0;
            assert_int_equal(ssm_ws_rx_feed(&r, in + off, k, on_frame, e, &used), SSM_WS_OK);
            assert_int_equal(used, k);
        }
        assert_int_equal(e->n, 4);
        assert_int_equal(e->op[0], SSM_WS_OP_BINARY);
        assert_memory_equal(e->data[0], p1, sizeof p1);
        assert_int_equal(e->op[1], SSM_WS_OP_PING);
        assert_int_equal(e->len[1], 5);
        assert_memory_equal(e->data[1], "hello", 5);
        assert_int_equal(e->len[2], sizeof big);
        assert_memory_equal(e->data[2], big, 2048);
        assert_int_equal(e->len[3], 7);
        free(e);
    }
}

/* Fragments assemble; a control frame may come between them. */
static void test_parse_fragmented(void **state)
{
    (void)state;
    static uint8_t in[4096];
    uint8_t a[100], b[50], c[10];
    fill(a, sizeof a, 5);
    fill(b, sizeof b, 6);
    fill(c, sizeof c, 7);
    size_t n = server_frame(in, SSM_WS_OP_BINARY, false, a, sizeof a);
    n += server_frame(in + n, SSM_WS_OP_PONG, true, c, 3);
    n += server_frame(in + n, SSM_WS_OP_CONT, false, b, sizeof b);
    n += server_frame(in + n, SSM_WS_OP_CONT, true, c, sizeof c);
    ssm_ws_rx r;
    ssm_ws_rx_init(&r, MSG, sizeof MSG);
    rec e = {0};
    assert_int_equal(ssm_ws_rx_feed(&r, in, n, on_frame, &e, NULL), SSM_WS_OK);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.op[0], SSM_WS_OP_PONG);
    assert_int_equal(e.op[1], SSM_WS_OP_BINARY);
    assert_int_equal(e.len[1], 160);
    assert_memory_equal(e.data[1], a, 100);
    assert_memory_equal(e.data[1] + 100, b, 50);
    assert_memory_equal(e.data[1] + 150, c, 10);
}

/* Messages longer than the buffer are skipped and counted; the stream goes on. */
static void test_parse_oversized_dropped(void **state)
{
    (void)state;
    static uint8_t in[4096], small[64];
    uint8_t p[300], q[20];
    fill(p, sizeof p, 8);
    fill(q, sizeof q, 9);
    size_t n = server_frame(in, SSM_WS_OP_BINARY, true, p, sizeof p);
    n += server_frame(in + n, SSM_WS_OP_BINARY, false, p, 40);
    n += server_frame(in + n, SSM_WS_OP_CONT, true, p, 40); /* 80 > 64 in total */
    n += server_frame(in + n, SSM_WS_OP_BINARY, true, q, sizeof q);
    for (size_t step = 1; step <= n; step += n - 1) {
        ssm_ws_rx r;
        ssm_ws_rx_init(&r, small, sizeof small);
        rec e = {0};
        for (size_t off = 0; off < n; off += step) {
            size_t k = n - off < step ? n - off : step;
            assert_int_equal(ssm_ws_rx_feed(&r, in + off, k, on_frame, &e, NULL), SSM_WS_OK);
        }
        assert_int_equal(r.dropped, 2);
        assert_int_equal(e.n, 1);
        assert_int_equal(e.len[0], sizeof q);
        assert_memory_equal(e.data[0], q, sizeof q);
    }
}

static int feed_all(const uint8_t *in, size_t n)
{
    ssm_ws_rx r;
    ssm_ws_rx_init(&r, MSG, sizeof MSG);
    rec e = {0};
    return ssm_ws_rx_feed(&r, in, n, on_frame, &e, NULL);
}

static void test_parse_protocol_errors(void **state)
{
    (void)state;
    uint8_t f[200];
    /* masked server frame */
    uint8_t masked[] = {0x82, 0x81, 1, 2, 3, 4, 'x'};
    assert_int_equal(feed_all(masked, sizeof masked), SSM_WS_EPROTO);
    /* RSV1 without an extension */
    uint8_t rsv[] = {0xc2, 0x01, 'x'};
    assert_int_equal(feed_all(rsv, sizeof rsv), SSM_WS_EPROTO);
    /* reserved opcodes */
    uint8_t op3[] = {0x83, 0x00};
    assert_int_equal(feed_all(op3, sizeof op3), SSM_WS_EPROTO);
    uint8_t opb[] = {0x8b, 0x00};
    assert_int_equal(feed_all(opb, sizeof opb), SSM_WS_EPROTO);
    /* continuation with nothing to continue */
    uint8_t cont[] = {0x80, 0x01, 'x'};
    assert_int_equal(feed_all(cont, sizeof cont), SSM_WS_EPROTO);
    /* a new data message inside a fragmented one */
    size_t n = server_frame(f, SSM_WS_OP_BINARY, false, (const uint8_t *)"ab", 2);
    n += server_frame(f + n, SSM_WS_OP_TEXT, true, (const uint8_t *)"cd", 2);
    assert_int_equal(feed_all(f, n), SSM_WS_EPROTO);
    /* fragmented or oversized control frames */
    uint8_t ping_nofin[] = {0x09, 0x00};
    assert_int_equal(feed_all(ping_nofin, sizeof ping_nofin), SSM_WS_EPROTO);
    uint8_t ping_long[] = {0x89, 126, 0, 126};
    assert_int_equal(feed_all(ping_long, sizeof ping_long), SSM_WS_EPROTO);
    /* 64-bit length with the top bit set */
    uint8_t huge[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(feed_all(huge, sizeof huge), SSM_WS_EPROTO);
    /* a lying 64-bit length is only a long message: skipped as it streams */
    uint8_t lying[] = {0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0, 'a', 'b'};
    ssm_ws_rx r;
    ssm_ws_rx_init(&r, MSG, sizeof MSG);
    rec e = {0};
    assert_int_equal(ssm_ws_rx_feed(&r, lying, sizeof lying, on_frame, &e, NULL), SSM_WS_OK);
    assert_int_equal(e.n, 0);
}

/* The callback can stop the parser; it resumes where it stopped. */
static void test_parse_stop_and_resume(void **state)
{
    (void)state;
    static uint8_t in[4096];
    size_t n = 0;
    for (unsigned i = 0; i < 5; i++) {
        uint8_t b = (uint8_t)i;
        n += server_frame(in + n, SSM_WS_OP_BINARY, true, &b, 1);
    }
    ssm_ws_rx r;
    ssm_ws_rx_init(&r, MSG, sizeof MSG);
    rec e = {0};
    e.stop_after = 2;
    size_t used = 0;
    assert_int_equal(ssm_ws_rx_feed(&r, in, n, on_frame, &e, &used), SSM_WS_STOPPED);
    assert_int_equal(used, 6);
    e.stop_after = 0;
    assert_int_equal(ssm_ws_rx_feed(&r, in + used, n - used, on_frame, &e, &used), SSM_WS_OK);
    assert_int_equal(e.n, 5);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(e.data[i][0], i);
}

/* What the client frames, a server-side reader (unmask) gives back. */
static void test_roundtrip_batch(void **state)
{
    (void)state;
    static uint8_t out[1 << 16], payload[1500], back[1500];
    size_t len = 0;
    uint8_t keys[4 * 40];
    fill(keys, sizeof keys, 11);
    for (unsigned i = 0; i < 40; i++) {
        fill(payload, 37 * i, i);
        size_t w = ssm_ws_client_frame(out + len, sizeof out - len, SSM_WS_OP_BINARY, payload,
                                       37 * i, keys + 4 * i);
        assert_int_not_equal(w, 0);
        len += w;
    }
    size_t off = 0;
    for (unsigned i = 0; i < 40; i++) {
        size_t flen = ssm_ws_client_frame_len(37 * i);
        unsigned op;
        size_t n = read_client_frame(out + off, flen, &op, back);
        fill(payload, 37 * i, i);
        assert_int_equal(n, 37 * i);
        assert_memory_equal(back, payload, n);
        off += flen;
    }
    assert_int_equal(off, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_frame_sizes),
        cmocka_unit_test(test_client_frame_rejects),
        cmocka_unit_test(test_mask_matches_bytewise),
        cmocka_unit_test(test_parse_whole_frames_in_place),
        cmocka_unit_test(test_parse_byte_at_a_time_and_splits),
        cmocka_unit_test(test_parse_fragmented),
        cmocka_unit_test(test_parse_oversized_dropped),
        cmocka_unit_test(test_parse_protocol_errors),
        cmocka_unit_test(test_parse_stop_and_resume),
        cmocka_unit_test(test_roundtrip_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
