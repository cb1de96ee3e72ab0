/* Private state of the data channel engine, shared by channel.c (lifecycle,
 * receive dispatch), channel_send.c (send window, acks in, pull, timers) and
 * channel_recv.c (incoming sequencing, reorder pool, ack queue). Not a
 * contract: only the channel sources and its unit tests include it. */
#ifndef SSM_CHANNEL_INTERNAL_H
#define SSM_CHANNEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ssm_channel.h"
#include "ssm_msg.h"

#define CHAN_NIL UINT32_MAX

/* Estimator constants (PROTOCOL.md §7.4), in milliseconds. */
#define CHAN_RTT_INIT_MS 100.0
#define CHAN_RTTVAR_INIT_MS 0.0
#define CHAN_RTO_INIT_MS 200.0
#define CHAN_RTO_MAX_MS 1000.0
#define CHAN_CLOCK_G_MS 10.0

/* Retransmission policy (see ssm_chan_next_timeout in ssm_channel.h): the
 * head-of-line message is resent every RTO; other expired messages share a
 * budget of CHAN_RETX_BURST resends per CHAN_RETX_ROUND_MS, and each one's
 * interval doubles with every resend up to RTO << CHAN_RETX_BACKOFF_MAX_SHIFT,
 * so a stalled peer costs a few frames per second, not the whole window. */
#define CHAN_RETX_BURST 8u
#define CHAN_RETX_ROUND_MS 100u
#define CHAN_RETX_BACKOFF_MAX_SHIFT 3u

/* Pending acknowledgements; on overflow the oldest is dropped (the agent
 * retransmits that message and we re-acknowledge it). */
#define CHAN_ACK_SLOTS 256u

/* Largest ack JSON body: fixed text + 36-char UUID + 20-char int64. */
#define CHAN_ACK_BODY_MAX 256u

/* Hard limits that keep size arithmetic far from overflow. */
#define CHAN_MAX_PAYLOAD_LIMIT (16u * 1024u * 1024u)
#define CHAN_MAX_REORDER_SLOTS (1u << 20)
#define CHAN_MAX_WINDOW_MSGS (1u << 24)
#define CHAN_MAX_WINDOW_BYTES ((size_t)1 << 32)

/* One unacknowledged (or acknowledged but not yet freed) outgoing frame. */
struct chan_tx_entry {
    size_t off;          /* frame start in the byte ring */
    uint32_t len;        /* serialized frame length */
    uint32_t resends;    /* retransmissions, including replays after reconnect */
    uint64_t first_send; /* first transmission (valid when transmitted) */
    uint64_t last_send;  /* latest transmission on the current connection */
    uint32_t prev, next; /* links in the sent-order list (CHAN_NIL ends) */
    bool acked;
    bool transmitted; /* ever handed out */
    bool in_list;     /* on the sent-order list */
};

/* One early (or held-back) incoming message. */
struct chan_rx_slot {
    int64_t seq;
    uint32_t payload_type;
    uint32_t len;
    uint8_t id[16];
    bool used;
    bool acked; /* false only for an in-order message the handler refused */
};

struct chan_ack_rec {
    int64_t seq;
    uint8_t id[16];
};

#define CHAN_RND_POOL 256u

struct ssm_chan {
    ssm_chan_config cfg;
    ssm_chan_callbacks cb;
    void *user;
    int64_t clock_offset_ms; /* wall-clock epoch ms minus now_ms */

    /* ---- send window ---- */
    uint8_t *ring;                  /* cfg.send_window_bytes of serialized frames */
    size_t ring_head;               /* offset of the head entry's frame */
    size_t ring_used;               /* bytes from ring_head to the tail */
    struct chan_tx_entry *tx;       /* cfg.send_window_msgs records */
    uint32_t tx_head;               /* record index of the oldest entry */
    uint32_t tx_count;              /* entries in the window (acked ones at the head are popped) */
    uint32_t tx_cursor;             /* entries from the head already sent on this connection */
    int64_t next_seq;               /* sequence number of the next ssm_chan_send */
    uint32_t sent_first, sent_last; /* sent-order list, oldest last_send first */
    uint32_t unacked_msgs;
    size_t unacked_bytes;
    bool space_starved; /* send space fell below max_payload: owe on_send_space */
    uint8_t *scratch;   /* one frame, for serializing before the ring copy */

    /* ---- estimator and timers ---- */
    double rtt_ms, rttvar_ms, rto_ms;
    uint64_t pace_last_ms; /* last token refill */
    uint64_t pace_milli;   /* tokens x 1000 */
    bool pace_started;
    uint64_t retx_round_start;
    uint32_t retx_round_count;
    bool retx_round_valid;

    /* ---- receive side ---- */
    int64_t expected;        /* next in-order incoming sequence number */
    bool expected_done;      /* INT64_MAX was delivered: everything is a duplicate */
    struct chan_rx_slot *rx; /* cfg.reorder_slots, indexed by seq mod slots */
    uint8_t *rx_data;        /* reorder_slots x max_payload bytes */
    uint32_t rx_buffered;
    bool delivering; /* re-entrancy guard for the drain loop */

    struct chan_ack_rec acks[CHAN_ACK_SLOTS];
    uint32_t ack_head, ack_count;

    bool up, paused;
    ssm_chan_stats st;

    /* Message-id randomness drawn CHAN_RND_POOL bytes at a time: one
     * callback (one RAND_bytes, with its fork check) per 16 ids, not per id. */
    uint8_t rnd[CHAN_RND_POOL];
    size_t rnd_left;
};

/* channel.c */
/* A fresh version-4 message id from the pool. */
void chan_new_msg_id(ssm_chan *c, uint8_t id[16]);

/* channel_send.c */
void chan_tx_handle_ack(ssm_chan *c, int64_t seq, uint64_t now_ms);
uint64_t chan_created_ms(const ssm_chan *c, uint64_t now_ms);
void chan_tx_reset_connection(ssm_chan *c);

/* channel_recv.c */
void chan_rx_stream_data(ssm_chan *c, const ssm_msg *m, uint64_t now_ms);
void chan_rx_drain(ssm_chan *c);
void chan_ack_push(ssm_chan *c, int64_t seq, const uint8_t id[16]);
size_t chan_ack_pull(ssm_chan *c, uint64_t now_ms, uint8_t *out, size_t cap);

void chan_log(const ssm_chan *c, int level, const char *msg);

/* Test hook: start the outgoing and incoming sequence spaces elsewhere than
 * 0 (to exercise values near INT64_MAX). Only allowed while both the send
 * window and the reorder pool are empty; returns 0 or -1. */
int ssm_chan_test_set_seq(ssm_chan *c, int64_t next_seq, int64_t expected);

#endif
