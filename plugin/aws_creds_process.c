/* credential_process: run a command, read its JSON from stdout (bounded,
 * time-limited), parse Version 1 credentials. stdin and stderr are the
 * plugin's own, as in the SDKs (the command may prompt, e.g. for MFA). On
 * timeout only the shell we started is killed, as the Go SDK does; it stays
 * in our process group so it can still use the terminal. */
#include "aws_creds.h"
#include "aws_http.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#define MAX_PROCESS_OUTPUT (64u * 1024u)

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

int aws_creds_process_parse(const char *json, size_t n, time_t now, aws_credentials *out,
                            char *err, size_t errcap)
{
    cJSON *j = cJSON_ParseWithLength(json, n);
    int rc = -1;
    if (!cJSON_IsObject(j)) {
        snprintf(err, errcap, "output is not a JSON object");
        goto done;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "Version");
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
        snprintf(err, errcap, "unsupported Version (want 1)");
        goto done;
    }
    const char *id = jstr(j, "AccessKeyId"), *sec = jstr(j, "SecretAccessKey");
    const char *tok = jstr(j, "SessionToken"), *exp = jstr(j, "Expiration");
    if (!id || !*id || !sec || !*sec) {
        snprintf(err, errcap, "missing AccessKeyId or SecretAccessKey");
        goto done;
    }
    time_t e = 0;
    if (exp && *exp) {
        e = aws_parse_iso8601(exp);
        if (e < 0) {
            snprintf(err, errcap, "bad Expiration");
            goto done;
        }
        if (e <= now) {
            snprintf(err, errcap, "credentials already expired");
            goto done;
        }
    }
    rc = aws_credentials_set(out, id, sec, tok, e, "credential_process");
    if (rc)
        snprintf(err, errcap, "out of memory");
done:
    if (j) {
        /* Secrets lived in the parse tree: wipe its strings before freeing. */
        for (cJSON *c = j->child; c; c = c->next)
            if (cJSON_IsString(c) && c->valuestring)
                OPENSSL_cleanse(c->valuestring, strlen(c->valuestring));
        cJSON_Delete(j);
    }
    return rc;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts `/bin/sh -c cmd` with stdout on a pipe whose read end (close-on-exec,
 * non-blocking when asked) goes to *rfd. posix_spawn, not fork: no copy of a
 * large process, and the child gets only fds 0-2, an empty signal mask and
 * default dispositions for the signals the plugin ignores or blocks. */
static pid_t spawn_sh(const char *cmd, bool nonblock, int *rfd, char *err, size_t errcap)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errcap, "pipe: %s", strerror(errno));
        return -1;
    }
    if (nonblock)
        fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* sockets and the rest stay ours */
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    static const int reset[] = {SIGPIPE, SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGCHLD,
                                SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaddset(&dfl, reset[i]);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    pid_t pid = -1;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fds[1]);
    if (rc != 0) {
        snprintf(err, errcap, "spawn: %s", strerror(rc));
        close(fds[0]);
        return -1;
    }
    *rfd = fds[0];
    return pid;
}

static void result_text(bool timed_out, bool overflow, unsigned timeout_s, int status,
                        char *err, size_t errcap)
{
    if (timed_out)
        snprintf(err, errcap, "timed out after %us", timeout_s);
    else if (overflow)
        snprintf(err, errcap, "output larger than %u bytes", MAX_PROCESS_OUTPUT);
    else
        snprintf(err, errcap, "command failed (exit %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int aws_creds_process_run(const char *cmd, unsigned timeout_s, time_t now,
                          aws_credentials *out, char *err, size_t errcap)
{
    if (!cmd || !*cmd) {
        snprintf(err, errcap, "empty command");
        return -1;
    }
    if (!timeout_s)
        timeout_s = 60;
    int rfd = -1;
    pid_t pid = spawn_sh(cmd, false, &rfd, err, errcap);
    if (pid < 0)
        return -1;
    char *buf = malloc(MAX_PROCESS_OUTPUT + 1);
    size_t n = 0;
    bool overflow = false, timed_out = false;
    long long deadline = mono_ms() + (long long)timeout_s * 1000;
    while (buf) {
        long long left = deadline - mono_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = rfd, .events = POLLIN};
        int pr = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read(rfd, buf + n, MAX_PROCESS_OUTPUT + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n > MAX_PROCESS_OUTPUT) {
            overflow = true;
            break;
        }
    }
    close(rfd);
    if (timed_out || overflow || !buf)
        kill(pid, SIGKILL);
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    int rc = -1;
    if (!buf)
        snprintf(err, errcap, "out of memory");
    else if (timed_out || overflow || (w == pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)))
        result_text(timed_out, overflow, timeout_s, status, err, errcap);
    else
        rc = aws_creds_process_parse(buf, n, now, out, err, errcap);
    if (buf) {
        OPENSSL_cleanse(buf, n);
        free(buf);
    }
    return rc;
}

/* ---- asynchronous run on the lws loop ---- */

#define REAP_POLL_MS 10u /* stdout closed, child not yet exited: look again */

struct aws_proc {
    aws_proc_cb cb;
    void *user;
    const char *source;
    pid_t pid;          /* 0 once reaped */
    int status;
    aws_http_fd *out;   /* the stdout pipe, until EOF */
    int out_fd;
    ssm_ptimer *timer;  /* deadline, then reaping polls; also a start failure */
    long long deadline; /* CLOCK_MONOTONIC ms */
    unsigned timeout_s;
    bool timed_out, overflow;
    char start_err[128]; /* set: spawning failed, the timer reports it */
    char *buf;           /* MAX_PROCESS_OUTPUT + 1 */
    size_t n;
};

static void proc_release(aws_proc *p)
{
    aws_http_fd_free(p->out);
    p->out = NULL;
    ssm_ptimer_free(p->timer);
    p->timer = NULL;
    if (p->buf) {
        OPENSSL_cleanse(p->buf, p->n);
        free(p->buf);
        p->buf = NULL;
    }
}

/* The result goes out once the child is reaped; p is gone afterwards. */
static void proc_deliver(aws_proc *p)
{
    aws_credentials c = {0};
    char err[200] = "";
    int rc = -1;
    if (p->start_err[0])
        snprintf(err, sizeof err, "%s", p->start_err);
    else if (p->timed_out || p->overflow || !(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0))
        result_text(p->timed_out, p->overflow, p->timeout_s, p->status, err, sizeof err);
    else
        rc = aws_creds_process_parse(p->buf, p->n, time(NULL), &c, err, sizeof err);
    if (rc == 0)
        c.source = p->source;
    aws_proc_cb cb = p->cb;
    void *user = p->user;
    proc_release(p);
    free(p);
    cb(user, rc == 0 ? &c : NULL, rc == 0 ? NULL : err);
    aws_credentials_clear(&c);
}

static bool proc_reap(aws_proc *p)
{
    if (!p->pid)
        return true;
    pid_t w;
    while ((w = waitpid(p->pid, &p->status, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (w == 0)
        return false;
    if (w < 0) /* not ours any more (e.g. SIGCHLD ignored): take it as failed */
        p->status = 127 << 8;
    p->pid = 0;
    return true;
}

static void proc_kill(aws_proc *p)
{
    if (p->pid)
        kill(p->pid, SIGKILL);
}

/* Output is complete (EOF, overflow or deadline): reap, or look again soon. */
static void proc_after_output(aws_proc *p)
{
    aws_http_fd_free(p->out);
    p->out = NULL;
    if (proc_reap(p)) {
        proc_deliver(p);
        return;
    }
    long long left = p->deadline - mono_ms();
    ssm_ptimer_arm(p->timer, left > 0 && left < REAP_POLL_MS ? (uint64_t)left : REAP_POLL_MS);
}

static void proc_on_output(void *user, bool hup)
{
    aws_proc *p = user;
    if (hup) { /* lws closed the pipe; the watcher is only freed below */
        proc_after_output(p);
        return;
    }
    for (;;) {
        ssize_t r = read(p->out_fd, p->buf + p->n, MAX_PROCESS_OUTPUT + 1 - p->n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* more later */
        if (r <= 0)
            break; /* EOF (or a read error: the same for us) */
        p->n += (size_t)r;
        if (p->n > MAX_PROCESS_OUTPUT) {
            p->overflow = true;
            proc_kill(p);
            break;
        }
    }
    proc_after_output(p);
}

static void proc_on_timer(void *user)
{
    aws_proc *p = user;
    if (p->start_err[0]) {
        proc_deliver(p);
        return;
    }
    if (!p->timed_out && mono_ms() >= p->deadline && (p->out || p->pid)) {
        p->timed_out = true; /* only the shell is killed, as the Go SDK does */
        proc_kill(p);
        aws_http_fd_free(p->out);
        p->out = NULL;
    }
    if (p->out) { /* still reading: the timer is the deadline */
        long long left = p->deadline - mono_ms();
        ssm_ptimer_arm(p->timer, left > 0 ? (uint64_t)left : 0);
        return;
    }
    proc_after_output(p);
}

aws_proc *aws_proc_start(struct aws_http *http, const char *cmd, unsigned timeout_s,
                         const char *source, aws_proc_cb cb, void *user)
{
    if (!http || !cb)
        return NULL;
    aws_proc *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cb = cb;
    p->user = user;
    p->source = source ? source : "credential_process";
    p->timeout_s = timeout_s ? timeout_s : 60;
    p->out_fd = -1;
    p->timer = aws_http_timer_new(http, proc_on_timer, p);
    p->buf = malloc(MAX_PROCESS_OUTPUT + 1);
    if (!p->timer || !p->buf) {
        proc_release(p);
        free(p);
        return NULL;
    }
    p->deadline = mono_ms() + (long long)p->timeout_s * 1000;
    if (!cmd || !*cmd) {
        snprintf(p->start_err, sizeof p->start_err, "empty command");
    } else {
        int fd = -1;
        pid_t pid = spawn_sh(cmd, true, &fd, p->start_err, sizeof p->start_err);
        if (pid > 0) {
            p->pid = pid;
            p->out_fd = fd;
            p->out = aws_http_fd_watch(http, fd, proc_on_output, p);
            if (!p->out) {
                close(fd);
                proc_kill(p);
                snprintf(p->start_err, sizeof p->start_err, "cannot watch the command's output");
                while (waitpid(pid, &p->status, 0) < 0 && errno == EINTR)
                    ;
                p->pid = 0;
            }
        }
    }
    /* A start failure is reported from the loop too, never from in here. */
    ssm_ptimer_arm(p->timer, p->start_err[0] ? 0 : (uint64_t)p->timeout_s * 1000u);
    return p;
}

void aws_proc_free(aws_proc *p)
{
    if (!p)
        return;
    proc_release(p);
    if (p->pid) {
        /* Cancelled: the shell dies now. A SIGKILLed child is gone at once,
         * so this wait is short; it keeps no zombie behind in a long run. */
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
            ;
    }
    free(p);
}
