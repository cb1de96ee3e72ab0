/* Self-pipe signal delivery: nothing but write() runs in signal context. */
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int sig_pipe[2] = {-1, -1};
static ssm_signal_cb sig_cb;
static void *sig_user;
static struct lws *sig_wsi;
static unsigned long watched; /* bit per signal number < 64 */
static struct sigaction saved_action[64];

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    if (sig_pipe[1] >= 0) {
        ssize_t r = write(sig_pipe[1], &b, 1);
        (void)r; /* a full pipe already has signals pending */
    }
    errno = saved;
}

static int signals_cb(struct lws *wsi, enum lws_callback_reasons reason, void *u, void *in,
                      size_t len)
{
    (void)u;
    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE: {
        unsigned char buf[64];
        ssize_t n = read(sig_pipe[0], buf, sizeof buf);
        for (ssize_t i = 0; i < n; i++)
            if (sig_cb)
                sig_cb(sig_user, buf[i]);
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (wsi == sig_wsi)
            sig_wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols proto = {"ssm-signals", signals_cb, 0, 0, 0, NULL, 0};

const struct lws_protocols *ssm_signals_protocol(void)
{
    return &proto;
}

static int make_pipe(void)
{
    if (sig_pipe[0] >= 0)
        return 0;
    if (pipe(sig_pipe) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
}

int ssm_signals_early(void)
{
    if (make_pipe() < 0)
        return -1;
    int rc = ssm_signals_watch(SIGTERM);
    return ssm_signals_watch(SIGHUP) < 0 ? -1 : rc;
}

int ssm_signals_init(struct lws_vhost *vh, ssm_signal_cb cb, void *user)
{
    sig_cb = cb;
    sig_user = user;
    if (make_pipe() < 0)
        return -1;
    lws_sock_file_fd_type fd;
    fd.filefd = sig_pipe[0];
    sig_wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd, "ssm-signals", NULL);
    if (!sig_wsi) {
        LOGE("cannot adopt the signal pipe");
        return -1;
    }
    return 0;
}

int ssm_signals_watch(int signo)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (signo <= 0 || signo >= 64)
        return -1;
    if (watched & (1UL << signo))
        return 0;
    if (sigaction(signo, &sa, &saved_action[signo]) < 0)
        return -1;
    watched |= 1UL << signo;
    return 0;
}

void ssm_signals_shutdown(void)
{
    for (int s = 1; s < 64; s++)
        if (watched & (1UL << s))
            sigaction(s, &saved_action[s], NULL);
    watched = 0;
    sig_cb = NULL;
    /* The pipe fds stay open until exit: lws may still own the read end. */
}
