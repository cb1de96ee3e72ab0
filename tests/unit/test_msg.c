/* ClientMessage codec: every field, every rejection rule, the §4.4 vector,
 * truncation and lying lengths (PROTOCOL.md §4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ssm_msg.h"
#include "ssm_uuid.h"

/* PROTOCOL.md §4.4, byte for byte. */
static const uint8_t VECTOR[123] = {
    0x00, 0x00, 0x00, 0x74, 0x69, 0x6e, 0x70, 0x75, 0x74, 0x5f, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d,
    0x5f, 0x64, 0x61, 0x74, 0x61, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x78,
    0x1d, 0x88, 0x7c, 0xe0, 0xf8, 0x67, 0x2e, 0x49, 0x14, 0xd9, 0x00, 0x0e, 0x80, 0x1c, 0xd7, 0x4e,
    0xcd, 0x80, 0x5d, 0xd9, 0x36, 0x6c, 0x0b, 0xc4, 0x2d, 0xc1, 0x6a, 0xdc, 0x01, 0x97, 0xdc, 0x2f,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x6c, 0x73, 0x0d,
};

static const uint8_t VECTOR_ID[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x78,
                                      0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0};

/* SHA-256 of the empty string. */
static const uint8_t EMPTY_SHA256[32] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static ssm_msg vector_msg(void)
{
    ssm_msg m;
    memset(&m, 0, sizeof m);
    strcpy(m.type, SSM_MT_INPUT);
    m.schema_version = 1;
    m.created_ms = 1700000000000ull;
    m.seq = 1;
    m.flags = 0;
    memcpy(m.id, VECTOR_ID, 16);
    m.payload_type = SSM_PT_OUTPUT;
    m.payload = (const uint8_t *)"ls\r";
    m.payload_len = 3;
    return m;
}

/* Copies buf into an exact-size heap block so ASan sees any overread. */
static int decode_exact(const uint8_t *buf, size_t len, ssm_msg *out, uint8_t **keep)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    int rc = ssm_msg_decode(copy, len, out);
    if (keep)
        *keep = copy;
    else
        free(copy);
    return rc;
}

static void test_vector_encode(void **state)
{
    (void)state;
    ssm_msg m = vector_msg();
    uint8_t out[200];
    memset(out, 0xAA, sizeof out);
    long n = ssm_msg_encode(&m, out, sizeof out);
    assert_int_equal(n, 123);
    assert_int_equal(ssm_msg_encoded_size(3), 123);
    assert_memory_equal(out, VECTOR, sizeof VECTOR);
    assert_int_equal(out[123], 0xAA); /* nothing written past the end */
}

static void test_vector_decode(void **state)
{
    (void)state;
    ssm_msg d;
    uint8_t *buf;
    assert_int_equal(decode_exact(VECTOR, sizeof VECTOR, &d, &buf), SSM_MSG_OK);
    assert_string_equal(d.type, "input_stream_data");
    assert_int_equal(d.header_length, 116);
    assert_int_equal(d.schema_version, 1);
    assert_true(d.created_ms == 1700000000000ull);
    assert_true(d.seq == 1);
    assert_true(d.flags == 0);
    assert_memory_equal(d.id, VECTOR_ID, 16);
    assert_memory_equal(d.digest, VECTOR + 80, 32);
    assert_int_equal(d.payload_type, 1);
    assert_int_equal(d.payload_length, 3);
    assert_int_equal(d.payload_len, 3);
    assert_ptr_equal(d.payload, buf + 120);
    assert_memory_equal(d.payload, "ls\r", 3);
    char s[SSM_UUID_STRLEN + 1];
    ssm_uuid_format(d.id, s);
    assert_string_equal(s, "11223344-5566-4778-899a-abbccddeeff0");
    free(buf);
}

/* Every header field at its offset, with values that catch byte-order and
 * width mistakes. */
static void test_every_field_offset(void **state)
{
    (void)state;
    ssm_msg m;
    memset(&m, 0, sizeof m);
    strcpy(m.type, SSM_MT_ACK);
    m.schema_version = 0x01020304u;
    m.created_ms = 0x1112131415161718ull;
    m.seq = (int64_t)0x2122232425262728ll;
    m.flags = 0x3132333435363738ull;
    for (int i = 0; i < 16; i++)
        m.id[i] = (uint8_t)(0x40 + i);
    m.payload_type = 0x51525354u;
    uint8_t out[128];
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), 120);

    static const uint8_t hl[4] = {0, 0, 0, 0x74};
    assert_memory_equal(out, hl, 4);
    assert_memory_equal(out + 4, "acknowledge                     ", 32);
    static const uint8_t schema[4] = {1, 2, 3, 4};
    assert_memory_equal(out + 36, schema, 4);
    static const uint8_t created[8] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
    assert_memory_equal(out + 40, created, 8);
    static const uint8_t seq[8] = {0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28};
    assert_memory_equal(out + 48, seq, 8);
    static const uint8_t flags[8] = {0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38};
    assert_memory_equal(out + 56, flags, 8);
    /* §4.1: bytes 8..15 first, then 0..7, each half in order. */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(out[64 + i], 0x48 + i);
        assert_int_equal(out[72 + i], 0x40 + i);
    }
    assert_memory_equal(out + 80, EMPTY_SHA256, 32);
    static const uint8_t ptype[4] = {0x51, 0x52, 0x53, 0x54};
    assert_memory_equal(out + 112, ptype, 4);
    static const uint8_t plen[4] = {0, 0, 0, 0};
    assert_memory_equal(out + 116, plen, 4);

    ssm_msg d;
    assert_int_equal(ssm_msg_decode(out, 120, &d), SSM_MSG_OK);
    assert_string_equal(d.type, "acknowledge");
    assert_int_equal(d.schema_version, m.schema_version);
    assert_true(d.created_ms == m.created_ms);
    assert_true(d.seq == m.seq);
    assert_true(d.flags == m.flags);
    assert_memory_equal(d.id, m.id, 16);
    assert_int_equal(d.payload_type, m.payload_type);
    assert_int_equal(d.payload_len, 0);
    assert_int_equal(d.payload_length, 0);
}

static void test_negative_seq_and_high_bits(void **state)
{
    (void)state;
    ssm_msg m = vector_msg();
    m.seq = -2;
    m.flags = UINT64_MAX;
    m.created_ms = UINT64_MAX;
    uint8_t out[200];
    long n = ssm_msg_encode(&m, out, sizeof out);
    assert_int_equal(n, 123);
    for (int i = 48; i < 55; i++)
        assert_int_equal(out[i], 0xff);
    assert_int_equal(out[55], 0xfe);
    ssm_msg d;
    assert_int_equal(ssm_msg_decode(out, (size_t)n, &d), SSM_MSG_OK);
    assert_true(d.seq == -2);
    assert_true(d.flags == UINT64_MAX);
    assert_true(d.created_ms == UINT64_MAX);
}

static void test_type_padding(void **state)
{
    (void)state;
    ssm_msg m = vector_msg();
    uint8_t out[200];

    /* Exactly 32 characters: no padding at all. */
    strcpy(m.type, "abcdefghijklmnopqrstuvwxyz012345");
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), 123);
    assert_memory_equal(out + 4, "abcdefghijklmnopqrstuvwxyz012345", 32);
    ssm_msg d;
    assert_int_equal(ssm_msg_decode(out, 123, &d), SSM_MSG_OK);
    assert_string_equal(d.type, "abcdefghijklmnopqrstuvwxyz012345");

    /* 33 characters (no NUL in the field): refused. */
    memset(m.type, 'x', sizeof m.type);
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), SSM_MSG_ERR_ARG);

    /* Empty: refused (the peer would drop it). */
    m.type[0] = '\0';
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), SSM_MSG_ERR_ARG);

    /* One character: 31 spaces. */
    strcpy(m.type, "a");
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), 123);
    assert_int_equal(out[4], 'a');
    for (int i = 5; i < 36; i++)
        assert_int_equal(out[i], ' ');
}

/* Writes a valid frame for type (raw 32-byte field) and payload into buf. */
static size_t build_raw(uint8_t *buf, const uint8_t raw_type[32], const uint8_t *payload,
                        size_t plen)
{
    ssm_msg m = vector_msg();
    m.payload = payload;
    m.payload_len = plen;
    long n = ssm_msg_encode(&m, buf, 1024);
    assert_true(n > 0);
    memcpy(buf + 4, raw_type, 32);
    return (size_t)n;
}

static void test_type_trimming(void **state)
{
    (void)state;
    uint8_t buf[1024];
    uint8_t raw[32];
    ssm_msg d;

    /* NUL-padded, as some senders do. */
    memset(raw, 0, 32);
    memcpy(raw, "output_stream_data", 18);
    size_t n = build_raw(buf, raw, (const uint8_t *)"x", 1);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_OK);
    assert_string_equal(d.type, "output_stream_data");

    /* Leading NULs, then whitespace inside the NULs. */
    memset(raw, 0, 32);
    memcpy(raw + 3, " \t acknowledge \r\n", 17);
    n = build_raw(buf, raw, (const uint8_t *)"x", 1);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_OK);
    assert_string_equal(d.type, "acknowledge");

    /* Whitespace then NULs: NUL trim happens first, so spaces before the
     * trailing NULs are still removed by the whitespace pass. */
    memset(raw, ' ', 32);
    memcpy(raw + 1, "channel_closed", 14);
    memset(raw + 28, 0, 4);
    n = build_raw(buf, raw, (const uint8_t *)"x", 1);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_OK);
    assert_string_equal(d.type, "channel_closed");

    /* Inner spaces are kept. */
    memset(raw, ' ', 32);
    memcpy(raw, "a b", 3);
    n = build_raw(buf, raw, (const uint8_t *)"x", 1);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_OK);
    assert_string_equal(d.type, "a b");

    /* NUL inside the text (after trimming): not a valid type. */
    memset(raw, ' ', 32);
    memcpy(raw, "acknowledge\0xyz", 15);
    n = build_raw(buf, raw, (const uint8_t *)"x", 1);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_TYPE);

    /* Nothing but NULs and whitespace: empty. */
    memset(raw, 0, 32);
    memset(raw + 10, ' ', 5);
    raw[12] = '\t';
    n = build_raw(buf, raw, (const uint8_t *)"x", 1);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_TYPE);
}

static size_t vector_copy(uint8_t *buf)
{
    memcpy(buf, VECTOR, sizeof VECTOR);
    return sizeof VECTOR;
}

static void test_reject_header_length_zero(void **state)
{
    (void)state;
    uint8_t buf[200];
    ssm_msg d;
    size_t n = vector_copy(buf);
    put_be32(buf, 0);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_HEADER_LEN);
}

static void test_reject_empty_type(void **state)
{
    (void)state;
    uint8_t buf[200];
    ssm_msg d;
    size_t n = vector_copy(buf);
    memset(buf + 4, ' ', 32);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_TYPE);
    memset(buf + 4, 0, 32);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_TYPE);
}

static void test_reject_date_zero(void **state)
{
    (void)state;
    uint8_t buf[200];
    ssm_msg d;
    size_t n = vector_copy(buf);
    put_be64(buf + 40, 0);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_DATE);
    /* Any non-zero value is fine, even 1 ms. */
    put_be64(buf + 40, 1);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_OK);
}

static void test_reject_digest_mismatch(void **state)
{
    (void)state;
    uint8_t buf[200];
    ssm_msg d;
    size_t n = vector_copy(buf);
    buf[80] ^= 1;
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_DIGEST);
    n = vector_copy(buf);
    buf[122] ^= 1; /* payload byte */
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_DIGEST);
    n = vector_copy(buf);
    buf[111] ^= 0x80; /* last digest byte */
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_DIGEST);
}

/* §4.3: the digest is only checked when PayloadLength != 0. */
static void test_digest_skipped_when_payload_length_zero(void **state)
{
    (void)state;
    uint8_t buf[200];
    ssm_msg d;
    size_t n = vector_copy(buf);
    put_be32(buf + 116, 0);
    memset(buf + 80, 0, 32);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_OK);
    assert_int_equal(d.payload_length, 0);
    assert_int_equal(d.payload_len, 3); /* still the real bytes */
    assert_memory_equal(d.payload, "ls\r", 3);
}

/* The checks run in §4.3 order: the first failing rule names the error. */
static void test_rejection_order(void **state)
{
    (void)state;
    uint8_t buf[200];
    ssm_msg d;
    size_t n = vector_copy(buf);
    put_be32(buf, 0);
    memset(buf + 4, ' ', 32);
    put_be64(buf + 40, 0);
    buf[80] ^= 1;
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_HEADER_LEN);
    put_be32(buf, 116);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_TYPE);
    memcpy(buf + 4, "output_stream_data", 18);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_DATE);
    put_be64(buf + 40, 5);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_DIGEST);
    buf[80] ^= 1;
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_OK);
}

/* start/pause_publication skip the semantic checks, but not the bounds. */
static void test_publication_skips_checks(void **state)
{
    (void)state;
    static const char *const types[] = {SSM_MT_START_PUB, SSM_MT_PAUSE_PUB};
    for (int t = 0; t < 2; t++) {
        uint8_t buf[200];
        ssm_msg d;
        size_t n = vector_copy(buf);
        memset(buf + 4, ' ', 32);
        memcpy(buf + 4, types[t], strlen(types[t]));
        put_be64(buf + 40, 0);
        buf[80] ^= 1;
        assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_OK);
        assert_string_equal(d.type, types[t]);
        assert_true(d.created_ms == 0);
        assert_int_equal(d.payload_len, 3);
        /* Too short is still too short. */
        assert_int_equal(ssm_msg_decode(buf, 119, &d), SSM_MSG_ERR_SHORT);
        /* HeaderLength 0 is structural, not semantic: still refused. */
        put_be32(buf, 0);
        assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_HEADER_LEN);
    }
    /* A near miss is not a publication message. */
    uint8_t buf[200];
    ssm_msg d;
    size_t n = vector_copy(buf);
    memset(buf + 4, ' ', 32);
    memcpy(buf + 4, "start_publicatio", 16);
    put_be64(buf + 40, 0);
    assert_int_equal(ssm_msg_decode(buf, n, &d), SSM_MSG_ERR_DATE);
}

static void test_bounds(void **state)
{
    (void)state;
    uint8_t buf[300];
    ssm_msg d;
    size_t n = vector_copy(buf);

    /* HeaderLength + 4 past the end, including values that would wrap. */
    static const uint32_t bad_hl[] = {120, 200, 0x7fffffffu, 0xfffffffcu, 0xfffffffdu, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_hl / sizeof bad_hl[0]; i++) {
        put_be32(buf, bad_hl[i]);
        assert_int_equal(decode_exact(buf, n, &d, NULL), SSM_MSG_ERR_SHORT);
    }
    /* HeaderLength + 4 exactly at the end: empty payload. */
    put_be32(buf, 119);
    put_be32(buf + 116, 0);
    assert_int_equal(decode_exact(buf, n, &d, NULL), SSM_MSG_OK);
    assert_int_equal(d.payload_len, 0);

    /* HeaderLength below 116 would overlap the fixed fields: refused. */
    n = vector_copy(buf);
    for (uint32_t hl = 1; hl < 116; hl++) {
        put_be32(buf, hl);
        assert_int_equal(decode_exact(buf, n, &d, NULL), SSM_MSG_ERR_HEADER_LEN);
    }

    /* Exactly 120 bytes with HeaderLength 116 is the smallest valid frame. */
    ssm_msg m = vector_msg();
    m.payload_len = 0;
    assert_int_equal(ssm_msg_encode(&m, buf, sizeof buf), 120);
    assert_int_equal(decode_exact(buf, 120, &d, NULL), SSM_MSG_OK);
    assert_int_equal(d.payload_len, 0);
    assert_int_equal(decode_exact(buf, 119, &d, NULL), SSM_MSG_ERR_SHORT);
    assert_int_equal(decode_exact(buf, 0, &d, NULL), SSM_MSG_ERR_SHORT);
    assert_int_equal(ssm_msg_decode(NULL, 0, &d), SSM_MSG_ERR_SHORT);
}

/* A longer HeaderLength moves the payload start; extra header bytes are
 * skipped, PayloadLength stays at its fixed offset 116. */
static void test_longer_header(void **state)
{
    (void)state;
    uint8_t buf[300];
    ssm_msg d;
    memcpy(buf, VECTOR, 120);
    put_be32(buf, 120);
    memcpy(buf + 120, "\xde\xad\xbe\xef", 4);
    memcpy(buf + 124, "ls\r", 3);
    assert_int_equal(decode_exact(buf, 127, &d, NULL), SSM_MSG_OK);
    assert_int_equal(d.header_length, 120);
    assert_int_equal(d.payload_len, 3);
    assert_memory_equal(d.payload, "ls\r", 3);
}

/* PayloadLength is informational: the payload runs to the end of the frame
 * and the digest covers those bytes. */
static void test_payload_length_lies(void **state)
{
    (void)state;
    uint8_t buf[300];
    ssm_msg d;
    size_t n = vector_copy(buf);
    static const uint32_t lies[] = {1, 2, 4, 1000, 0xffffffffu};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        put_be32(buf + 116, lies[i]);
        assert_int_equal(decode_exact(buf, n, &d, NULL), SSM_MSG_OK);
        assert_int_equal(d.payload_length, lies[i]);
        assert_int_equal(d.payload_len, 3);
        assert_memory_equal(d.payload, "ls\r", 3);
    }
    /* Extra trailing bytes become payload, so the digest no longer matches. */
    buf[n] = 'x';
    assert_int_equal(decode_exact(buf, n + 1, &d, NULL), SSM_MSG_ERR_DIGEST);
}

static void check_prefixes(const uint8_t *frame, size_t len)
{
    for (size_t l = 0; l < len; l++) {
        ssm_msg d;
        uint8_t *copy;
        int rc = decode_exact(frame, l, &d, &copy);
        if (rc == SSM_MSG_OK) {
            /* Any accepted prefix must describe bytes inside the buffer. */
            assert_true(d.payload >= copy + 120);
            assert_true(d.payload + d.payload_len == copy + l);
        } else {
            assert_true(rc < 0);
        }
        free(copy);
    }
}

static void test_every_truncation(void **state)
{
    (void)state;
    check_prefixes(VECTOR, sizeof VECTOR);
    /* Prefixes of the vector shorter than 123 all cut the payload, so the
     * digest fails: none may be accepted. */
    for (size_t l = 0; l < sizeof VECTOR; l++) {
        ssm_msg d;
        assert_int_not_equal(decode_exact(VECTOR, l, &d, NULL), SSM_MSG_OK);
    }
    /* A frame whose PayloadLength is 0 accepts every prefix >= 120. */
    uint8_t buf[200];
    size_t n = vector_copy(buf);
    put_be32(buf + 116, 0);
    check_prefixes(buf, n);
    for (size_t l = 120; l <= n; l++) {
        ssm_msg d;
        assert_int_equal(decode_exact(buf, l, &d, NULL), SSM_MSG_OK);
        assert_int_equal(d.payload_len, l - 120);
    }
    /* Lying HeaderLength with every prefix. */
    put_be32(buf, 121);
    check_prefixes(buf, n);
}

/* Deterministic xorshift so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_round_trips(void **state)
{
    (void)state;
    static const char *const types[] = {SSM_MT_INPUT, SSM_MT_OUTPUT, SSM_MT_ACK,
                                        SSM_MT_CHANNEL_CLOSED, "agent_session_state"};
    static uint8_t payload[4096], out[4096 + 120];
    for (int iter = 0; iter < 500; iter++) {
        ssm_msg m;
        memset(&m, 0, sizeof m);
        strcpy(m.type, types[iter % 5]);
        m.schema_version = (uint32_t)rnd();
        m.created_ms = rnd() | 1;
        m.seq = (int64_t)rnd();
        m.flags = rnd();
        for (int i = 0; i < 16; i++)
            m.id[i] = (uint8_t)rnd();
        m.payload_type = (uint32_t)(rnd() % 13);
        m.payload_len = (size_t)(rnd() % (iter < 50 ? 3 : sizeof payload));
        for (size_t i = 0; i < m.payload_len; i++)
            payload[i] = (uint8_t)rnd();
        m.payload = payload;

        long n = ssm_msg_encode(&m, out, sizeof out);
        assert_int_equal(n, (long)(120 + m.payload_len));
        ssm_msg d;
        assert_int_equal(ssm_msg_decode(out, (size_t)n, &d), SSM_MSG_OK);
        assert_string_equal(d.type, m.type);
        assert_int_equal(d.header_length, 116);
        assert_int_equal(d.schema_version, m.schema_version);
        assert_true(d.created_ms == m.created_ms);
        assert_true(d.seq == m.seq);
        assert_true(d.flags == m.flags);
        assert_memory_equal(d.id, m.id, 16);
        assert_int_equal(d.payload_type, m.payload_type);
        assert_int_equal(d.payload_length, m.payload_len);
        assert_int_equal(d.payload_len, m.payload_len);
        if (m.payload_len)
            assert_memory_equal(d.payload, payload, m.payload_len);

        /* Re-encoding the decoded message reproduces the bytes. */
        static uint8_t again[4096 + 120];
        assert_int_equal(ssm_msg_encode(&d, again, sizeof again), n);
        assert_memory_equal(again, out, (size_t)n);
    }
}

static void test_encode_errors(void **state)
{
    (void)state;
    ssm_msg m = vector_msg();
    uint8_t out[200];
    memset(out, 0x5a, sizeof out);
    for (size_t cap = 0; cap < 123; cap++)
        assert_int_equal(ssm_msg_encode(&m, out, cap), SSM_MSG_ERR_BUFFER);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], 0x5a); /* failed encodes write nothing */
    assert_int_equal(ssm_msg_encode(&m, out, 123), 123);

    m.payload = NULL;
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), SSM_MSG_ERR_ARG);
    m.payload_len = 0;
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), 120);
    assert_int_equal(ssm_msg_encode(NULL, out, sizeof out), SSM_MSG_ERR_ARG);
    m = vector_msg();
    assert_int_equal(ssm_msg_encode(&m, NULL, 200), SSM_MSG_ERR_ARG);
#if SIZE_MAX > UINT32_MAX
    m.payload_len = (size_t)UINT32_MAX + 1;
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), SSM_MSG_ERR_ARG);
#endif
}

/* The digest of an empty payload is still computed (§4). */
static void test_empty_payload_digest(void **state)
{
    (void)state;
    ssm_msg m = vector_msg();
    m.payload = NULL;
    m.payload_len = 0;
    uint8_t out[120];
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), 120);
    assert_memory_equal(out + 80, EMPTY_SHA256, 32);
}

/* Callers may build the payload in place at out + 120. */
static void test_encode_in_place(void **state)
{
    (void)state;
    uint8_t out[200];
    memcpy(out + 120, "ls\r", 3);
    ssm_msg m = vector_msg();
    m.payload = out + 120;
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), 123);
    assert_memory_equal(out, VECTOR, sizeof VECTOR);
    /* Overlapping the header region also works. */
    memcpy(out + 10, "ls\r", 3);
    m.payload = out + 10;
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), 123);
    assert_memory_equal(out, VECTOR, sizeof VECTOR);
}

static void test_header_fields_ignored_on_encode(void **state)
{
    (void)state;
    ssm_msg m = vector_msg();
    m.header_length = 7;
    m.payload_length = 999;
    memset(m.digest, 0x77, 32);
    uint8_t out[200];
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), 123);
    assert_memory_equal(out, VECTOR, sizeof VECTOR);
}

static void test_strerror(void **state)
{
    (void)state;
    const char *seen[9];
    int k = 0;
    for (int e = 0; e >= -7; e--) {
        const char *s = ssm_msg_strerror(e);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (int j = 0; j < k; j++)
            assert_string_not_equal(seen[j], s);
        seen[k++] = s;
    }
    assert_non_null(ssm_msg_strerror(-100));
}

/* §12.1 DisconnectToPort example and the flag helpers. */
static void test_flags(void **state)
{
    (void)state;
    uint8_t p[4];
    ssm_flag_encode(SSM_FLAG_DISCONNECT_TO_PORT, p);
    static const uint8_t one[4] = {0, 0, 0, 1};
    assert_memory_equal(p, one, 4);
    ssm_flag_encode(0x01020304u, p);
    static const uint8_t be[4] = {1, 2, 3, 4};
    assert_memory_equal(p, be, 4);

    uint32_t f = 0;
    assert_int_equal(ssm_flag_decode(be, 4, &f), 0);
    assert_int_equal(f, 0x01020304u);
    static const uint8_t two[5] = {0, 0, 0, 2, 9};
    assert_int_equal(ssm_flag_decode(two, 5, &f), 0); /* excess ignored */
    assert_int_equal(f, SSM_FLAG_TERMINATE_SESSION);
    f = 77;
    for (size_t n = 0; n < 4; n++)
        assert_int_equal(ssm_flag_decode(two, n, &f), -1);
    assert_int_equal(f, 77);
    assert_int_equal(ssm_flag_decode(NULL, 4, &f), -1);

    ssm_msg m = vector_msg();
    ssm_flag_encode(SSM_FLAG_DISCONNECT_TO_PORT, p);
    m.payload_type = SSM_PT_FLAG;
    m.payload = p;
    m.payload_len = 4;
    uint8_t out[200];
    assert_int_equal(ssm_msg_encode(&m, out, sizeof out), 124);
    static const uint8_t tail[12] = {0, 0, 0, 0x0a, 0, 0, 0, 4, 0, 0, 0, 1};
    assert_memory_equal(out + 112, tail, 12);
}

/* §7.2: exact compact JSON, fixed key order. */
static void test_ack_body_exact(void **state)
{
    (void)state;
    static const char want[] =
        "{\"AcknowledgedMessageType\":\"output_stream_data\","
        "\"AcknowledgedMessageId\":\"11223344-5566-4778-899a-abbccddeeff0\","
        "\"AcknowledgedMessageSequenceNumber\":7,\"IsSequentialMessage\":true}";
    char buf[512];
    int n = ssm_ack_body(buf, sizeof buf, SSM_MT_OUTPUT, VECTOR_ID, 7);
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);

    /* Every capacity that cannot hold text + NUL fails; exact fit works. */
    char small[sizeof want];
    for (size_t cap = 0; cap < sizeof want; cap++) {
        memset(small, 'Z', sizeof small);
        assert_int_equal(ssm_ack_body(small, cap, SSM_MT_OUTPUT, VECTOR_ID, 7), -1);
        if (cap > 0)
            assert_true(memchr(small, '\0', cap) != NULL); /* never unterminated */
        for (size_t i = cap; i < sizeof small; i++)
            assert_int_equal(small[i], 'Z'); /* never past cap */
    }
    assert_int_equal(ssm_ack_body(small, sizeof want, SSM_MT_OUTPUT, VECTOR_ID, 7), n);
    assert_string_equal(small, want);
}

static void test_ack_body_values(void **state)
{
    (void)state;
    char buf[512];
    uint8_t id[16] = {0};
    assert_true(ssm_ack_body(buf, sizeof buf, SSM_MT_INPUT, id, INT64_MIN) > 0);
    assert_string_equal(buf, "{\"AcknowledgedMessageType\":\"input_stream_data\","
                             "\"AcknowledgedMessageId\":\"00000000-0000-0000-0000-000000000000\","
                             "\"AcknowledgedMessageSequenceNumber\":-9223372036854775808,"
                             "\"IsSequentialMessage\":true}");
    assert_true(ssm_ack_body(buf, sizeof buf, SSM_MT_OUTPUT, id, INT64_MAX) > 0);
    assert_non_null(strstr(buf, "\"AcknowledgedMessageSequenceNumber\":9223372036854775807,"));
    assert_true(ssm_ack_body(buf, sizeof buf, SSM_MT_OUTPUT, id, 0) > 0);
    assert_non_null(strstr(buf, "\"AcknowledgedMessageSequenceNumber\":0,"));

    /* A hostile type cannot break out of its JSON string. */
    assert_true(ssm_ack_body(buf, sizeof buf, "a\"b\\c\n<&>\x01", id, 1) > 0);
    assert_non_null(strstr(buf, "\"AcknowledgedMessageType\":\"a\\\"b\\\\c\\n\\u003c\\u0026"
                                "\\u003e\\u0001\","));
    int64_t seq = 0;
    assert_int_equal(ssm_ack_parse((const uint8_t *)buf, strlen(buf), &seq), 0);
    assert_true(seq == 1);

    assert_int_equal(ssm_ack_body(buf, sizeof buf, NULL, id, 1), -1);
    assert_int_equal(ssm_ack_body(NULL, 10, SSM_MT_OUTPUT, id, 1), -1);
}

static int parse_str(const char *s, int64_t *seq)
{
    /* Exact-size heap copy without NUL: the parser must respect n. */
    size_t n = strlen(s);
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    int rc = ssm_ack_parse(p, n, seq);
    free(p);
    return rc;
}

static void test_ack_parse(void **state)
{
    (void)state;
    int64_t seq = -1;
    char buf[512];
    int n = ssm_ack_body(buf, sizeof buf, SSM_MT_OUTPUT, VECTOR_ID, 42);
    assert_int_equal(ssm_ack_parse((const uint8_t *)buf, (size_t)n, &seq), 0);
    assert_true(seq == 42);

    struct {
        const char *json;
        int rc;
        int64_t seq;
    } cases[] = {
        /* The agent's form (§7.2) and tolerated variants. */
        {"{\"AcknowledgedMessageType\":\"input_stream_data\",\"AcknowledgedMessageId\":"
         "\"d2e2b1a0-0000-4000-8000-000000000001\",\"AcknowledgedMessageSequenceNumber\":3,"
         "\"IsSequentialMessage\":true}",
         0, 3},
        {"{\"AcknowledgedMessageSequenceNumber\":5}", 0, 5},
        {"  {\"AcknowledgedMessageSequenceNumber\" : 6 , \"Extra\":[1,{\"a\":null}]}\r\n", 0, 6},
        {"{\"acknowledgedmessagesequencenumber\":8}", 0,
         8}, /* Go matches keys case-insensitively */
        {"{\"AcknowledgedMessageSequenceNumber\":9,\"AcknowledgedMessageType\":null,"
         "\"AcknowledgedMessageId\":null,\"IsSequentialMessage\":null}",
         0, 9},
        {"{\"AcknowledgedMessageSequenceNumber\":0}", 0, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":-4}", 0, -4},
        {"{\"AcknowledgedMessageSequenceNumber\":9007199254740992}", 0, 9007199254740992ll},
        /* Rejections. */
        {"{\"AcknowledgedMessageSequenceNumber\":false,\"IsSequentialMessage\":false}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":9007199254740994}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":1e999}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":1.5}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":\"7\"}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":null}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":[7]}", -1, 0},
        {"{\"AcknowledgedMessageType\":\"x\"}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":7,\"AcknowledgedMessageType\":5}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":7,\"AcknowledgedMessageId\":{}}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":7,\"IsSequentialMessage\":\"true\"}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":7} x", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":7}{}", -1, 0},
        {"{\"AcknowledgedMessageSequenceNumber\":7", -1, 0},
        {"[{\"AcknowledgedMessageSequenceNumber\":7}]", -1, 0},
        {"7", -1, 0},
        {"", -1, 0},
        {"   ", -1, 0},
        {"null", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        seq = 12345;
        int rc = parse_str(cases[i].json, &seq);
        if (rc != cases[i].rc)
            fail_msg("case %zu: %s -> %d", i, cases[i].json, rc);
        if (rc == 0)
            assert_true(seq == cases[i].seq);
    }

    /* A NUL right after the object is trailing garbage, not the end. */
    static const uint8_t with_nul[] = "{\"AcknowledgedMessageSequenceNumber\":1}";
    assert_int_equal(ssm_ack_parse(with_nul, sizeof with_nul, &seq), -1);
    assert_int_equal(ssm_ack_parse(with_nul, sizeof with_nul - 1, &seq), 0);
    /* Every truncation of a valid body fails cleanly. */
    for (int l = 0; l < n; l++)
        assert_int_equal(ssm_ack_parse((const uint8_t *)buf, (size_t)l, &seq), -1);
    assert_int_equal(ssm_ack_parse(NULL, 4, &seq), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_encode),
        cmocka_unit_test(test_vector_decode),
        cmocka_unit_test(test_every_field_offset),
        cmocka_unit_test(test_negative_seq_and_high_bits),
        cmocka_unit_test(test_type_padding),
        cmocka_unit_test(test_type_trimming),
        cmocka_unit_test(test_reject_header_length_zero),
        cmocka_unit_test(test_reject_empty_type),
        cmocka_unit_test(test_reject_date_zero),
        cmocka_unit_test(test_reject_digest_mismatch),
        cmocka_unit_test(test_digest_skipped_when_payload_length_zero),
        cmocka_unit_test(test_rejection_order),
        cmocka_unit_test(test_publication_skips_checks),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_longer_header),
        cmocka_unit_test(test_payload_length_lies),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_empty_payload_digest),
        cmocka_unit_test(test_encode_in_place),
        cmocka_unit_test(test_header_fields_ignored_on_encode),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_ack_body_exact),
        cmocka_unit_test(test_ack_body_values),
        cmocka_unit_test(test_ack_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
