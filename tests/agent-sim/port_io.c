/* Byte queue and raw-fd glue for the simulator's port behaviours. */
#include "port_io.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int pq_append(pq *q, const void *p, size_t n)
{
    if (q->off + q->len + n > q->cap) {
        if (q->off > 0) { /* compact first */
            memmove(q->p, q->p + q->off, q->len);
            q->off = 0;
        }
        if (q->len + n > q->cap) {
            size_t cap = q->cap ? q->cap : 4096;
            while (cap < q->len + n)
                cap *= 2;
            uint8_t *np = realloc(q->p, cap);
            if (!np)
                return -1;
            q->p = np;
            q->cap = cap;
        }
    }
    memcpy(q->p + q->off + q->len, p, n);
    q->len += n;
    return 0;
}

void pq_consume(pq *q, size_t n)
{
    if (n > q->len)
        n = q->len;
    q->off += n;
    q->len -= n;
    if (q->len == 0)
        q->off = 0;
}

void pq_free(pq *q)
{
    free(q->p);
    memset(q, 0, sizeof(*q));
}

struct pio {
    lws_sorted_usec_list_t rearm; /* first: the sul callback gets its address */
    struct lws *wsi;
    int fd;
    pio_cb cb;
    void *user;
    bool read_on;
    bool in_writable;
};

/* lws clears POLLOUT on a raw file after its WRITEABLE callback returns, so a
 * request made inside that callback would be lost: make it from a timer. */
static void rearm_fire(lws_sorted_usec_list_t *sul)
{
    pio *io = (pio *)sul;
    if (io->wsi)
        lws_callback_on_writable(io->wsi);
}

static int pio_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *u, void *in,
                      size_t len)
{
    (void)u;
    (void)in;
    (void)len;
    pio *io = lws_get_opaque_user_data(wsi);
    if (!io)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (io->read_on)
            io->cb(io->user, io, PIO_IN);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        io->in_writable = true;
        io->cb(io->user, io, PIO_OUT);
        io = lws_get_opaque_user_data(wsi); /* the callback may have closed it */
        if (io)
            io->in_writable = false;
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        lws_set_opaque_user_data(wsi, NULL);
        io->wsi = NULL;
        io->cb(io->user, io, PIO_HUP);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols pio_protocols[] = {
    {"sim-port-io", pio_lws_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static struct lws_vhost *pio_vhost(sim_session *s)
{
    static struct lws_vhost *vh;
    if (!vh) {
        struct lws_context_creation_info info;
        memset(&info, 0, sizeof(info));
        info.port = CONTEXT_PORT_NO_LISTEN;
        info.protocols = pio_protocols;
        info.vhost_name = "sim-port-io";
        vh = lws_create_vhost(sim_lws_context(s), &info);
    }
    return vh;
}

pio *pio_adopt(sim_session *s, int fd, pio_cb cb, void *user)
{
    struct lws_vhost *vh = pio_vhost(s);
    pio *io = calloc(1, sizeof(*io));
    if (!io || !vh) {
        free(io);
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    io->fd = fd;
    io->cb = cb;
    io->user = user;
    io->read_on = true;
    lws_adopt_desc_t ad;
    memset(&ad, 0, sizeof(ad));
    ad.vh = vh;
    ad.type = LWS_ADOPT_RAW_FILE_DESC;
    ad.fd.filefd = fd;
    ad.vh_prot_name = "sim-port-io";
    ad.opaque = io;
    io->wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    if (!io->wsi) {
        free(io);
        return NULL;
    }
    return io;
}

int pio_fd(const pio *io) { return io->fd; }

void pio_read_enable(pio *io, bool on)
{
    if (io->read_on == on)
        return;
    io->read_on = on;
    if (io->wsi)
        lws_rx_flow_control(io->wsi, on);
}

void pio_want_write(pio *io)
{
    if (!io->wsi)
        return;
    if (io->in_writable)
        lws_sul_schedule(lws_get_context(io->wsi), 0, &io->rearm, rearm_fire, 1);
    else
        lws_callback_on_writable(io->wsi);
}

void pio_close(pio *io)
{
    if (!io)
        return;
    lws_sul_cancel(&io->rearm);
    if (io->wsi) {
        lws_set_opaque_user_data(io->wsi, NULL);
        lws_rx_flow_control(io->wsi, 0);
        shutdown(io->fd, SHUT_RDWR);
        lws_set_timeout(io->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    free(io);
}

int pio_dial(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host && *host ? host : "localhost", port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}
