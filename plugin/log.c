/* File logger, off unless SSM_PLUGIN_LOG names a file. */
#include "log.h"

#include <fcntl.h>
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static FILE *log_fp;
static int log_level = SSM_LOG_INFO;

static void lws_log_sink(int level, const char *line)
{
    /* lws lines end with '\n' already. */
    if (log_fp)
        fprintf(log_fp, "lws[%d] %s", level, line);
}

void ssm_log_init(void)
{
    const char *path = getenv("SSM_PLUGIN_LOG");
    const char *lvl = getenv("SSM_PLUGIN_LOG_LEVEL");
    if (lvl) {
        if (!strcmp(lvl, "error"))
            log_level = SSM_LOG_ERROR;
        else if (!strcmp(lvl, "warn"))
            log_level = SSM_LOG_WARN;
        else if (!strcmp(lvl, "debug"))
            log_level = SSM_LOG_DEBUG;
    }
    if (path && *path && !log_fp) {
        /* 0600: the log names sessions and hosts; nobody else needs it. */
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        /* An existing regular file of ours is narrowed to 0600 too (a
         * terminal or /dev/stderr is left alone). */
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            (st.st_mode & 0077))
            fchmod(fd, st.st_mode & 0700);
        log_fp = fd >= 0 ? fdopen(fd, "a") : NULL;
        if (!log_fp && fd >= 0)
            close(fd);
        if (log_fp)
            setvbuf(log_fp, NULL, _IOLBF, 0);
    }
    int lws_levels = 0;
    if (log_fp) {
        lws_levels = LLL_ERR | LLL_WARN;
        /* Not LLL_INFO and below: those can echo request headers, and the
         * upgrade may carry X-Amz-Security-Token. */
        if (log_level >= SSM_LOG_DEBUG)
            lws_levels |= LLL_NOTICE;
    }
    lws_set_log_level(lws_levels, lws_log_sink);
}

void ssm_log_close(void)
{
    if (log_fp)
        fclose(log_fp);
    log_fp = NULL;
}

int ssm_log_enabled(int level)
{
    return log_fp && level <= log_level;
}

void ssm_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if (!ssm_log_enabled(level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(log_fp, "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s ", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
            names[level < 0 ? 0 : level > 3 ? 3 : level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log_fp, fmt, ap);
    va_end(ap);
    fputc('\n', log_fp);
}
