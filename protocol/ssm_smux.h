/* smux protocol version 1, client role (PROTOCOL.md §11), sans-I/O.
 *
 * Bytes from the agent go in with ssm_smux_feed() in any fragmentation;
 * per-stream data and EOF come out through ssm_smux_read()/peek() after an
 * on_readable() notification. Bytes for the agent (SYN, PSH, FIN, NOP frames)
 * collect in one bounded output queue that the caller drains with
 * ssm_smux_out_read() into data-channel payloads. Time only comes in as
 * now_ms arguments.
 *
 * Memory policy (smux v1 has no flow-control window): each stream has a
 * bounded receive ring and the whole session a bounded total. ssm_smux_feed()
 * is all-or-nothing: when some stream could not take n more bytes (or the
 * session total would pass its cap) it consumes nothing and returns
 * SSM_SMUX_NOT_READY; the caller then reports "not ready" to the data channel,
 * which withholds the acknowledgement, and feeds the same bytes again after
 * the local side drained (ssm_smux_can_feed() says when). Nothing is dropped
 * and memory stays bounded, at the price of head-of-line blocking (which the
 * official plugin has too). */
#ifndef SSM_SMUX_H
#define SSM_SMUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSM_SMUX_VERSION 1u
#define SSM_SMUX_HEADER_SIZE 8u
#define SSM_SMUX_MAX_FRAME 32768u            /* outgoing PSH split size */
#define SSM_SMUX_KEEPALIVE_INTERVAL_MS 10000u /* NOP every 10 s */
#define SSM_SMUX_KEEPALIVE_TIMEOUT_MS 30000u  /* dead if nothing came in 30 s */
#define SSM_SMUX_MIN_FEED 65536u              /* stream_rx_cap is at least this */

enum ssm_smux_cmd {
    SSM_SMUX_SYN = 0,
    SSM_SMUX_FIN = 1,
    SSM_SMUX_PSH = 2,
    SSM_SMUX_NOP = 3,
    SSM_SMUX_UPD = 4, /* v2 window update; tolerated (8 bytes skipped) like smux */
};

enum ssm_smux_err {
    SSM_SMUX_OK = 0,
    SSM_SMUX_NOT_READY = 1, /* feed: nothing consumed, retry after draining */
    SSM_SMUX_EPROTO = -1,   /* bad version or unknown command: session dead */
    SSM_SMUX_ENOMEM = -2,
    SSM_SMUX_EDEAD = -3,    /* session already dead (protocol error, keepalive timeout) */
    SSM_SMUX_ELIMIT = -4,   /* too many streams, or stream ids exhausted */
    SSM_SMUX_ENOENT = -5,   /* no such stream */
    SSM_SMUX_ETIMEDOUT = -6, /* keepalive: nothing received for a whole timeout */
    SSM_SMUX_E2BIG = -7      /* feed: n > stream_rx_cap, split it (not fatal) */
};

typedef struct ssm_smux_config {
    bool keepalive;               /* send NOPs and apply the dead-session check */
    uint32_t keepalive_interval_ms;
    uint32_t keepalive_timeout_ms;
    uint32_t max_frame;           /* outgoing PSH data bytes per frame (1..65535) */
    size_t stream_rx_cap;         /* per-stream receive ring (default 256 KiB) */
    size_t session_rx_cap;        /* all streams together (default 4 MiB, as smux) */
    size_t tx_cap;                /* output queue for stream data (default 256 KiB) */
    uint32_t max_streams;         /* concurrently open streams (default 1024) */
} ssm_smux_config;

void ssm_smux_config_default(ssm_smux_config *cfg);

typedef struct ssm_smux_callbacks {
    /* Stream sid got data, or the peer's FIN: read it with ssm_smux_read() /
     * peek(), check ssm_smux_eof(). Called after the fed bytes were parsed,
     * never in the middle of a frame; may call any ssm_smux_* function except
     * ssm_smux_feed() and ssm_smux_free(). */
    void (*on_readable)(void *user, uint32_t sid, void *stream_user);
} ssm_smux_callbacks;

typedef struct ssm_smux ssm_smux;

ssm_smux *ssm_smux_new(const ssm_smux_config *cfg, const ssm_smux_callbacks *cb, void *user,
                       uint64_t now_ms);
void ssm_smux_free(ssm_smux *m);

/* Bytes received from the agent (concatenated Output payloads). Returns
 * SSM_SMUX_OK (all consumed), SSM_SMUX_NOT_READY (nothing consumed),
 * SSM_SMUX_E2BIG (nothing consumed: feed at most stream_rx_cap bytes at once)
 * or another negative error (the session is dead from then on). */
int ssm_smux_feed(ssm_smux *m, const uint8_t *p, size_t n, uint64_t now_ms);
/* True when ssm_smux_feed() of n bytes would not return NOT_READY. */
bool ssm_smux_can_feed(const ssm_smux *m, size_t n);

/* Opens a stream: queues SYN, returns 0 and the new odd id (3, 5, ...). */
int ssm_smux_open(ssm_smux *m, void *stream_user, uint32_t *sid);
/* Bytes ssm_smux_write() would accept now (over all streams). */
size_t ssm_smux_write_space(const ssm_smux *m);
/* Queues data as PSH frames; returns the bytes accepted (maybe fewer than n,
 * 0 when the queue is full) or a negative error. */
long ssm_smux_write(ssm_smux *m, uint32_t sid, const uint8_t *p, size_t n);
/* Full close: queues FIN and forgets the stream (its buffered data and any
 * later PSH for it are discarded). */
int ssm_smux_close(ssm_smux *m, uint32_t sid);

/* Received data. peek() gives the contiguous part at the front of the ring. */
size_t ssm_smux_readable(const ssm_smux *m, uint32_t sid);
size_t ssm_smux_peek(const ssm_smux *m, uint32_t sid, const uint8_t **p);
void ssm_smux_consume(ssm_smux *m, uint32_t sid, size_t n);
size_t ssm_smux_read(ssm_smux *m, uint32_t sid, uint8_t *buf, size_t cap);
/* The peer sent FIN and every byte before it has been read. */
bool ssm_smux_eof(const ssm_smux *m, uint32_t sid);

/* Output queue: bytes to send to the agent, in order. */
size_t ssm_smux_out_pending(const ssm_smux *m);
size_t ssm_smux_out_read(ssm_smux *m, uint8_t *buf, size_t cap);

/* Timers: queues a NOP when due and applies the dead-session check. Returns
 * SSM_SMUX_OK or SSM_SMUX_ETIMEDOUT (the session is then dead). */
int ssm_smux_tick(ssm_smux *m, uint64_t now_ms);
/* Milliseconds until ssm_smux_tick() has work; -1 when keepalive is off. */
int64_t ssm_smux_next_timeout(const ssm_smux *m, uint64_t now_ms);

bool ssm_smux_dead(const ssm_smux *m);
const char *ssm_smux_strerror(int err);

typedef struct ssm_smux_stats {
    uint32_t open_streams;
    size_t rx_buffered; /* bytes in all receive rings */
    size_t tx_queued;   /* bytes in the output queue */
    uint64_t frames_in, frames_out, bytes_discarded, nops_in;
} ssm_smux_stats;
void ssm_smux_get_stats(const ssm_smux *m, ssm_smux_stats *st);

#endif
