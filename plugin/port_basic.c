/* Basic port forwarding (PROTOCOL.md §10.4, agents <= 3.0.196.0): one local
 * connection at a time, raw bytes both ways, DisconnectToPort when the local
 * side ends. Payloads that arrive while no connection is open are answered
 * NOT_READY (left unacknowledged: the agent retransmits them later, and the
 * next local client receives them). */
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
#include "ssm_version.h"

#define BASIC_BUF 65536u /* agent -> local bytes the socket did not take yet */

typedef struct basic {
    ssm_session *s;
    port_listener *ln;
    port_fd *conn;
    port_timer *exit_timer;
    bool accepted_once;
    bool read_paused;
    bool disconnect_pending; /* DisconnectToPort not yet queued (window full) */
    bool deliver_blocked;
    bool terminating, ended;
    uint64_t term_at;
    uint8_t buf[BASIC_BUF];
    size_t head, len;
} basic;

static void basic_stop(void *state);

static void basic_fail(basic *b, const char *why)
{
    if (b->ended)
        return;
    b->ended = true;
    char msg[256];
    snprintf(msg, sizeof(msg), "Cannot perform start session: %s\n", why);
    session_end(b->s, 0, msg);
}

static void maybe_resume_delivery(basic *b)
{
    if (b->deliver_blocked && b->conn && !b->disconnect_pending) {
        b->deliver_blocked = false;
        session_resume_delivery(b->s);
    }
}

static bool send_disconnect(basic *b)
{
    uint8_t p[4];
    ssm_flag_encode(SSM_FLAG_DISCONNECT_TO_PORT, p);
    if (session_send_space(b->s) < sizeof(p) || session_send(b->s, SSM_PT_FLAG, p, sizeof(p)) != 0) {
        b->disconnect_pending = true;
        return false;
    }
    b->disconnect_pending = false;
    return true;
}

static void conn_end(basic *b)
{
    port_fd_close(b->conn);
    b->conn = NULL;
    b->head = b->len = 0; /* whatever the old client did not take is gone with it */
    b->read_paused = false;
    send_disconnect(b);
    if (!b->terminating)
        port_listen_pause(b->ln, b->disconnect_pending);
}

/* Writes buffered agent bytes to the local connection. */
static void drain_local(basic *b)
{
    while (b->conn && b->len > 0) {
        size_t first = BASIC_BUF - b->head;
        if (first > b->len)
            first = b->len;
        ssize_t w = send(port_fd_fd(b->conn), b->buf + b->head, first, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                port_fd_want_write(b->conn);
                return;
            }
            conn_end(b);
            return;
        }
        b->head = (b->head + (size_t)w) % BASIC_BUF;
        b->len -= (size_t)w;
        if (b->len == 0)
            b->head = 0;
    }
    maybe_resume_delivery(b);
}

static void read_local(basic *b)
{
    size_t space = session_send_space(b->s);
    if (space == 0 || b->disconnect_pending || b->terminating) {
        b->read_paused = true;
        port_fd_read_enable(b->conn, false);
        return;
    }
    uint8_t buf[PORT_READ_CHUNK];
    size_t want = space < sizeof(buf) ? space : sizeof(buf);
    ssize_t r = recv(port_fd_fd(b->conn), buf, want, 0);
    if (r > 0) {
        if (session_send(b->s, SSM_PT_OUTPUT, buf, (size_t)r) != 0)
            basic_fail(b, "data channel refused data");
        return;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    conn_end(b);
}

static void conn_event(void *user, port_fd *f, int ev)
{
    basic *b = user;
    (void)f;
    if (ev == PORT_FD_READABLE)
        read_local(b);
    else if (ev == PORT_FD_WRITABLE)
        drain_local(b);
    else
        conn_end(b);
}

static void on_accept(void *user, int fd)
{
    basic *b = user;
    if (b->conn || b->terminating) { /* one at a time; should not happen while paused */
        close(fd);
        return;
    }
    b->conn = port_fd_adopt(b->s, fd, conn_event, b);
    if (!b->conn)
        return;
    port_listen_pause(b->ln, true);
    if (!b->accepted_once) {
        b->accepted_once = true;
        session_print(b->s, "Connection accepted for session %s.\n", session_id(b->s));
    }
    maybe_resume_delivery(b);
}

static void exit_fire(void *user)
{
    basic *b = user;
    if (b->ended)
        return;
    if (!port_exit_ready(b->s, b->term_at)) {
        port_timer_arm(b->exit_timer, PORT_EXIT_POLL_MS);
        return;
    }
    b->ended = true;
    port_end_with_exit_text(b->s);
}

static int basic_start(ssm_session *s, void **state)
{
    const ssm_hs_request *hs = session_handshake(s);
    basic *b = calloc(1, sizeof(*b));
    if (!b) {
        session_end(s, 0, "Cannot perform start session: out of memory\n");
        return -1;
    }
    b->s = s;
    *state = b;
    b->exit_timer = port_timer_new(s, exit_fire, b);
    char err[512];
    b->ln = port_listen_open(s, &hs->port, on_accept, b, 1, err, sizeof(err));
    if (!b->ln || !b->exit_timer)
        return port_start_failed(s, state, basic_stop, b->ln ? "out of memory" : err);
    char text[512];
    port_listen_opened_text(b->ln, session_id(s), text, sizeof(text));
    session_print(s, "%s\n", text);
    return 0;
}

static int basic_on_payload(void *state, uint32_t type, const uint8_t *p, size_t n)
{
    basic *b = state;
    (void)type; /* every payload type goes to the local connection (§10.4) */
    if (b->ended || n == 0)
        return SSM_DELIVER_OK;
    if (!b->conn || b->disconnect_pending || BASIC_BUF - b->len < n) {
        b->deliver_blocked = true;
        return SSM_DELIVER_NOT_READY;
    }
    size_t tail = (b->head + b->len) % BASIC_BUF;
    size_t first = BASIC_BUF - tail;
    if (first > n)
        first = n;
    memcpy(b->buf + tail, p, first);
    memcpy(b->buf, p + first, n - first);
    b->len += n;
    drain_local(b);
    return SSM_DELIVER_OK;
}

static void basic_on_send_space(void *state)
{
    basic *b = state;
    if (b->disconnect_pending && send_disconnect(b)) {
        if (!b->terminating)
            port_listen_pause(b->ln, false);
        maybe_resume_delivery(b);
    }
    if (b->conn && b->read_paused && !b->disconnect_pending && !b->terminating) {
        b->read_paused = false;
        port_fd_read_enable(b->conn, true);
    }
}

static void basic_on_signal(void *state, int signo)
{
    basic *b = state;
    if (signo != SIGINT && signo != SIGTSTP && signo != SIGQUIT)
        return;
    if (b->terminating || b->ended)
        return;
    b->terminating = true;
    session_print(b->s, PORT_TEXT_TERMINATE);
    port_listen_pause(b->ln, true);
    if (ssm_version_gt_strict(session_handshake(b->s)->agent_version,
                              SSM_AGENT_GATE_TERMINATE_FLAG)) {
        port_send_flag(b->s, SSM_FLAG_TERMINATE_SESSION);
        b->term_at = session_now_ms();
        port_timer_arm(b->exit_timer, PORT_EXIT_POLL_MS);
    } else {
        /* Old agents ignore the flag: ask the service; channel_closed ends us. */
        session_terminate_api(b->s);
    }
}

static void basic_stop(void *state)
{
    basic *b = state;
    if (!b)
        return;
    b->ended = true;
    port_fd_close(b->conn);
    port_listen_close(b->ln);
    port_timer_free(b->exit_timer);
    free(b);
}

const ssm_handler_ops ssm_port_basic_handler = {
    .name = "port-basic",
    .start = basic_start,
    .on_payload = basic_on_payload,
    .on_send_space = basic_on_send_space,
    .on_signal = basic_on_signal,
    .stop = basic_stop,
};
