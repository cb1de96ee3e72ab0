/* Data channel engine: lifecycle, configuration, receive dispatch by
 * MessageType, transport and publication state, statistics. The send window
 * lives in channel_send.c, incoming sequencing in channel_recv.c. */
#include <stdlib.h>
#include <string.h>

#include "channel_internal.h"
#include "ssm_handshake.h"
#include "ssm_uuid.h"

void ssm_chan_config_default(ssm_chan_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->send_window_bytes = 1024 * 1024;
    cfg->send_window_msgs = 4096;
    cfg->reorder_slots = 128;
    cfg->max_payload = 4096;
    cfg->give_up_ms = 300000;
    cfg->pace_msgs_per_sec = 0;
    cfg->pace_burst = 16;
}

void chan_log(const ssm_chan *c, int level, const char *msg)
{
    if (c->cb.log)
        c->cb.log(c->user, level, msg);
}

/* Rejects configurations whose buffers could not hold one frame or whose
 * sizes would overflow; raises a byte window smaller than one full frame. */
static int normalize_config(ssm_chan_config *cfg)
{
    if (cfg->max_payload == 0 || cfg->max_payload > CHAN_MAX_PAYLOAD_LIMIT)
        return -1;
    if (cfg->send_window_msgs == 0 || cfg->send_window_msgs > CHAN_MAX_WINDOW_MSGS)
        return -1;
    if (cfg->reorder_slots > CHAN_MAX_REORDER_SLOTS)
        return -1;
    if (cfg->send_window_bytes > CHAN_MAX_WINDOW_BYTES)
        return -1;
    size_t full = ssm_msg_encoded_size(cfg->max_payload);
    if (cfg->send_window_bytes < full)
        cfg->send_window_bytes = full;
    if (cfg->pace_burst == 0)
        cfg->pace_burst = 1;
    return 0;
}

ssm_chan *ssm_chan_new(const ssm_chan_config *cfg_in, const ssm_chan_callbacks *cb, void *user)
{
    if (!cb || !cb->on_payload || !cb->random)
        return NULL;
    ssm_chan_config cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        ssm_chan_config_default(&cfg);
    if (normalize_config(&cfg) != 0)
        return NULL;

    ssm_chan *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = cfg;
    c->cb = *cb;
    c->user = user;
    /* Large buffers come from malloc (mmap): pages stay untouched until used. */
    c->ring = malloc(cfg.send_window_bytes);
    c->tx = calloc(cfg.send_window_msgs, sizeof *c->tx);
    c->scratch = malloc(ssm_chan_max_frame(c));
    if (cfg.reorder_slots) {
        c->rx = calloc(cfg.reorder_slots, sizeof *c->rx);
        c->rx_data = malloc((size_t)cfg.reorder_slots * cfg.max_payload);
    }
    if (!c->ring || !c->tx || !c->scratch || (cfg.reorder_slots && (!c->rx || !c->rx_data))) {
        ssm_chan_free(c);
        return NULL;
    }
    c->sent_first = c->sent_last = CHAN_NIL;
    c->rtt_ms = CHAN_RTT_INIT_MS;
    c->rttvar_ms = CHAN_RTTVAR_INIT_MS;
    c->rto_ms = CHAN_RTO_INIT_MS;
    c->pace_milli = (uint64_t)cfg.pace_burst * 1000u;
    c->up = true;
    return c;
}

void ssm_chan_free(ssm_chan *c)
{
    if (!c)
        return;
    free(c->ring);
    free(c->tx);
    free(c->scratch);
    free(c->rx);
    free(c->rx_data);
    free(c);
}

void chan_new_msg_id(ssm_chan *c, uint8_t id[16])
{
    if (c->rnd_left < 16) {
        c->cb.random(c->user, c->rnd, sizeof c->rnd);
        c->rnd_left = sizeof c->rnd;
    }
    memcpy(id, c->rnd + sizeof c->rnd - c->rnd_left, 16);
    c->rnd_left -= 16;
    ssm_uuid_v4_from_random(id);
}

void ssm_chan_set_clock_offset(ssm_chan *c, int64_t wall_minus_mono_ms)
{
    if (c)
        c->clock_offset_ms = wall_minus_mono_ms;
}

static void handle_channel_closed(ssm_chan *c, const ssm_msg *m)
{
    char *output = ssm_channel_closed_output(m->payload, m->payload_len);
    if (c->cb.on_closed)
        c->cb.on_closed(c->user, output ? output : "");
    free(output);
}

int ssm_chan_receive(ssm_chan *c, const uint8_t *frame, size_t len, uint64_t now_ms)
{
    if (!c || !frame)
        return SSM_CHAN_EINVAL;
    ssm_msg m;
    if (ssm_msg_decode(frame, len, &m) != SSM_MSG_OK) {
        c->st.recv_invalid++;
        chan_log(c, 2, "channel: dropped malformed frame");
        return SSM_CHAN_EINVAL;
    }
    if (strcmp(m.type, SSM_MT_ACK) == 0) {
        int64_t seq;
        if (ssm_ack_parse(m.payload, m.payload_len, &seq) != 0) {
            c->st.recv_invalid++;
            chan_log(c, 2, "channel: dropped acknowledge with a bad body");
            return SSM_CHAN_EINVAL;
        }
        c->paused = false;
        c->st.acks_received++;
        chan_tx_handle_ack(c, seq, now_ms);
    } else if (strcmp(m.type, SSM_MT_OUTPUT) == 0) {
        /* Negative sequence numbers are never sent by the agent; acking one
         * ("duplicate") would be meaningless, so it is malformed input. */
        if (m.seq < 0) {
            c->st.recv_invalid++;
            return SSM_CHAN_EINVAL;
        }
        c->paused = false;
        chan_rx_stream_data(c, &m, now_ms);
    } else if (strcmp(m.type, SSM_MT_CHANNEL_CLOSED) == 0) {
        handle_channel_closed(c, &m);
    } else if (strcmp(m.type, SSM_MT_START_PUB) == 0) {
        c->paused = false;
    } else if (strcmp(m.type, SSM_MT_PAUSE_PUB) == 0) {
        c->paused = true;
    } else {
        chan_log(c, 3, "channel: ignored message of unknown type");
    }
    return SSM_CHAN_OK;
}

void ssm_chan_transport_down(ssm_chan *c)
{
    if (c)
        c->up = false;
}

void ssm_chan_transport_up(ssm_chan *c, uint64_t now_ms)
{
    (void)now_ms;
    if (!c)
        return;
    c->up = true;
    c->paused = false;
    chan_tx_reset_connection(c);
}

void ssm_chan_resume_delivery(ssm_chan *c, uint64_t now_ms)
{
    (void)now_ms;
    if (c)
        chan_rx_drain(c);
}

void ssm_chan_trim(ssm_chan *c, void (*release)(void *ctx, void *p, size_t n), void *ctx)
{
    if (!c || !release)
        return;
    if (c->tx_count == 0 && c->ring_used == 0)
        release(ctx, c->ring, c->cfg.send_window_bytes);
    if (c->rx && c->rx_buffered == 0)
        release(ctx, c->rx_data, (size_t)c->cfg.reorder_slots * c->cfg.max_payload);
}

void ssm_chan_get_stats(const ssm_chan *c, ssm_chan_stats *st)
{
    if (!c || !st)
        return;
    *st = c->st;
    st->unacked_msgs = c->unacked_msgs;
    st->unacked_bytes = c->unacked_bytes;
    st->buffered_msgs = c->rx_buffered;
    st->next_seq = c->next_seq;
    st->expected_seq = c->expected;
    st->rtt_ms = c->rtt_ms;
    st->rttvar_ms = c->rttvar_ms;
    st->rto_ms = c->rto_ms;
    st->paused = c->paused;
}

int ssm_chan_test_set_seq(ssm_chan *c, int64_t next_seq, int64_t expected)
{
    if (!c || c->tx_count || c->rx_buffered || next_seq < 0 || expected < 0)
        return -1;
    c->next_seq = next_seq;
    c->expected = expected;
    c->expected_done = false;
    return 0;
}
