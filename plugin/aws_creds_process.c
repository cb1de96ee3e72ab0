/* credential_process: run a command, read its JSON from stdout (bounded,
 * time-limited), parse Version 1 credentials. stdin and stderr are the
 * plugin's own, as in the SDKs (the command may prompt, e.g. for MFA). On
 * timeout only the shell we started is killed, as the Go SDK does; it stays
 * in our process group so it can still use the terminal. */
#include "aws_creds.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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

int aws_creds_process_run(const char *cmd, unsigned timeout_s, time_t now,
                          aws_credentials *out, char *err, size_t errcap)
{
    if (!cmd || !*cmd) {
        snprintf(err, errcap, "empty command");
        return -1;
    }
    if (!timeout_s)
        timeout_s = 60;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errcap, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errcap, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        /* Sockets and other descriptors stay ours. */
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
        {
            long maxfd = sysconf(_SC_OPEN_MAX);
            if (maxfd < 0 || maxfd > 65536)
                maxfd = 65536;
            for (int fd = 3; fd < maxfd; fd++)
                close(fd);
        }
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
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
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t r = read(fds[0], buf + n, MAX_PROCESS_OUTPUT + 1 - n);
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
    close(fds[0]);
    if (timed_out || overflow || !buf)
        kill(pid, SIGKILL);
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    int rc = -1;
    if (!buf)
        snprintf(err, errcap, "out of memory");
    else if (timed_out)
        snprintf(err, errcap, "timed out after %us", timeout_s);
    else if (overflow)
        snprintf(err, errcap, "output larger than %u bytes", MAX_PROCESS_OUTPUT);
    else if (w == pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        snprintf(err, errcap, "command failed (exit %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    else
        rc = aws_creds_process_parse(buf, n, now, out, err, errcap);
    if (buf) {
        OPENSSL_cleanse(buf, n);
        free(buf);
    }
    return rc;
}
