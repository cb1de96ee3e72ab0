/* Precise timers: see ptimer.h for why they exist. */
#include "ptimer.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

struct ssm_ptimer {
    int fd;
    uint64_t deadline_ms; /* armed expiry on CLOCK_MONOTONIC, 0 = disarmed */
    struct lws *wsi;
    ssm_ptimer_cb cb;
    void *user;
};

static int ptimer_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    ssm_ptimer *t = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE: {
        uint64_t expirations;
        if (!t || read(t->fd, &expirations, sizeof expirations) != (ssize_t)sizeof expirations)
            return 0; /* disarmed in between, or freed: nothing to do */
        t->deadline_ms = 0;
        t->cb(t->user);
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (t)
            t->wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols proto = {"ssm-ptimer", ptimer_cb, 0, 0, 0, NULL, 0};

const struct lws_protocols *ssm_ptimer_protocol(void)
{
    return &proto;
}

ssm_ptimer *ssm_ptimer_new(struct lws_vhost *vh, ssm_ptimer_cb cb, void *user)
{
    ssm_ptimer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (t->fd < 0) {
        free(t);
        return NULL;
    }
    t->cb = cb;
    t->user = user;
    lws_sock_file_fd_type fd;
    fd.filefd = t->fd;
    t->wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd, proto.name, NULL);
    if (!t->wsi) {
        close(t->fd);
        free(t);
        return NULL;
    }
    lws_set_opaque_user_data(t->wsi, t);
    return t;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ssm_ptimer_arm(ssm_ptimer *t, uint64_t delay_ms)
{
    /* Callers re-arm on every event; skip the syscall when nothing moves. */
    uint64_t deadline = mono_ms() + delay_ms;
    if (delay_ms && deadline == t->deadline_ms)
        return;
    t->deadline_ms = deadline;
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (delay_ms == 0)
        its.it_value.tv_nsec = 1000; /* a zero it_value would disarm it */
    else {
        its.it_value.tv_sec = (time_t)(delay_ms / 1000);
        its.it_value.tv_nsec = (long)(delay_ms % 1000) * 1000000L;
    }
    timerfd_settime(t->fd, 0, &its, NULL);
}

void ssm_ptimer_arm_within(ssm_ptimer *t, uint64_t delay_ms)
{
    uint64_t now = mono_ms();
    if (t->deadline_ms && t->deadline_ms > now && t->deadline_ms <= now + delay_ms)
        return;
    ssm_ptimer_arm(t, delay_ms);
}

void ssm_ptimer_cancel(ssm_ptimer *t)
{
    if (t->deadline_ms == 0)
        return;
    t->deadline_ms = 0;
    struct itimerspec its = {{0, 0}, {0, 0}};
    timerfd_settime(t->fd, 0, &its, NULL);
}

void ssm_ptimer_free(ssm_ptimer *t)
{
    if (!t)
        return;
    ssm_ptimer_cancel(t);
    if (t->wsi) {
        /* lws owns the adopted descriptor: it must not find t any more, and
         * closes it on its next turn (a session ending among others). */
        lws_set_opaque_user_data(t->wsi, NULL);
        lws_set_timeout(t->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    } else
        close(t->fd);
    free(t);
}
