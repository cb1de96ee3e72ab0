/* Mux port forwarding (PROTOCOL.md §10.5): every local connection is one smux
 * stream carried in Output payloads.
 *
 * Backpressure, both directions bounded:
 *  - local -> agent: a connection is read only while the smux output queue
 *    and the data channel both have room; otherwise its reading pauses until
 *    on_send_space() / the queue drains.
 *  - agent -> local: stream data waits in the stream's bounded smux receive
 *    ring until the local socket takes it; when a payload does not fit,
 *    on_payload() answers NOT_READY (the channel withholds the ack) and
 *    delivery resumes once the slow connection drained or closed. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "port_listen.h"
#include "session.h"
#include "ssm_channel.h"
#include "ssm_msg.h"
#include "ssm_smux.h"
#include "ssm_version.h"

#define MUX_OUT_PAYLOAD 1024u   /* the official bridge reads 1024-byte chunks */
/* One local read becomes one PSH frame: its 8-byte header plus at most
 * 16376 bytes make exactly 16 full Output payloads. A 16 KiB read made 17,
 * the last one 8 bytes: 6% fewer bytes per message under the 1000 msg/s
 * pacing cap. */
#define MUX_LOCAL_READ (16u * MUX_OUT_PAYLOAD - SSM_SMUX_HEADER_SIZE)

typedef struct mux_conn {
    struct mux *mx;
    port_fd *f;
    uint32_t sid;
    bool read_paused;
    bool drain_due; /* stream data waits for the end of this loop turn */
    struct mux_conn *prev, *next;
} mux_conn;

typedef struct mux {
    ssm_session *s;
    ssm_smux *smux;
    port_listener *ln;
    port_timer *ka_timer, *exit_timer, *drain_timer;
    bool drain_armed;
    mux_conn *conns;
    bool accepted_once;
    bool in_payload;       /* inside on_payload: no re-entrant resume */
    bool deliver_blocked;  /* last payload refused: resume when it fits */
    size_t blocked_len;
    bool any_read_paused;
    bool terminating;
    bool ended;
    uint64_t term_at;
} mux;

static void conn_close(mux_conn *c);
static void mux_stop(void *state);

static void mux_fail(mux *mx, const char *why)
{
    if (mx->ended)
        return;
    mx->ended = true;
    char msg[256];
    snprintf(msg, sizeof(msg), "Cannot perform start session: %s\n", why);
    session_end(mx->s, 0, msg);
}

/* Moves queued smux bytes into Output payloads while the channel has room.
 * Payloads are full (1024 bytes) while data keeps coming: under the pacing
 * cap every short one is lost throughput. A short tail waits while messages
 * are still queued ahead of it (it could not leave sooner anyway) and goes
 * once they are out, unless more local data has filled it up by then. */
static void flush_out(mux *mx)
{
    uint8_t buf[MUX_OUT_PAYLOAD];
    size_t pending;
    while ((pending = ssm_smux_out_pending(mx->smux)) > 0) {
        size_t space = session_send_space(mx->s);
        /* A nearly full send window would cut a short payload: wait for a
         * whole one (on_send_space comes once it is free). */
        if (space < sizeof(buf) && space < pending)
            return;
        if (pending < sizeof(buf) && session_send_backlog(mx->s) > 0) {
            session_notify_when_sent(mx->s);
            return;
        }
        size_t k = space < sizeof(buf) ? space : sizeof(buf);
        k = ssm_smux_out_read(mx->smux, buf, k); /* session_send copies it */
        if (session_send(mx->s, SSM_PT_OUTPUT, buf, k) != 0) {
            /* Cannot happen after the space check; never lose smux bytes. */
            mux_fail(mx, "data channel refused smux bytes");
            return;
        }
    }
}

static bool can_read_local(const mux *mx)
{
    return !mx->terminating && ssm_smux_write_space(mx->smux) > 0 &&
           session_send_space(mx->s) > 0;
}

static void resume_reads(mux *mx)
{
    if (!mx->any_read_paused || !can_read_local(mx))
        return;
    mx->any_read_paused = false;
    for (mux_conn *c = mx->conns; c; c = c->next)
        if (c->read_paused) {
            c->read_paused = false;
            port_fd_read_enable(c->f, true);
        }
}

static void maybe_resume_delivery(mux *mx)
{
    if (mx->deliver_blocked && !mx->in_payload && ssm_smux_can_feed(mx->smux, mx->blocked_len)) {
        mx->deliver_blocked = false;
        session_resume_delivery(mx->s);
    }
}

/* Agent -> local: write what the stream holds; close at the peer's FIN. */
static void conn_drain(mux_conn *c)
{
    mux *mx = c->mx;
    for (;;) {
        const uint8_t *p;
        size_t n = ssm_smux_peek(mx->smux, c->sid, &p);
        if (n == 0)
            break;
        ssize_t w = send(port_fd_fd(c->f), p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                port_fd_want_write(c->f);
                return;
            }
            if (errno == EINTR)
                continue;
            conn_close(c);
            return;
        }
        ssm_smux_consume(mx->smux, c->sid, (size_t)w);
        if ((size_t)w < n) {
            port_fd_want_write(c->f);
            break;
        }
    }
    if (ssm_smux_eof(mx->smux, c->sid))
        conn_close(c);
    else
        maybe_resume_delivery(mx);
}

/* Local -> agent. */
static void conn_read(mux_conn *c)
{
    mux *mx = c->mx;
    if (!can_read_local(mx)) {
        c->read_paused = true;
        mx->any_read_paused = true;
        port_fd_read_enable(c->f, false);
        return;
    }
    size_t room = ssm_smux_write_space(mx->smux);
    uint8_t buf[MUX_LOCAL_READ];
    size_t want = room < sizeof(buf) ? room : sizeof(buf);
    ssize_t r = recv(port_fd_fd(c->f), buf, want, 0);
    if (r > 0) {
        /* One read (<= 16 KiB) is one PSH frame and write_space() counted its
         * header, so it always fits; anything else would lose bytes. */
        if (ssm_smux_write(mx->smux, c->sid, buf, (size_t)r) != (long)r) {
            mux_fail(mx, "smux output queue refused local data");
            return;
        }
        flush_out(mx);
        return;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    /* EOF or error on either direction: full close (no half-close). */
    conn_close(c);
}

static void conn_event(void *user, port_fd *f, int ev)
{
    mux_conn *c = user;
    (void)f;
    switch (ev) {
    case PORT_FD_READABLE:
        conn_read(c);
        break;
    case PORT_FD_WRITABLE:
        conn_drain(c);
        break;
    case PORT_FD_HUP:
        conn_close(c);
        break;
    }
}

static void conn_close(mux_conn *c)
{
    mux *mx = c->mx;
    if (c->prev)
        c->prev->next = c->next;
    else
        mx->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ssm_smux_close(mx->smux, c->sid);
    port_fd_close(c->f);
    free(c);
    flush_out(mx);
    maybe_resume_delivery(mx);
}

/* Small amounts wait for the end of this loop turn (a zero-delay timer
 * runs before the next poll), so the payloads of one read batch leave in
 * one send() without a poll round trip; a lot is written at once. */
#define MUX_DRAIN_NOW 32768u

static void drain_fire(void *user)
{
    mux *mx = user;
    mx->drain_armed = false;
    /* Rescan from the head: a drain can close connections (and delivery
     * it resumes can flag others). */
    for (;;) {
        mux_conn *c = mx->conns;
        while (c && !c->drain_due)
            c = c->next;
        if (!c)
            return;
        c->drain_due = false;
        conn_drain(c);
    }
}

static void on_stream_readable(void *user, uint32_t sid, void *stream_user)
{
    mux *mx = user;
    mux_conn *c = stream_user;
    if (ssm_smux_readable(mx->smux, sid) >= MUX_DRAIN_NOW) {
        c->drain_due = false;
        conn_drain(c);
        return;
    }
    c->drain_due = true;
    if (!mx->drain_armed) {
        mx->drain_armed = true;
        port_timer_arm(mx->drain_timer, 0);
    }
}

static void on_accept(void *user, int fd)
{
    mux *mx = user;
    if (mx->terminating) {
        close(fd);
        return;
    }
    if (!mx->accepted_once) {
        mx->accepted_once = true;
        session_print(mx->s, "\nConnection accepted for session [%s]\n", session_id(mx->s));
    }
    mux_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->mx = mx;
    int rc = ssm_smux_open(mx->smux, c, &c->sid);
    if (rc != SSM_SMUX_OK) {
        free(c);
        close(fd);
        return;
    }
    c->f = port_fd_adopt(mx->s, fd, conn_event, c);
    if (!c->f) {
        ssm_smux_close(mx->smux, c->sid);
        free(c);
        flush_out(mx);
        return;
    }
    c->next = mx->conns;
    if (mx->conns)
        mx->conns->prev = c;
    mx->conns = c;
    if (!can_read_local(mx)) {
        c->read_paused = true;
        mx->any_read_paused = true;
        port_fd_read_enable(c->f, false);
    }
    flush_out(mx);
}

static void keepalive_fire(void *user)
{
    mux *mx = user;
    uint64_t now = session_now_ms();
    if (ssm_smux_tick(mx->smux, now) != SSM_SMUX_OK) {
        mux_fail(mx, ssm_smux_strerror(SSM_SMUX_ETIMEDOUT));
        return;
    }
    flush_out(mx);
    int64_t next = ssm_smux_next_timeout(mx->smux, now);
    if (next >= 0)
        port_timer_arm(mx->ka_timer, (uint64_t)(next > 0 ? next : 1));
}

static void exit_fire(void *user)
{
    mux *mx = user;
    if (mx->ended)
        return;
    if (!port_exit_ready(mx->s, mx->term_at)) {
        port_timer_arm(mx->exit_timer, PORT_EXIT_POLL_MS);
        return;
    }
    mx->ended = true;
    port_end_with_exit_text(mx->s);
}

static int mux_start(ssm_session *s, void **state)
{
    const ssm_hs_request *hs = session_handshake(s);
    mux *mx = calloc(1, sizeof(*mx));
    if (!mx) {
        session_end(s, 0, "Cannot perform start session: out of memory\n");
        return -1;
    }
    mx->s = s;
    *state = mx;

    ssm_smux_config cfg;
    ssm_smux_config_default(&cfg);
    /* Disabled for newer agents so the service's idle timeout works (§11.2). */
    cfg.keepalive = !ssm_version_gt_strict(hs->agent_version, SSM_AGENT_GATE_SMUX_NO_KEEPALIVE);
    ssm_smux_callbacks cb = {.on_readable = on_stream_readable};
    uint64_t now = session_now_ms();
    mx->smux = ssm_smux_new(&cfg, &cb, mx, now);
    mx->ka_timer = port_timer_new(s, keepalive_fire, mx);
    mx->exit_timer = port_timer_new(s, exit_fire, mx);
    mx->drain_timer = port_timer_new(s, drain_fire, mx);
    if (!mx->smux || !mx->ka_timer || !mx->exit_timer || !mx->drain_timer)
        return port_start_failed(s, state, mux_stop, "out of memory");


    char err[512];
    mx->ln = port_listen_open(s, &hs->port, on_accept, mx, 64, err, sizeof(err));
    if (!mx->ln)
        return port_start_failed(s, state, mux_stop, err);
    char text[512];
    port_listen_opened_text(mx->ln, session_id(s), text, sizeof(text));
    session_print(s, "%s\nWaiting for connections...\n", text);

    int64_t next = ssm_smux_next_timeout(mx->smux, now);
    if (next >= 0)
        port_timer_arm(mx->ka_timer, (uint64_t)next);
    return 0;
}

static int mux_on_payload(void *state, uint32_t type, const uint8_t *p, size_t n)
{
    mux *mx = state;
    if (mx->ended)
        return SSM_DELIVER_OK;
    if (type == SSM_PT_FLAG) {
        uint32_t flag;
        if (ssm_flag_decode(p, n, &flag) == 0 && flag == SSM_FLAG_CONNECT_TO_PORT_ERROR)
            session_print(mx->s,
                          "\nConnection to destination port failed, check SSM Agent logs.\n");
        return SSM_DELIVER_OK;
    }
    if (type != SSM_PT_OUTPUT || n == 0)
        return SSM_DELIVER_OK; /* other payload types are ignored (acked) */
    mx->in_payload = true;
    int rc = ssm_smux_feed(mx->smux, p, n, session_now_ms());
    mx->in_payload = false;
    if (rc == SSM_SMUX_E2BIG) { /* payloads are far below the 64 KiB minimum ring */
        mux_fail(mx, "payload larger than the smux receive buffer");
        return SSM_DELIVER_OK;
    }
    if (rc == SSM_SMUX_NOT_READY) {
        mx->deliver_blocked = true;
        mx->blocked_len = n;
        return SSM_DELIVER_NOT_READY;
    }
    if (rc < 0) {
        mux_fail(mx, ssm_smux_strerror(rc));
        return SSM_DELIVER_OK;
    }
    mx->deliver_blocked = false;
    flush_out(mx);
    return SSM_DELIVER_OK;
}

static void mux_on_send_space(void *state)
{
    mux *mx = state;
    flush_out(mx);
    resume_reads(mx);
}

static void mux_on_signal(void *state, int signo)
{
    mux *mx = state;
    if (signo != SIGINT && signo != SIGTSTP && signo != SIGQUIT)
        return;
    if (mx->terminating || mx->ended)
        return;
    mx->terminating = true;
    session_print(mx->s, PORT_TEXT_TERMINATE);
    port_listen_pause(mx->ln, true);
    port_send_flag(mx->s, SSM_FLAG_TERMINATE_SESSION);
    mx->term_at = session_now_ms();
        port_timer_arm(mx->exit_timer, PORT_EXIT_POLL_MS);
}

static void mux_stop(void *state)
{
    mux *mx = state;
    if (!mx)
        return;
    mx->ended = true;
    while (mx->conns) {
        mux_conn *c = mx->conns;
        mx->conns = c->next;
        port_fd_close(c->f);
        free(c);
    }
    port_listen_close(mx->ln);
    port_timer_free(mx->ka_timer);
    port_timer_free(mx->exit_timer);
    port_timer_free(mx->drain_timer);
    ssm_smux_free(mx->smux);
    free(mx);
}

const ssm_handler_ops ssm_port_mux_handler = {
    .name = "port-mux",
    .start = mux_start,
    .on_payload = mux_on_payload,
    .on_send_space = mux_on_send_space,
    .on_signal = mux_on_signal,
    .stop = mux_stop,
};
