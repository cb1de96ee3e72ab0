/* The data channel engine (PROTOCOL.md §7): sequencing, acknowledgements,
 * reordering, retransmission with RTT/RTO, flow control and pacing.
 *
 * Sans-I/O in the spirit of nghttp2: frames come in through ssm_chan_receive(),
 * frames go out when the transport pulls them with ssm_chan_pull(), and every
 * call that depends on time takes the current time in milliseconds. Nothing in
 * here reads a clock, a socket or a file.
 *
 * Memory: the send window is one byte ring of serialized frames plus a ring of
 * small entry records, both allocated once at ssm_chan_new() (untouched pages
 * stay unmapped until used); the reorder buffer is a fixed slot pool. No
 * allocation per message. */
#ifndef SSM_CHANNEL_H
#define SSM_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ssm_chan ssm_chan;

/* Return values of on_payload. */
enum ssm_deliver {
    SSM_DELIVER_OK = 0,        /* consumed: the message may be acknowledged and released */
    SSM_DELIVER_NOT_READY = 1, /* handler cannot take it now: keep it (if already acked and
                                  buffered) or leave it unacknowledged; retried after
                                  ssm_chan_resume_delivery() or a retransmission */
};

/* Errors. */
enum ssm_chan_err {
    SSM_CHAN_OK = 0,
    SSM_CHAN_EFULL = -1,   /* send window full: stop reading local sources */
    SSM_CHAN_E2BIG = -2,   /* payload larger than max_payload */
    SSM_CHAN_EINVAL = -3,  /* malformed frame (dropped; never fatal) */
    SSM_CHAN_ENOMEM = -4,
};

typedef struct ssm_chan_callbacks {
    /* An in-order payload of an output_stream_data message (handshake, data,
     * flags...). Must not call ssm_chan_receive() re-entrantly; may call
     * ssm_chan_send(). */
    int (*on_payload)(void *user, uint32_t payload_type, const uint8_t *p, size_t n);
    /* channel_closed from the service; output is its "Output" field ("" when
     * absent or not JSON). */
    void (*on_closed)(void *user, const char *output);
    /* Called when acknowledgements freed room after ssm_chan_send() had
     * returned SSM_CHAN_EFULL or send space had dropped to 0: resume reading. */
    void (*on_send_space)(void *user);
    /* Fills n bytes with cryptographic randomness (message ids). */
    void (*random)(void *user, uint8_t *buf, size_t n);
    /* Optional diagnostic hook; never given payload bytes, tokens or keys. */
    void (*log)(void *user, int level, const char *msg);
} ssm_chan_callbacks;

typedef struct ssm_chan_config {
    size_t send_window_bytes;  /* bytes of serialized unacked frames (default 1 MiB) */
    uint32_t send_window_msgs; /* unacked message count cap (default 4096) */
    uint32_t reorder_slots;    /* early messages kept, by distance ahead (default 128) */
    uint32_t max_payload;      /* largest payload accepted/sent (default 4096) */
    uint64_t give_up_ms;       /* oldest unacked message older than this: timed out
                                  (default 300000, the official ~5 minutes) */
    uint32_t pace_msgs_per_sec; /* first transmissions of data messages; 0 = unpaced */
    uint32_t pace_burst;        /* token bucket depth (default 16) */
} ssm_chan_config;

/* Fills cfg with the defaults above. */
void ssm_chan_config_default(ssm_chan_config *cfg);

ssm_chan *ssm_chan_new(const ssm_chan_config *cfg, const ssm_chan_callbacks *cb, void *user);
void ssm_chan_free(ssm_chan *c);
/* Hands the big buffers that hold nothing right now to release(ctx, p, n):
 * the send ring when nothing is unacknowledged, the reorder pool when
 * nothing is buffered. Their bytes may be discarded (e.g. madvise
 * MADV_DONTNEED on the whole pages inside): the channel rewrites before it
 * reads. For an idle session after a burst. */
void ssm_chan_trim(ssm_chan *c, void (*release)(void *ctx, void *p, size_t n), void *ctx);

/* now_ms is a monotonic clock; CreatedDate must be wall-clock epoch ms. Frames
 * built after this call carry CreatedDate = now_ms + wall_minus_mono_ms
 * (never 0). Default offset 0. */
void ssm_chan_set_clock_offset(ssm_chan *c, int64_t wall_minus_mono_ms);

/* One websocket message from the service. Acks, channel_closed and
 * publication control are handled here; output_stream_data goes through
 * sequencing to on_payload. Malformed frames are dropped (SSM_CHAN_EINVAL is
 * returned for statistics; the caller carries on). */
int ssm_chan_receive(ssm_chan *c, const uint8_t *frame, size_t len, uint64_t now_ms);

/* Queues one input_stream_data message (assigns the next sequence number).
 * The payload is copied; it goes out through ssm_chan_pull(). */
int ssm_chan_send(ssm_chan *c, uint32_t payload_type, const uint8_t *p, size_t n, uint64_t now_ms);
/* Largest payload ssm_chan_send() would accept now (0: window full). */
size_t ssm_chan_send_space(const ssm_chan *c);
/* Messages from the first one ssm_chan_pull() has yet to hand out on the
 * current connection to the newest (waiting for pacing, the socket or a
 * connection); acked ones at the front do not count. */
uint32_t ssm_chan_unsent(const ssm_chan *c);

/* True when ssm_chan_pull() has a frame to hand out at now_ms. */
bool ssm_chan_want_write(const ssm_chan *c, uint64_t now_ms);
/* Copies the next frame to transmit (pending ack, first transmission, or an
 * expired retransmission) into out and returns its length; 0 when nothing is
 * due. Returns 0 too if cap is too small for the next frame
 * (ssm_chan_max_frame() bytes always suffice). */
size_t ssm_chan_pull(ssm_chan *c, uint64_t now_ms, uint8_t *out, size_t cap);
size_t ssm_chan_max_frame(const ssm_chan *c);
/* Milliseconds until something becomes due (retransmission, pacing token,
 * give-up); -1 when nothing is pending. Returns 0 exactly when
 * ssm_chan_want_write() is true; anything held back (pacing, the resend
 * budget below) reports the real time at which it becomes due, so a caller
 * that sleeps for the returned time never spins.
 *
 * Retransmission policy (PROTOCOL.md §7.5, RTO from §7.4, at most 1 s):
 *  - the head-of-line (oldest unacknowledged) message is resent whenever one
 *    RTO has passed since its last transmission, without backoff, so the
 *    peer's in-order delivery recovers within an RTO;
 *  - other messages are resent too (the agent buffers up to 100000 early
 *    messages, so this only speeds recovery from multiple losses), but each
 *    waits RTO x 2^resends (capped at 8 x RTO) since its last transmission,
 *    least recently sent first, and together they get at most 8 resends per
 *    100 ms round;
 *  - nothing is resent while the transport is down or the channel paused;
 *    after ssm_chan_transport_up() every unacked message is replayed once, in
 *    sequence order, without those limits;
 *  - the give-up deadline is the head's first transmission + give_up_ms. */
int64_t ssm_chan_next_timeout(const ssm_chan *c, uint64_t now_ms);

/* Transport state. While down nothing is pulled; on up every unacked message
 * is due for (re)transmission in sequence order. */
void ssm_chan_transport_down(ssm_chan *c);
void ssm_chan_transport_up(ssm_chan *c, uint64_t now_ms);

/* The handler became ready again: deliver what is buffered in order. */
void ssm_chan_resume_delivery(ssm_chan *c, uint64_t now_ms);

/* True once the oldest unacked message has waited longer than give_up_ms. */
bool ssm_chan_timed_out(const ssm_chan *c, uint64_t now_ms);

typedef struct ssm_chan_stats {
    uint64_t sent_msgs, sent_bytes, retransmits, acks_sent, acks_received;
    uint64_t recv_msgs, recv_dup, recv_early, recv_dropped, recv_invalid;
    uint32_t unacked_msgs;
    size_t unacked_bytes;
    uint32_t buffered_msgs;
    int64_t next_seq, expected_seq;
    double rtt_ms, rttvar_ms, rto_ms;
    bool paused;
} ssm_chan_stats;
void ssm_chan_get_stats(const ssm_chan *c, ssm_chan_stats *st);

#endif
