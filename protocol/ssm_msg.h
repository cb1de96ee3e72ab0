/* ClientMessage: the binary frame both sides of the SSM data channel speak
 * (PROTOCOL.md §4-6). Pure codec: no allocation, no I/O. */
#ifndef SSM_MSG_H
#define SSM_MSG_H

#include <stddef.h>
#include <stdint.h>

#define SSM_MSG_HEADER_LENGTH 116u /* value of the HeaderLength field */
#define SSM_MSG_PAYLOAD_OFFSET 120u /* HeaderLength + the PayloadLength field */
#define SSM_MSG_TYPE_LEN 32u

/* MessageType strings. */
#define SSM_MT_INPUT "input_stream_data"
#define SSM_MT_OUTPUT "output_stream_data"
#define SSM_MT_ACK "acknowledge"
#define SSM_MT_CHANNEL_CLOSED "channel_closed"
#define SSM_MT_START_PUB "start_publication"
#define SSM_MT_PAUSE_PUB "pause_publication"

enum ssm_payload_type {
    SSM_PT_NONE = 0,
    SSM_PT_OUTPUT = 1,
    SSM_PT_ERROR = 2,
    SSM_PT_SIZE = 3,
    SSM_PT_PARAMETER = 4,
    SSM_PT_HANDSHAKE_REQUEST = 5,
    SSM_PT_HANDSHAKE_RESPONSE = 6,
    SSM_PT_HANDSHAKE_COMPLETE = 7,
    SSM_PT_ENC_CHALLENGE_REQUEST = 8,
    SSM_PT_ENC_CHALLENGE_RESPONSE = 9,
    SSM_PT_FLAG = 10,
    SSM_PT_STDERR = 11,
    SSM_PT_EXIT_CODE = 12,
};

/* Flag payload values (PayloadType 10, 4-byte big-endian). */
enum ssm_flag {
    SSM_FLAG_DISCONNECT_TO_PORT = 1,
    SSM_FLAG_TERMINATE_SESSION = 2,
    SSM_FLAG_CONNECT_TO_PORT_ERROR = 3,
};

/* Header Flags values the client sends. */
#define SSM_MSGFLAG_DATA 0u
#define SSM_MSGFLAG_SYN 1u
#define SSM_MSGFLAG_ACK 3u

typedef struct ssm_msg {
    char type[SSM_MSG_TYPE_LEN + 1]; /* NUL- and space-trimmed, NUL-terminated */
    uint32_t header_length;
    uint32_t schema_version;
    uint64_t created_ms;
    int64_t seq;
    uint64_t flags;
    uint8_t id[16]; /* canonical RFC 4122 byte order (halves already un-swapped) */
    uint8_t digest[32];
    uint32_t payload_type;
    uint32_t payload_length; /* the declared field; informational on decode */
    const uint8_t *payload;  /* decode: points into the input buffer */
    size_t payload_len;      /* decode: bytes from HeaderLength+4 to the end */
} ssm_msg;

enum ssm_msg_err {
    SSM_MSG_OK = 0,
    SSM_MSG_ERR_SHORT = -1,      /* shorter than 120 bytes or HeaderLength+4 past the end */
    SSM_MSG_ERR_HEADER_LEN = -2, /* HeaderLength 0 */
    SSM_MSG_ERR_TYPE = -3,       /* empty MessageType */
    SSM_MSG_ERR_DATE = -4,       /* CreatedDate 0 */
    SSM_MSG_ERR_DIGEST = -5,     /* PayloadLength != 0 and SHA-256 mismatch */
    SSM_MSG_ERR_BUFFER = -6,     /* encode: output buffer too small */
    SSM_MSG_ERR_ARG = -7,        /* encode: bad argument (type too long, ...) */
};

/* Decodes and validates per PROTOCOL.md §4.3 (start/pause_publication skip the
 * semantic checks). Never reads outside buf[0..len). */
int ssm_msg_decode(const uint8_t *buf, size_t len, ssm_msg *out);

/* Bytes needed to encode a message with this payload size. */
static inline size_t ssm_msg_encoded_size(size_t payload_len)
{
    return SSM_MSG_PAYLOAD_OFFSET + payload_len;
}

/* Encodes m (type, schema_version, created_ms, seq, flags, id, payload_type,
 * payload/payload_len; HeaderLength 116, PayloadLength and digest computed)
 * into out. Returns the size written, or a negative ssm_msg_err. */
long ssm_msg_encode(const ssm_msg *m, uint8_t *out, size_t cap);

const char *ssm_msg_strerror(int err);

/* Acknowledge JSON body (§7.2). Writes a NUL-terminated compact JSON into buf;
 * returns its length (without NUL) or -1 if cap is too small. */
int ssm_ack_body(char *buf, size_t cap, const char *acked_type, const uint8_t id[16], int64_t seq);
/* Parses an acknowledge body; returns 0 and the acknowledged sequence number. */
int ssm_ack_parse(const uint8_t *p, size_t n, int64_t *seq);

/* 4-byte big-endian flag payload helpers. */
void ssm_flag_encode(uint32_t flag, uint8_t out[4]);
int ssm_flag_decode(const uint8_t *p, size_t n, uint32_t *flag);

#endif
