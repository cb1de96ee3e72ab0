/* RFC 6455 websocket framing for the client side of the data channel, pure
 * (no I/O): masked client frames out, unmasked server frames in.
 *
 * Why it exists: libwebsockets 4.1 frames every client write itself (one
 * /dev/urandom read per mask key, byte-at-a-time masking, one send per
 * frame) and parses received frames a byte at a time. The transport uses
 * this codec on the established connection instead, so many frames go out
 * in one write and a whole received frame is handed over without a copy. */
#ifndef SSM_WS_FRAME_H
#define SSM_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    SSM_WS_OP_CONT = 0x0,
    SSM_WS_OP_TEXT = 0x1,
    SSM_WS_OP_BINARY = 0x2,
    SSM_WS_OP_CLOSE = 0x8,
    SSM_WS_OP_PING = 0x9,
    SSM_WS_OP_PONG = 0xA,
};

/* Largest client frame header: 2 + 8 (64-bit length) + 4 (mask key). */
#define SSM_WS_MAX_HDR 14u
/* Largest control frame payload (RFC 6455 §5.5). */
#define SSM_WS_MAX_CTRL 125u

/* Bytes a masked client frame of n payload bytes takes. */
size_t ssm_ws_client_frame_len(size_t n);

/* Writes one final (FIN) masked client frame of opcode with payload p[0..n)
 * into out (cap bytes). The payload is copied and masked in one pass; p
 * may not overlap out. Returns the frame length, or 0 when it does not fit
 * or a control frame is longer than 125 bytes. */
size_t ssm_ws_client_frame(uint8_t *out, size_t cap, unsigned opcode, const uint8_t *p,
                           size_t n, const uint8_t mask[4]);

/* XORs buf[0..n) with the 4-byte key, starting at key offset 0 (a word at a
 * time). Applying it twice restores the input. */
void ssm_ws_mask(uint8_t *buf, size_t n, const uint8_t mask[4]);

/* Incremental parser of server-to-client frames. Whole unfragmented frames
 * that arrive in one feed are delivered in place (no copy); fragmented or
 * split ones are assembled in the caller's buffer (msg, msg_cap bytes).
 * Messages longer than msg_cap are skipped and counted in `dropped`. */
typedef struct ssm_ws_rx {
    uint8_t *msg;
    size_t msg_cap;
    size_t msg_len;      /* assembled bytes of the current data message */
    unsigned msg_op;     /* its opcode (TEXT/BINARY) while fragmented */
    bool in_msg;         /* a fragmented data message is under way */
    bool msg_overflow;   /* ... and is being skipped (too long) */
    uint8_t hdr[SSM_WS_MAX_HDR];
    size_t hdr_len;      /* header bytes held (a header split across feeds) */
    bool in_payload;     /* inside the payload of the current frame */
    unsigned op;         /* current frame's opcode */
    bool fin;
    uint64_t left;       /* payload bytes of the current frame still to come */
    uint8_t ctrl[SSM_WS_MAX_CTRL];
    size_t ctrl_len;
    uint64_t dropped;    /* oversized messages skipped */
} ssm_ws_rx;

/* One complete message (TEXT/BINARY) or control frame (CLOSE/PING/PONG).
 * p is valid only during the call. Return non-zero to stop parsing: feed
 * then returns SSM_WS_STOPPED and *used says how far it got. */
typedef int (*ssm_ws_on_frame)(void *user, unsigned opcode, const uint8_t *p, size_t n);

enum {
    SSM_WS_OK = 0,
    SSM_WS_EPROTO = -1,   /* the server broke RFC 6455 (the connection must close) */
    SSM_WS_STOPPED = -2,  /* the callback asked to stop */
};

void ssm_ws_rx_init(ssm_ws_rx *r, uint8_t *msg, size_t msg_cap);
/* Consumes in[0..n): calls on_frame for each message or control frame
 * completed. Returns SSM_WS_OK (all consumed), SSM_WS_EPROTO (masked server
 * frame, reserved bits, bad opcode, oversized or fragmented control frame,
 * continuation out of place, 64-bit length with the top bit set), or
 * SSM_WS_STOPPED. *used (may be NULL) gets the bytes consumed. */
int ssm_ws_rx_feed(ssm_ws_rx *r, const uint8_t *in, size_t n, ssm_ws_on_frame on_frame,
                   void *user, size_t *used);

#endif
