/* Our own websocket framing on the established data-channel connection.
 *
 * lws 4.1 sends each client frame with a 4-byte /dev/urandom read for its
 * mask key, a byte-at-a-time masking loop and one send(); it parses every
 * received byte through a state machine. Per 1 KiB message that was most of
 * our CPU. Here, once lws has dialed and upgraded:
 *  - out: every frame the channel has ready is framed and masked
 *    (ssm_ws_frame, keys from OpenSSL's CSPRNG drawn 256 at a time) into one
 *    buffer and written straight to the socket (over TLS as records of at
 *    most 4 KiB); only what the socket does not take goes to lws to buffer
 *    (send_raw);
 *  - in: lws's own POLLIN is switched off (rx flow control) and a duplicate
 *    of the socket is adopted as a raw descriptor; on readable we recv (or
 *    SSL_read, with read-ahead, on lws's TLS session) up to 64 KiB at a time
 *    and parse in place; the acks the batch produced leave at its end. The
 *    agent sends nothing before our OpenDataChannel, which goes out only
 *    after this switch, so lws holds no unread websocket bytes;
 *  - while data streams in, reads are coalesced (see "bulk coalescing").
 * Closing stays with lws (it flushes what it buffered, then closes), and so
 * do its validity pings (whole frames between ours); their pongs come to us
 * and are passed on with lws_validity_confirmed(). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "transport_priv.h"

#define RD_CAP (64u * 1024u)
#define OUT_BATCH (64u * 1024u) /* stop pulling frames past this */
#define READ_BUDGET (1u << 20)  /* per readable callback (poll wakes us again) */

/* ---- set-up and teardown ---- */

int ssm_wsd_start(ssm_transport *t, struct lws *wsi)
{
    if (!t->rd)
        t->rd = malloc(RD_CAP);
    if (!t->out) {
        t->out_cap = OUT_BATCH + ssm_ws_client_frame_len(t->tx_cap);
        t->out = malloc(t->out_cap);
    }
    if (!t->rd || !t->out)
        return -1;
    int fd = lws_get_socket_fd(wsi);
    if (fd < 0)
        return -1;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0)
        return -1;
    lws_sock_file_fd_type desc;
    desc.filefd = dup_fd;
    struct lws *rd = lws_adopt_descriptor_vhost(t->vh, LWS_ADOPT_RAW_FILE_DESC, desc,
                                                SSM_WSD_PROTOCOL, NULL);
    if (!rd) {
        close(dup_fd);
        return -1;
    }
    lws_set_opaque_user_data(rd, t);
    /* The bulk tail timer; without it there is simply no bulk mode. */
    t->tm_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (t->tm_fd >= 0) {
        lws_sock_file_fd_type tdesc;
        tdesc.filefd = t->tm_fd;
        t->tm_wsi = lws_adopt_descriptor_vhost(t->vh, LWS_ADOPT_RAW_FILE_DESC, tdesc,
                                               SSM_WSD_PROTOCOL, NULL);
        if (t->tm_wsi)
            lws_set_opaque_user_data(t->tm_wsi, t);
        else {
            close(t->tm_fd);
            t->tm_fd = -1;
        }
    }
    t->bulk = false;
    t->ssl = lws_get_ssl(wsi);
    if (t->ssl) {
        /* Writes are retried from lws's buffer, not ours; see send_raw. */
        SSL_set_mode(t->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
        /* One read() for many records, not two (header, body) per record:
         * the agent sends a record per message. */
        SSL_set_read_ahead(t->ssl, 1);
        /* ... and up to RD_CAP of them per read(): OpenSSL sizes its read
         * buffer for one 16 KiB record, which took two read()s per 16 KiB
         * of 1 KiB records. The buffer is reallocated at the new size on
         * the next read (the agent has sent nothing yet: nothing pending). */
        SSL_set_default_read_buffer_len(t->ssl, RD_CAP);
        SSL_free_buffers(t->ssl);
        /* Records of at most 4 KiB, each read whole by a peer reading 4 KiB
         * at a time: agent-sim (lws 4.1 server, 4096-byte rx buffer) stalls
         * for good if it pauses reading inside a bigger record, as it does
         * under backpressure, since the rest then waits inside OpenSSL where
         * poll() cannot see it. The lws path wrote a record per frame. */
        SSL_set_max_send_fragment(t->ssl, 4096);
    }
    /* Tests only: a small fixed send buffer makes a batch outgrow the room
     * poll() reports, so send_raw's hand-over to lws gets exercised. */
    const char *sb = getenv("SSM_PLUGIN_TEST_SNDBUF");
    if (sb && atoi(sb) > 0) {
        int v = atoi(sb);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    }
    t->fd = fd;
    t->rd_wsi = rd;
    ssm_ws_rx_init(&t->rxp, t->rx, RX_MAX);
    t->dropped_seen = 0;
    t->pong_due = false;
    t->rd_wants_write = false;
    lws_rx_flow_control(wsi, 0); /* lws stops reading: we do */
    t->direct = true;
    return 0;
}

void ssm_wsd_stop(ssm_transport *t)
{
    if (t->rd_wsi) {
        /* lws owns the duplicate descriptor and closes it on its next turn. */
        lws_set_opaque_user_data(t->rd_wsi, NULL);
        lws_set_timeout(t->rd_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        t->rd_wsi = NULL;
    }
    if (t->tm_wsi) {
        lws_set_opaque_user_data(t->tm_wsi, NULL);
        lws_set_timeout(t->tm_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        t->tm_wsi = NULL;
    }
    t->tm_fd = -1;
    t->bulk = false;
    t->direct = false;
    t->ssl = NULL;
    t->fd = -1;
}

void ssm_transport_trim(ssm_transport *t, void (*release)(void *ctx, void *p, size_t n),
                        void *ctx)
{
    if (t->rd)
        release(ctx, t->rd, RD_CAP);
    if (t->out)
        release(ctx, t->out, t->out_cap);
    if (t->ssl)
        SSL_free_buffers(t->ssl); /* refused (harmlessly) while a record is pending */
}

void ssm_wsd_free(ssm_transport *t)
{
    free(t->rd);
    if (t->out)
        OPENSSL_cleanse(t->out, t->out_cap);
    free(t->out);
    OPENSSL_cleanse(t->keys, sizeof t->keys);
    t->rd = t->out = NULL;
}

/* The connection is unusable: lws closes it (CLIENT_CLOSED reports it). */
static void fail(ssm_transport *t, const char *why)
{
    if (!t->why[0])
        ssm_transport_set_why(t, why);
    struct lws *wsi = t->wsi;
    ssm_wsd_stop(t);
    /* While draining, lws is already closing the connection. */
    if (wsi && !t->draining)
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* ---- out ---- */

static const uint8_t *next_key(ssm_transport *t)
{
    if (t->key_pos == 0 || t->key_pos + 4 > sizeof t->keys) {
        if (RAND_bytes(t->keys, (int)sizeof t->keys) != 1)
            return NULL;
        t->key_pos = 0;
    }
    const uint8_t *k = t->keys + t->key_pos;
    t->key_pos += 4;
    return k;
}

/* Appends one frame to out at *len; false when out of room or keys. */
static bool put(ssm_transport *t, size_t *len, unsigned op, const uint8_t *p, size_t n)
{
    const uint8_t *k = next_key(t);
    if (!k)
        return false;
    size_t w = ssm_ws_client_frame(t->out + *len, t->out_cap - *len, op, p, n, k);
    *len += w;
    return w != 0;
}

/* Writes a batch of frames: straight to the socket (through TLS) while it
 * takes them, and only what it does not take goes to lws, which buffers it
 * and sends it before anything else. lws_write alone sends at most about
 * 4 KiB (one TLS record) per writable turn, so a batch of acks took a poll
 * round trip per 4 KiB. Callers make sure lws holds nothing unsent first,
 * so frames never overtake each other. With partial writes on, OpenSSL
 * returns after each record and, when the socket is full, keeps the record
 * it could not finish: lws's retry then starts with exactly those bytes. */
static int send_raw(ssm_transport *t, struct lws *wsi, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n;
        if (t->ssl) {
            ERR_clear_error();
            int r = SSL_write(t->ssl, buf + off, (int)(len - off));
            if (r <= 0) {
                int e = SSL_get_error(t->ssl, r);
                if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
                    return -1;
                break;
            }
            n = r;
        } else {
            n = send(t->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    return -1;
                break;
            }
        }
        off += (size_t)n;
    }
    if (off == len)
        return 0;
    LOGD("websocket socket full: lws buffers the last %zu of %zu bytes", len - off, len);
    return lws_write(wsi, (uint8_t *)buf + off, len - off, LWS_WRITE_RAW) < (int)(len - off) ? -1
                                                                                             : 0;
}

int ssm_wsd_write_now(ssm_transport *t, struct lws *wsi)
{
    size_t len = 0;
    bool secret = false;
    if (!t->open_sent) {
        size_t n = strlen(t->open_msg);
        if (!put(t, &len, SSM_WS_OP_TEXT, (const uint8_t *)t->open_msg, n)) {
            ssm_transport_set_why(t, "OpenDataChannel message too large");
            return -1;
        }
        t->open_sent = true;
        secret = true;
    }
    if (t->pong_due) {
        t->pong_due = false;
        put(t, &len, SSM_WS_OP_PONG, t->pong, t->pong_len);
    }
    if (t->ping_due) {
        t->ping_due = false;
        put(t, &len, SSM_WS_OP_PING, (const uint8_t *)PING_PAYLOAD, sizeof PING_PAYLOAD - 1);
    }
    /* The OpenDataChannel goes alone: the channel starts once it is out. */
    size_t frame_max = ssm_ws_client_frame_len(t->tx_cap);
    while (!secret && len + frame_max <= t->out_cap) {
        uint8_t *body = t->tx + LWS_PRE;
        size_t n = t->ops->pull(t->user, body, t->tx_cap);
        if (!n)
            break;
        if (!put(t, &len, SSM_WS_OP_BINARY, body, n)) {
            ssm_transport_set_why(t, "cannot frame a websocket message");
            return -1;
        }
    }
    if (len) {
        int w = send_raw(t, wsi, t->out, len);
        if (secret)
            OPENSSL_cleanse(t->out, len); /* the token (masked, with its key) */
        if (w < 0) {
            ssm_transport_set_why(t, "websocket write failed");
            return -1;
        }
    }
    if (secret || t->pong_due || t->ops->want_write(t->user))
        lws_callback_on_writable(wsi);
    return 0;
}

/* ---- in ---- */

static int on_frame(void *user, unsigned op, const uint8_t *p, size_t n)
{
    ssm_transport *t = user;
    switch (op) {
    case SSM_WS_OP_TEXT:
    case SSM_WS_OP_BINARY:
        t->ops->on_message(t->user, p, n);
        break;
    case SSM_WS_OP_PING:
        memcpy(t->pong, p, n); /* n <= 125: the parser enforces it */
        t->pong_len = n;
        t->pong_due = true;
        if (t->wsi)
            lws_callback_on_writable(t->wsi);
        break;
    case SSM_WS_OP_CLOSE: {
        char buf[128];
        unsigned code = n >= 2 ? ((unsigned)p[0] << 8 | p[1]) : 0;
        snprintf(buf, sizeof buf, "the service closed the websocket (code %u)", code);
        ssm_transport_set_why(t, buf);
        /* Answer with the same status (RFC 6455 §5.5.1), then close. */
        size_t len = 0;
        if (t->wsi && put(t, &len, SSM_WS_OP_CLOSE, p, n >= 2 ? 2 : 0))
            lws_write(t->wsi, t->out, len, LWS_WRITE_RAW);
        fail(t, buf);
        return 1;
    }
    case SSM_WS_OP_PONG:
        /* Answers lws's own validity pings (dead-peer detection): lws no
         * longer reads, so tell it the peer is alive. */
        if (t->wsi)
            lws_validity_confirmed(t->wsi);
        break;
    default:
        break;
    }
    /* The session may have closed us from inside on_message. */
    return t->direct && !t->closing ? 0 : 1;
}

/* One read: > 0 bytes, 0 at end of stream, -1 would block, -2 error. */
static ssize_t read_some(ssm_transport *t, uint8_t *buf, size_t cap)
{
    if (!t->ssl) {
        ssize_t r = recv(t->fd, buf, cap, MSG_DONTWAIT);
        if (r >= 0)
            return r;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
    }
    ERR_clear_error();
    int r = SSL_read(t->ssl, buf, (int)cap);
    if (r > 0)
        return r;
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return -1;
    case SSL_ERROR_WANT_WRITE:
        /* TLS needs the socket writable first. A record OpenSSL already
         * holds would get no POLLIN: read again once the socket is writable
         * (as lws does), not once lws's own pending writes are through. */
        t->rd_wants_write = true;
        if (t->rd_wsi)
            lws_callback_on_writable(t->rd_wsi);
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        return r == 0 ? 0 : -2;
    default:
        return -2;
    }
}

static size_t read_batch(ssm_transport *t)
{
    size_t total = 0;
    while (t->direct && !t->closing) {
        ssize_t r = read_some(t, t->rd, RD_CAP);
        if (r == -1)
            return total;
        if (r == 0) {
            if (!t->draining)
                fail(t, "websocket closed");
            return total;
        }
        if (r < 0) {
            if (t->draining)
                return total;
            char buf[160];
            snprintf(buf, sizeof buf, "websocket read failed (%s)",
                     t->ssl ? "TLS error" : strerror(errno));
            fail(t, buf);
            return total;
        }
        int rc = ssm_ws_rx_feed(&t->rxp, t->rd, (size_t)r, on_frame, t, NULL);
        if (t->rxp.dropped != t->dropped_seen) {
            t->dropped_seen = t->rxp.dropped;
            LOGW("dropping an oversized websocket message");
        }
        if (rc == SSM_WS_EPROTO) {
            fail(t, "websocket protocol error from the service");
            return total;
        }
        if (rc == SSM_WS_STOPPED)
            return total;
        total += (size_t)r;
        /* A short plain read emptied the socket; TLS may hold a record. */
        if (!t->ssl && (size_t)r < RD_CAP)
            return total;
        /* Stop only where poll() will wake us for the rest: not while
         * OpenSSL holds bytes already read from the socket. */
        if (total >= READ_BUDGET && !(t->ssl && SSL_has_pending(t->ssl)))
            return total;
    }
    return total;
}

/* The connection is going away (a hang-up or reset reported before we
 * read): take in what the socket still holds first, so a last message, a
 * channel_closed say, is not lost to the race. */
static void mark_batch(ssm_transport *t, bool begin)
{
    if (t->ops->on_batch)
        t->ops->on_batch(t->user, begin);
}

void ssm_wsd_drain(ssm_transport *t)
{
    if (!t->direct || t->closing || t->draining)
        return;
    t->draining = true;
    mark_batch(t, true);
    read_batch(t);
    mark_batch(t, false);
    t->draining = false;
}

/* ---- bulk coalescing ----
 * A fast local side and a slower sender mean a wake-up for every few
 * messages, and per wake-up costs (poll, context switch, one send of acks,
 * one local write) then outweigh the per-message work about three to one.
 * While data streams in (BULK_ENTER bytes within BULK_WINDOW_US), the
 * socket's SO_RCVLOWAT makes the kernel wake us only once BULK_BYTES are
 * there, and a one-shot timer BULK_WAIT_US after each batch collects a
 * shorter tail. So in bulk a message waits at most BULK_WAIT_US before it
 * is read (and acknowledged); a tail timer that finds nothing (the stream
 * stopped) ends bulk mode, and interactive traffic, never reaching
 * BULK_ENTER, is read the moment it arrives. A small tail does not end it:
 * a sender with a small window (agent-sim keeps 128 messages in flight)
 * answers every ack with a message, and acking each alone then locks both
 * sides into a wake-up per message. */
#define BULK_BYTES (32 * 1024)
#define BULK_WAIT_US 1000
#define BULK_ENTER (32 * 1024)
#define BULK_WINDOW_US 4000

static void set_lowat(ssm_transport *t, int bytes)
{
    if (t->fd >= 0)
        setsockopt(t->fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes);
}

static void arm_tail_timer(ssm_transport *t, long us)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = us * 1000L; /* 0 disarms */
    if (t->tm_fd >= 0)
        timerfd_settime(t->tm_fd, 0, &its, NULL);
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void bulk_update(ssm_transport *t, size_t batch)
{
    if (!t->direct || !t->tm_wsi)
        return;
    if (!t->bulk) {
        uint64_t now = mono_us();
        if (now - t->win_start_us > BULK_WINDOW_US) {
            t->win_start_us = now;
            t->win_bytes = 0;
        }
        t->win_bytes += batch;
        if (t->win_bytes < BULK_ENTER)
            return;
        t->bulk = true;
        set_lowat(t, BULK_BYTES);
    } else if (batch == 0) {
        t->bulk = false;
        t->win_bytes = 0;
        set_lowat(t, 1);
        arm_tail_timer(t, 0);
        return;
    }
    arm_tail_timer(t, BULK_WAIT_US);
}

/* Reads, then writes what the batch produced (acknowledgements, mostly)
 * right away in one write instead of on a later writable pass. */
static void read_and_note(ssm_transport *t)
{
    t->in_read = true;
    t->write_wanted = false;
    size_t batch = read_batch(t);
    t->in_read = false;
    bulk_update(t, batch);
}

static void read_then_write(ssm_transport *t)
{
    read_and_note(t);
    if (!t->direct || t->closing || !t->wsi || !(t->write_wanted || t->pong_due))
        return;
    t->write_wanted = false;
    if (lws_send_pipe_choked(t->wsi)) {
        lws_callback_on_writable(t->wsi);
        return;
    }
    if (ssm_wsd_write_now(t, t->wsi) < 0)
        fail(t, t->why[0] ? t->why : "websocket write failed");
}

static void on_readable(ssm_transport *t)
{
    mark_batch(t, true);
    read_then_write(t);
    mark_batch(t, false);
}

int ssm_wsd_reader_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    ssm_transport *t = lws_get_opaque_user_data(wsi);
    if (t && t->tm_wsi == wsi) {
        if (reason == LWS_CALLBACK_RAW_RX_FILE) {
            uint64_t expirations;
            if (read(t->tm_fd, &expirations, sizeof expirations) == (ssize_t)sizeof expirations &&
                t->rd_wsi)
                on_readable(t); /* the tail of a bulk stretch */
        } else if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
            t->tm_wsi = NULL;
            t->tm_fd = -1;
        }
        return 0;
    }
    if (!t || t->rd_wsi != wsi)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        on_readable(t);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (t->rd_wants_write) {
            t->rd_wants_write = false;
            on_readable(t);
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        /* Hang-up or error on the socket (lws closes our duplicate; its
         * own descriptor and TLS session are still there). */
        ssm_wsd_drain(t);
        t->rd_wsi = NULL;
        fail(t, "websocket closed");
        return 0;
    default:
        return 0;
    }
}
