/* Local listener, accepted connections and timers for the port handlers. */
#include "port_listen.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "go_errtext.h"
#include "session.h"
#include "ssm_msg.h"

#define PORT_PROTOCOL "ssm-port"

struct port_fd {
    lws_sorted_usec_list_t rearm; /* first: the sul callback gets its address */
    struct lws *wsi;
    int fd;
    port_fd_cb cb;
    void *user;
    bool read_on;
    bool in_writable;
};

/* lws clears POLLOUT on a raw file after its WRITEABLE callback returns, so a
 * request made inside that callback would be lost: make it from a timer. */
static void rearm_fire(lws_sorted_usec_list_t *sul)
{
    port_fd *f = (port_fd *)sul;
    if (f->wsi)
        lws_callback_on_writable(f->wsi);
}

/* ---- lws glue ------------------------------------------------------------ */

static int port_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *u, void *in,
                       size_t len)
{
    (void)u;
    (void)in;
    (void)len;
    port_fd *f = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (f && f->cb && f->read_on)
            f->cb(f->user, f, PORT_FD_READABLE);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (f && f->cb) {
            f->in_writable = true;
            f->cb(f->user, f, PORT_FD_WRITABLE);
            /* f may be gone now: the callback may have closed it */
            f = lws_get_opaque_user_data(wsi);
            if (f)
                f->in_writable = false;
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (f) {
            /* lws is closing it on its own (hangup): tell the owner, who must
             * call port_fd_close(); the fd is already being closed by lws. */
            lws_set_opaque_user_data(wsi, NULL);
            f->wsi = NULL;
            if (f->cb)
                f->cb(f->user, f, PORT_FD_HUP);
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols port_protocols[] = {
    {PORT_PROTOCOL, port_lws_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Our own vhost carries the protocol, so the session's vhost needs no
 * knowledge of port mode. One per context, created on first use. */
static struct lws_vhost *port_vhost(ssm_session *s)
{
    static struct lws_context *made_for;
    static struct lws_vhost *vh;
    struct lws_vhost *svh = session_lws_vhost(s);
    if (svh && lws_vhost_name_to_protocol(svh, PORT_PROTOCOL))
        return svh;
    struct lws_context *ctx = session_lws_context(s);
    if (vh && made_for == ctx)
        return vh;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = port_protocols;
    info.vhost_name = "ssm-port";
    vh = lws_create_vhost(ctx, &info);
    made_for = vh ? ctx : NULL;
    return vh;
}

static void set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

port_fd *port_fd_adopt(ssm_session *s, int fd, port_fd_cb cb, void *user)
{
    struct lws_vhost *vh = port_vhost(s);
    port_fd *f = calloc(1, sizeof(*f));
    if (!f || !vh) {
        free(f);
        close(fd);
        return NULL;
    }
    set_nonblock_cloexec(fd);
    f->fd = fd;
    f->cb = cb;
    f->user = user;
    f->read_on = true;
    lws_adopt_desc_t ad;
    memset(&ad, 0, sizeof(ad));
    ad.vh = vh;
    ad.type = LWS_ADOPT_RAW_FILE_DESC;
    ad.fd.filefd = fd;
    ad.vh_prot_name = PORT_PROTOCOL;
    ad.opaque = f;
    f->wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    if (!f->wsi) { /* lws closed fd */
        free(f);
        return NULL;
    }
    return f;
}

int port_fd_fd(const port_fd *f) { return f->fd; }

void port_fd_read_enable(port_fd *f, bool on)
{
    if (!f || f->read_on == on)
        return;
    f->read_on = on;
    if (f->wsi)
        lws_rx_flow_control(f->wsi, on ? 1 : 0);
}

void port_fd_want_write(port_fd *f)
{
    if (!f || !f->wsi)
        return;
    if (f->in_writable)
        lws_sul_schedule(lws_get_context(f->wsi), 0, &f->rearm, rearm_fire, 1);
    else
        lws_callback_on_writable(f->wsi);
}

void port_fd_close(port_fd *f)
{
    if (!f)
        return;
    lws_sul_cancel(&f->rearm);
    if (f->wsi) {
        struct lws *wsi = f->wsi;
        lws_set_opaque_user_data(wsi, NULL);
        /* The peer sees the close at once (shutdown); lws closes the fd with
         * the wsi on its next service turn (closing it here, maybe inside
         * this very wsi's callback, would not be safe). */
        lws_rx_flow_control(wsi, 0);
        shutdown(f->fd, SHUT_RDWR);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    free(f);
}

/* ---- listener ------------------------------------------------------------ */

struct port_listener {
    ssm_session *s;
    port_fd *f;
    port_timer *retry; /* resumes accepting after EMFILE and the like */
    port_accept_cb cb;
    void *user;
    unsigned max_per_event;
    bool is_unix;
    bool paused;
    int port;
    port_listen_addr addr; /* TCP: the bound address */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino; /* the socket file we created, so we only unlink our own */
};

static void listener_event(void *user, port_fd *f, int ev)
{
    port_listener *l = user;
    (void)f;
    if (ev == PORT_FD_HUP) {
        l->f = NULL;
        return;
    }
    if (ev != PORT_FD_READABLE || l->paused)
        return;
    for (unsigned i = 0; i < l->max_per_event && !l->paused; i++) {
        int c = accept4(port_fd_fd(l->f), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
                return;
            /* EMFILE, ENOBUFS...: the pending connection stays readable, so
             * a level-triggered loop would spin; retry accepting shortly (the
             * official plugin logs accept errors and keeps accepting). */
            port_fd_read_enable(l->f, false);
            port_timer_arm(l->retry, PORT_ACCEPT_RETRY_MS);
            return;
        }
        l->cb(l->user, c);
    }
}

static void accept_retry(void *user)
{
    port_listener *l = user;
    if (!l->paused)
        port_fd_read_enable(l->f, true);
}

static int parse_port(const char *s, int *port)
{
    if (!s || !*s) {
        *port = 0;
        return 0;
    }
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return -1;
    }
    *port = (int)v;
    return 0;
}

int port_listen_parse_address(const char *text, port_listen_addr *out)
{
    port_listen_addr a;
    memset(&a, 0, sizeof a);
    if (!text || !*text || strlen(text) >= sizeof a.text)
        return -1;
    const char *lit = strcmp(text, "localhost") == 0 ? "127.0.0.1" : text;
    size_t n = strlen(lit);
    char buf[sizeof a.text];
    if (lit[0] == '[' && n > 2 && lit[n - 1] == ']') { /* "[::1]" as in URLs */
        memcpy(buf, lit + 1, n - 2);
        buf[n - 2] = '\0';
        lit = buf;
    }
    if (inet_pton(AF_INET, lit, a.addr) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, lit, a.addr) == 1)
        a.family = AF_INET6;
    else
        return -1;
    inet_ntop(a.family, a.addr, a.text, sizeof a.text); /* canonical form */
    if (out)
        *out = a;
    return 0;
}

/* SSM_PLUGIN_LISTEN_ADDRESS, or 127.0.0.1. */
static int listen_address(port_listen_addr *a, char *err, size_t errlen)
{
    const char *env = getenv("SSM_PLUGIN_LISTEN_ADDRESS");
    if (!env || !*env)
        env = "127.0.0.1";
    if (port_listen_parse_address(env, a) == 0)
        return 0;
    snprintf(err, errlen, "listen tcp: address %.100s: not an IP address (SSM_PLUGIN_LISTEN_ADDRESS)",
             env);
    return -1;
}

static int open_tcp(port_listener *l, const char *port_s, char *err, size_t errlen)
{
    char et[128];
    int port;
    if (parse_port(port_s, &port) < 0) {
        snprintf(err, errlen, "listen tcp: address %s: invalid port", port_s);
        return -1;
    }
    if (listen_address(&l->addr, err, errlen) < 0)
        return -1;
    bool v6 = l->addr.family == AF_INET6;
    /* Go's form: host:port, [v6]:port */
    char shown[sizeof l->addr.text + 2];
    snprintf(shown, sizeof shown, v6 ? "[%s]" : "%s", l->addr.text);
    int fd = socket(l->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen tcp %s: socket: %s", shown, ssm_go_errno_text(errno, et, sizeof et));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    if (v6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)); /* exactly this address */
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        memcpy(&s6->sin6_addr, l->addr.addr, 16);
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        memcpy(&s4->sin_addr, l->addr.addr, 4);
        sl = sizeof(*s4);
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        snprintf(err, errlen, "listen tcp %s:%d: bind: %s", shown, port,
                 ssm_go_errno_text(e, et, sizeof et));
        close(fd);
        return -1;
    }
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    l->port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static int open_unix(port_listener *l, const char *path, char *err, size_t errlen)
{
    char et[128];
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "listen unix %s: bind: invalid argument", path ? path : "");
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen unix %s: socket: %s", path, ssm_go_errno_text(errno, et, sizeof et));
        return -1;
    }
    /* Owner only, whatever the umask: the forwarded service is behind it. */
    mode_t old_mask = umask(0077);
    int b = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old_mask);
    if (b < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        snprintf(err, errlen, "listen unix %s: bind: %s", path,
                 ssm_go_errno_text(e, et, sizeof et));
        close(fd);
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
    }
    snprintf(l->path, sizeof(l->path), "%s", path);
    return fd;
}

/* The ready signal (SSM_PLUGIN_READY_FILE / _FD) once the listener is up. */
static void publish_ready(const port_listener *l, const char *sid)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return;
    if (l->is_unix) {
        cJSON_AddStringToObject(j, "unix_socket", l->path);
    } else {
        cJSON_AddNumberToObject(j, "port", l->port);
        cJSON_AddStringToObject(j, "address", l->addr.text);
    }
    cJSON_AddStringToObject(j, "session_id", sid ? sid : "");
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (line)
        port_ready_publish(sid ? sid : "", line);
    free(line);
}

port_listener *port_listen_open(ssm_session *s, const ssm_port_props *props, port_accept_cb cb,
                                void *user, unsigned max_per_event, char *err, size_t errlen)
{
    port_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->s = s;
    l->cb = cb;
    l->user = user;
    l->max_per_event = max_per_event ? max_per_event : 1;
    l->is_unix = props->local_connection_type && strcmp(props->local_connection_type, "unix") == 0;
    int fd = l->is_unix ? open_unix(l, props->local_unix_socket, err, errlen)
                        : open_tcp(l, props->local_port_number, err, errlen);
    if (fd < 0) {
        free(l);
        return NULL;
    }
    l->retry = port_timer_new(s, accept_retry, l);
    if (!l->retry)
        close(fd);
    l->f = l->retry ? port_fd_adopt(s, fd, listener_event, l) : NULL; /* adopt closes fd on failure */
    if (!l->f) {
        port_timer_free(l->retry);
        snprintf(err, errlen, "cannot watch the listening socket");
        if (l->is_unix)
            unlink(l->path);
        free(l);
        return NULL;
    }
    publish_ready(l, session_id(s));
    return l;
}

void port_listen_opened_text(const port_listener *l, const char *sid, char *buf, size_t cap)
{
    if (l->is_unix)
        snprintf(buf, cap, "Unix socket %s opened for sessionId %s.", l->path, sid);
    else
        snprintf(buf, cap, "Port %d opened for sessionId %s.", l->port, sid);
}

void port_listen_pause(port_listener *l, bool paused)
{
    if (!l)
        return;
    l->paused = paused;
    port_fd_read_enable(l->f, !paused);
}

void port_listen_close(port_listener *l)
{
    if (!l)
        return;
    port_timer_free(l->retry);
    port_fd_close(l->f);
    if (l->is_unix && l->path[0]) {
        struct stat st;
        if (stat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
            unlink(l->path);
    }
    free(l);
}

/* ---- timers -------------------------------------------------------------- */

struct port_timer {
    lws_sorted_usec_list_t sul; /* first: the callback gets its address */
    ssm_session *s;
    port_timer_cb cb;
    void *user;
};

static void timer_fire(lws_sorted_usec_list_t *sul)
{
    port_timer *t = lws_container_of(sul, port_timer, sul);
    t->cb(t->user);
}

port_timer *port_timer_new(ssm_session *s, port_timer_cb cb, void *user)
{
    port_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->s = s;
    t->cb = cb;
    t->user = user;
    return t;
}

void port_timer_arm(port_timer *t, uint64_t ms)
{
    if (t)
        lws_sul_schedule(session_lws_context(t->s), 0, &t->sul, timer_fire,
                         (lws_usec_t)ms * LWS_US_PER_MS);
}

void port_timer_cancel(port_timer *t)
{
    if (t)
        lws_sul_cancel(&t->sul);
}

void port_timer_free(port_timer *t)
{
    if (!t)
        return;
    lws_sul_cancel(&t->sul);
    free(t);
}

/* ---- shared texts and flags ---------------------------------------------- */

void port_end_with_exit_text(ssm_session *s)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "\n\nExiting session with sessionId: %s.\n\n", session_id(s));
    session_end(s, 0, msg);
}

void port_send_flag(ssm_session *s, uint32_t flag)
{
    uint8_t p[4];
    ssm_flag_encode(flag, p);
    (void)session_send(s, SSM_PT_FLAG, p, sizeof(p));
}

bool port_exit_ready(ssm_session *s, uint64_t since_ms)
{
    return session_send_idle(s) || session_now_ms() - since_ms >= PORT_EXIT_WAIT_MS;
}

int port_start_failed(ssm_session *s, void **state, void (*stop)(void *), const char *why)
{
    char msg[600];
    /* Format first: why may point into the state stop() frees. */
    snprintf(msg, sizeof(msg), "Cannot perform start session: %s\n", why);
    void *st = *state;
    *state = NULL;
    if (st)
        stop(st);
    session_end(s, 0, msg);
    return -1;
}
