/* Raw-file adoption of stdin/stdout with a bounded stdout ring. */
#include "stdio_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* ---- stdout ring ---- */
static uint8_t *ring;
static size_t ring_cap, ring_head, ring_len; /* head = oldest byte */
static struct lws *out_wsi;
static bool out_refused;
static void (*drain_cb)(void *);
static void *drain_user;
static bool out_broken; /* EPIPE or similar: discard further output */

/* ---- stdin ---- */
static struct lws *in_wsi;
static const ssm_stdin_ops *in_ops;
static void *in_user;
static bool in_paused, in_stopped;
/* lws watches dup()s of fd 0/1 and closes them on POLLHUP; the real fds stay
 * open. After a hang-up, what is left in a pipe is read on a zero-delay
 * timer (such reads never block: the writer is gone). */
static bool in_hup;
static struct lws_context *in_ctx;
static lws_sorted_usec_list_t sul_in_drain;

/* ---- saved flags ---- */
static int saved_fl[2] = {-1, -1};

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return;
    if (saved_fl[fd] < 0)
        saved_fl[fd] = fl;
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void ssm_stdio_restore(void)
{
    for (int fd = 0; fd < 2; fd++)
        if (saved_fl[fd] >= 0)
            fcntl(fd, F_SETFL, saved_fl[fd]);
}

/* Writes from the ring once; returns bytes written, 0 on EAGAIN, -1 fatal. */
static ssize_t ring_write_once(void)
{
    if (!ring_len)
        return 0;
    size_t chunk = ring_len;
    if (ring_head + chunk > ring_cap)
        chunk = ring_cap - ring_head;
    ssize_t w = write(1, ring + ring_head, chunk);
    if (w < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        return -1;
    }
    ring_head = (ring_head + (size_t)w) % ring_cap;
    ring_len -= (size_t)w;
    if (!ring_len)
        ring_head = 0;
    return w;
}

/* New output is written at the end of this loop turn (a zero-delay timer
 * runs before the next poll), so what one read batch queued leaves in one
 * write() without a poll round trip; only a full stdout waits for POLLOUT. */
static lws_sorted_usec_list_t sul_out_flush;
static bool out_flush_armed, out_wait_writable;
static void on_writeable_out(bool in_callback);

static void out_flush(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    out_flush_armed = false;
    if (out_wsi && !out_wait_writable)
        on_writeable_out(false);
}

static void out_kick(void)
{
    if (!ring_len || !out_wsi || out_wait_writable || out_flush_armed)
        return;
    out_flush_armed = true;
    lws_sul_schedule(lws_get_context(out_wsi), 0, &sul_out_flush, out_flush, 0);
}

static void maybe_drained(void)
{
    if (out_refused && ring_cap - ring_len >= ring_cap / 2) {
        out_refused = false;
        if (drain_cb)
            drain_cb(drain_user);
    }
}

/* lws clears POLLOUT on a raw file after its WRITEABLE callback returns,
 * so a re-arm from inside the callback is lost: re-arm from a timer. */
static lws_sorted_usec_list_t sul_out_rearm;

static void out_rearm(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    if (out_wsi)
        lws_callback_on_writable(out_wsi);
}

static void on_writeable_out(bool in_callback)
{
    out_wait_writable = false;
    /* Drain as much as the fd takes now; stop at EAGAIN. */
    for (int i = 0; i < 8 && ring_len; i++) {
        ssize_t w = ring_write_once();
        if (w < 0) {
            LOGW("stdout write failed: %s; discarding output", strerror(errno));
            out_broken = true;
            ring_len = 0;
            ring_head = 0;
            break;
        }
        if (w == 0)
            break;
    }
    if (ring_len && out_wsi && !out_broken) {
        out_wait_writable = true;
        if (in_callback)
            lws_sul_schedule(lws_get_context(out_wsi), 0, &sul_out_rearm, out_rearm, 1);
        else
            lws_callback_on_writable(out_wsi);
    }
    maybe_drained();
}

static void drain_tick(lws_sorted_usec_list_t *sul);

static void schedule_drain(lws_usec_t us)
{
    if (in_hup && !in_stopped && !in_paused && in_ctx)
        lws_sul_schedule(in_ctx, 0, &sul_in_drain, drain_tick, us);
}

static void on_readable_in(void)
{
    if (in_stopped || in_paused)
        return;
    uint8_t buf[SSM_STDIN_CHUNK];
    ssize_t n = read(0, buf, sizeof buf);
    if (n > 0) {
        if (in_ops && in_ops->on_data)
            in_ops->on_data(in_user, buf, (size_t)n);
        schedule_drain(0);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        schedule_drain(50 * LWS_US_PER_MS);
        return;
    }
    int err = n < 0 ? errno : 0;
    ssm_stdin_stop();
    if (in_ops && in_ops->on_eof)
        in_ops->on_eof(in_user, err);
}

static void drain_tick(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    on_readable_in();
}

static int stdio_cb(struct lws *wsi, enum lws_callback_reasons reason, void *u, void *in,
                    size_t len)
{
    (void)u;
    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (wsi == in_wsi)
            on_readable_in();
        else
            lws_rx_flow_control(wsi, 0);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (wsi == out_wsi)
            on_writeable_out(true);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (wsi == out_wsi)
            out_wsi = NULL;
        if (wsi == in_wsi) {
            in_wsi = NULL;
            in_hup = true;
            schedule_drain(0);
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols proto = {"ssm-stdio", stdio_cb, 0, 0, 0, NULL, 0};

const struct lws_protocols *ssm_stdio_protocol(void)
{
    return &proto;
}

int ssm_stdout_init(struct lws_vhost *vh, size_t cap)
{
    if (!cap)
        cap = SSM_STDOUT_RING_DEFAULT;
    ring = malloc(cap);
    if (!ring)
        return -1;
    ring_cap = cap;
    ring_head = ring_len = 0;
    /* A previous loop's context (and its timer lists) may be gone. */
    memset(&sul_out_flush, 0, sizeof sul_out_flush);
    memset(&sul_out_rearm, 0, sizeof sul_out_rearm);
    out_flush_armed = out_wait_writable = false;
    set_nonblock(1);
    lws_sock_file_fd_type fd;
    fd.filefd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    out_wsi = fd.filefd < 0 ? NULL
                            : lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd,
                                                         "ssm-stdio", NULL);
    if (!out_wsi) {
        if (fd.filefd >= 0)
            close(fd.filefd);
        LOGW("cannot adopt stdout into the loop; writing it blocking");
        ssm_stdio_restore();
    } else {
        /* Only POLLOUT matters here; a tty stdout is readable too. */
        lws_rx_flow_control(out_wsi, 0);
    }
    return 0;
}

size_t ssm_stdout_space(void)
{
    return ring ? ring_cap - ring_len : 0;
}

bool ssm_stdout_broken(void)
{
    return out_broken;
}

bool ssm_stdout_empty(void)
{
    return ring_len == 0;
}

void ssm_stdout_on_drain(void (*cb)(void *user), void *user)
{
    drain_cb = cb;
    drain_user = user;
}

static void ring_put(const uint8_t *p, size_t n)
{
    size_t tail = (ring_head + ring_len) % ring_cap;
    size_t first = n;
    if (tail + first > ring_cap)
        first = ring_cap - tail;
    memcpy(ring + tail, p, first);
    memcpy(ring, p + first, n - first);
    ring_len += n;
}

/* Blocking write of p (used when there is no loop or no room for texts). */
static void write_all_blocking(const uint8_t *p, size_t n, int timeout_ms)
{
    while (n && !out_broken) {
        ssize_t w = write(1, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = 1, .events = POLLOUT};
            if (poll(&pfd, 1, timeout_ms) <= 0)
                return;
            continue;
        }
        out_broken = true;
    }
}

int ssm_stdout_write(const void *p, size_t n)
{
    if (out_broken || !n)
        return 0;
    if (!ring || !out_wsi) {
        if (ring && ring_len)
            ssm_stdout_flush_blocking(5000);
        write_all_blocking(p, n, 5000);
        return 0;
    }
    if (ring_cap - ring_len < n) {
        out_refused = true;
        out_kick();
        return -1;
    }
    ring_put(p, n);
    out_kick();
    return 0;
}

void ssm_stdout_write_text(const void *p, size_t n)
{
    if (out_broken || !n)
        return;
    if (ring && out_wsi && ring_cap - ring_len >= n) {
        ring_put(p, n);
        out_kick();
        return;
    }
    /* No room or no loop: keep order by flushing first. */
    ssm_stdout_flush_blocking(5000);
    write_all_blocking(p, n, 5000);
}

void ssm_stdout_flush_blocking(int timeout_ms)
{
    while (ring_len && !out_broken) {
        ssize_t w = ring_write_once();
        if (w < 0) {
            out_broken = true;
            break;
        }
        if (w == 0) {
            struct pollfd pfd = {.fd = 1, .events = POLLOUT};
            if (poll(&pfd, 1, timeout_ms) <= 0)
                break;
        }
    }
}

int ssm_stdin_start(struct lws_vhost *vh, const ssm_stdin_ops *ops, void *user)
{
    in_ops = ops;
    in_user = user;
    in_paused = in_stopped = in_hup = false;
    set_nonblock(0);
    lws_sock_file_fd_type fd;
    fd.filefd = fcntl(0, F_DUPFD_CLOEXEC, 3);
    in_wsi = fd.filefd < 0 ? NULL
                           : lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd,
                                                        "ssm-stdio", NULL);
    if (!in_wsi) {
        if (fd.filefd >= 0)
            close(fd.filefd);
        LOGE("cannot adopt stdin into the loop");
        return -1;
    }
    in_ctx = lws_get_context(in_wsi);
    return 0;
}

void ssm_stdin_pause(bool paused)
{
    if (in_stopped || paused == in_paused)
        return;
    in_paused = paused;
    if (in_wsi)
        lws_rx_flow_control(in_wsi, paused ? 0 : 1);
    if (paused)
        lws_sul_cancel(&sul_in_drain);
    else
        schedule_drain(0);
}

void ssm_stdin_stop(void)
{
    if (in_stopped)
        return;
    in_stopped = true;
    if (in_ctx)
        lws_sul_cancel(&sul_in_drain);
    if (in_wsi)
        lws_rx_flow_control(in_wsi, 0);
}
