/* fd watching for behaviours: the fd is dup()ed and adopted by lws as a raw
 * file, so lws owns (and closes) only its duplicate. */
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "sim.h"

static struct sim_fdw *find(sim_session *s, int fd)
{
    for (int i = 0; i < SIM_MAX_FDS; i++)
        if (s->fds[i].cb && s->fds[i].fd == fd)
            return &s->fds[i];
    return NULL;
}

int sim_fd_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct sim_fdw *w = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (w && w->cb)
            w->cb(w->s, w->user, w->fd, POLLIN);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (w && w->cb)
            w->cb(w->s, w->user, w->fd, POLLOUT);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (w && w->cb && w->wsi == wsi) {
            w->wsi = NULL;
            w->cb(w->s, w->user, w->fd, POLLHUP);
        }
        return 0;
    default:
        return 0;
    }
}

int sim_fd_watch(sim_session *s, int fd, int want_pollout, sim_fd_cb cb, void *user)
{
    struct sim_fdw *w = NULL;
    for (int i = 0; i < SIM_MAX_FDS && !w; i++)
        if (s->fds[i].cb == NULL)
            w = &s->fds[i];
    if (w == NULL || cb == NULL)
        return -1;
    int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0)
        return -1;
    lws_sock_file_fd_type u;
    u.filefd = dupfd;
    struct lws *wsi = lws_adopt_descriptor_vhost(g_vhost, LWS_ADOPT_RAW_FILE_DESC, u, "sim-fd", NULL);
    if (wsi == NULL)
        return -1; /* lws closed dupfd */
    w->wsi = wsi;
    w->s = s;
    w->fd = fd;
    w->cb = cb;
    w->user = user;
    lws_set_opaque_user_data(wsi, w);
    if (want_pollout)
        lws_callback_on_writable(wsi);
    return 0;
}

void sim_fd_want_pollout(sim_session *s, int fd, int on)
{
    struct sim_fdw *w = find(s, fd);
    if (w && w->wsi && on)
        lws_callback_on_writable(w->wsi);
}

void sim_fd_pause_read(sim_session *s, int fd, int paused)
{
    struct sim_fdw *w = find(s, fd);
    if (w && w->wsi)
        lws_rx_flow_control(w->wsi, !paused);
}

void sim_fd_unwatch(sim_session *s, int fd)
{
    struct sim_fdw *w = find(s, fd);
    if (w == NULL)
        return;
    if (w->wsi) {
        lws_set_opaque_user_data(w->wsi, NULL);
        lws_set_timeout(w->wsi, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
    }
    w->wsi = NULL;
    w->cb = NULL;
}
