/* The machine-readable ready signal of the port handlers (port_listen.h):
 * one JSON line for scripts waiting on the local listener. */
#include "port_listen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file_replace.h"
#include "log.h"

static int publish_file(const char *path, const char *text, size_t n)
{
    if (ssm_file_replace(path, text, n) == 0)
        return 0;
    LOGW("cannot write the ready file %s: %s", path, strerror(errno));
    return -1;
}

static int publish_fd(const char *spec, const char *text, size_t n)
{
    char *end;
    long fd = strtol(spec, &end, 10);
    /* 0..2 are the session's own stdio: never write or close them. */
    if (*end || end == spec || fd < 3 || fd > 65535) {
        LOGW("SSM_PLUGIN_READY_FD=%s is not a descriptor >= 3", spec);
        return -1;
    }
    int rc = ssm_write_all((int)fd, text, n);
    if (rc != 0)
        LOGW("cannot write the ready line to fd %ld: %s", fd, strerror(errno));
    close((int)fd); /* EOF tells the reader nothing else follows */
    return rc;
}

/* Several port sessions on one loop (standalone --forward) publish one line
 * each; the lines go out together, once every session has published or
 * ended, so a script reads the whole set at once. */
#define READY_MAX 32

static struct {
    char sid[80];
    char *line;
} pend[READY_MAX];
static unsigned npend, expected = 1;
static bool flushed;

void port_ready_expect(unsigned n)
{
    expected = n > READY_MAX ? READY_MAX : n;
}

static int flush_if_complete(void)
{
    if (flushed || npend < expected || npend == 0)
        return 0;
    flushed = true;
    size_t n = 0;
    for (unsigned i = 0; i < npend; i++)
        n += strlen(pend[i].line) + 1;
    char *text = malloc(n + 1);
    int rc = -1;
    if (text) {
        size_t o = 0;
        for (unsigned i = 0; i < npend; i++) {
            size_t k = strlen(pend[i].line);
            memcpy(text + o, pend[i].line, k);
            o += k;
            text[o++] = '\n';
        }
        text[o] = '\0';
        rc = 0;
        const char *path = getenv("SSM_PLUGIN_READY_FILE");
        const char *fd = getenv("SSM_PLUGIN_READY_FD");
        if (path && *path && publish_file(path, text, o) != 0)
            rc = -1;
        if (fd && *fd && publish_fd(fd, text, o) != 0)
            rc = -1;
        free(text);
    }
    for (unsigned i = 0; i < npend; i++) {
        free(pend[i].line);
        pend[i].line = NULL;
    }
    return rc;
}

static bool published(const char *sid)
{
    for (unsigned i = 0; i < npend; i++)
        if (!strcmp(pend[i].sid, sid))
            return true;
    return false;
}

int port_ready_publish(const char *sid, const char *line)
{
    const char *path = getenv("SSM_PLUGIN_READY_FILE");
    const char *fd = getenv("SSM_PLUGIN_READY_FD");
    if ((!path || !*path) && (!fd || !*fd))
        return 0;
    if (flushed || npend >= READY_MAX || published(sid))
        return 0;
    pend[npend].line = strdup(line);
    if (!pend[npend].line)
        return -1;
    snprintf(pend[npend].sid, sizeof pend[npend].sid, "%s", sid);
    npend++;
    return flush_if_complete();
}

void port_ready_session_ended(const char *sid)
{
    if (flushed || published(sid) || expected == 0)
        return;
    expected--; /* its line will never come: write the others */
    flush_if_complete();
}
