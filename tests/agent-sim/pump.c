/* See pump.h. After a hang-up lws drops the watch; the rest of the data is
 * read directly, paced by on_writable, until EOF/EIO. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "pump.h"
#include "sim.h"

#define PUMP_CHUNKS_PER_WAKE 16

static void finish(struct sim_pump *p)
{
    if (p->eof)
        return;
    p->eof = 1;
    sim_fd_unwatch(p->s, p->fd); /* also frees the slot after a hang-up */
    p->watching = 0;
    if (p->on_eof)
        p->on_eof(p, p->user);
}

/* Length of an incomplete UTF-8 sequence at the end of b[0..n), 0 if none. */
static size_t utf8_tail(const uint8_t *b, size_t n)
{
    for (size_t i = 1; i <= 3 && i <= n; i++) {
        uint8_t c = b[n - i];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: keep looking for the lead */
        if (c < 0xC0)
            return 0; /* ASCII or stray continuation: nothing to hold */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        return need > i ? i : 0;
    }
    return 0;
}

static int flush_carry(struct sim_pump *p)
{
    if (p->carry_len == 0)
        return 0;
    if (sim_send(p->s, p->ptype, p->carry, p->carry_len) != SIM_SEND_OK)
        return -1;
    p->carry_len = 0;
    return 0;
}

void sim_pump_utf8(struct sim_pump *p, int on)
{
    p->utf8 = on;
}

static void pump_read(struct sim_pump *p)
{
    uint8_t buf[SIM_MAX_PAYLOAD];
    for (int i = 0; i < PUMP_CHUNKS_PER_WAKE && !p->eof; i++) {
        if (sim_send_room(p->s) == 0) {
            if (p->watching && !p->paused) {
                sim_fd_pause_read(p->s, p->fd, 1);
                p->paused = 1;
            }
            sim_want_writable(p->s);
            return;
        }
        size_t have = p->carry_len;
        memcpy(buf, p->carry, have);
        p->carry_len = 0;
        ssize_t n = read(p->fd, buf + have, sizeof buf - have);
        if (n > 0) {
            size_t total = have + (size_t)n;
            /* Hold back a split sequence only when the read filled the
             * buffer, i.e. more output is very likely already waiting. */
            size_t tail = (p->utf8 && total == sizeof buf) ? utf8_tail(buf, total) : 0;
            if (sim_send(p->s, p->ptype, buf, total - tail) != SIM_SEND_OK) {
                finish(p);
                return;
            }
            memcpy(p->carry, buf + total - tail, tail);
            p->carry_len = tail;
            continue;
        }
        memcpy(p->carry, buf, have); /* nothing new: keep it for the flush below */
        p->carry_len = have;
        if (flush_carry(p) != 0) {
            finish(p);
            return;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (p->hup) /* no watch any more: poll again shortly via room */
                sim_want_writable(p->s);
            return;
        }
        finish(p); /* 0 = EOF (pipe), EIO = pty slave closed */
        return;
    }
    if (p->hup && !p->eof)
        sim_want_writable(p->s);
}

static void on_fd(sim_session *s, void *user, int fd, int revents)
{
    (void)s;
    (void)fd;
    struct sim_pump *p = user;
    if (revents & POLLOUT) {
        if (p->on_pollout)
            p->on_pollout(p, p->user);
        return;
    }
    if (revents & POLLHUP) {
        p->watching = 0;
        p->hup = 1;
    }
    pump_read(p);
}

int sim_pump_start(struct sim_pump *p, sim_session *s, int fd, uint32_t ptype, sim_pump_event on_eof,
                   sim_pump_event on_pollout, void *user)
{
    p->s = s;
    p->fd = fd;
    p->ptype = ptype;
    p->paused = p->hup = p->eof = 0;
    p->utf8 = 0;
    p->carry_len = 0;
    p->on_eof = on_eof;
    p->on_pollout = on_pollout;
    p->user = user;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    if (sim_fd_watch(s, fd, 0, on_fd, p) != 0)
        return -1;
    p->watching = 1;
    return 0;
}

void sim_pump_resume(struct sim_pump *p)
{
    if (p->eof)
        return;
    if (p->paused && p->watching) {
        sim_fd_pause_read(p->s, p->fd, 0);
        p->paused = 0;
    }
    pump_read(p);
}

void sim_pump_want_pollout(struct sim_pump *p)
{
    if (p->watching)
        sim_fd_want_pollout(p->s, p->fd, 1);
}

void sim_pump_stop(struct sim_pump *p)
{
    if (p->s)
        sim_fd_unwatch(p->s, p->fd);
    p->watching = 0;
    p->eof = 1;
}
