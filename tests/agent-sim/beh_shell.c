/* Shell-family pty sessions:
 *   SSM-SessionManagerRunShell (and no DocumentName): Standard_Stream running
 *     $SIM_SHELL or "/bin/sh -i";
 *   AWS-StartInteractiveCommand: InteractiveCommands running sh -c <command>.
 * Client Output is written to the pty, Size payloads resize it, pty output
 * goes back in <= 1024-byte chunks. The session ends when the process exits. */
#include <errno.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pump.h"
#include "sim.h"

#define SHELL_PENDING_MAX 8192

struct shell {
    sim_session *s;
    pid_t pid;
    int master;
    struct sim_pump pump;
    uint8_t pending[SHELL_PENDING_MAX]; /* client bytes the pty did not take yet */
    size_t pending_len;
};

static void record_exit(sim_session *s, int status)
{
    cJSON *f = cJSON_CreateObject();
    if (WIFEXITED(status))
        cJSON_AddNumberToObject(f, "exit_code", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        cJSON_AddNumberToObject(f, "signal", WTERMSIG(status));
    sim_record(s, "process_exit", f);
}

static void on_eof(struct sim_pump *p, void *user)
{
    (void)p;
    struct shell *sh = user;
    int status = 0;
    if (sh->pid > 0 && waitpid(sh->pid, &status, 0) == sh->pid) {
        record_exit(sh->s, status);
        sh->pid = -1;
    }
    sim_session_end(sh->s, "");
}

static int flush_pending(struct shell *sh)
{
    while (sh->pending_len > 0) {
        ssize_t n = write(sh->master, sh->pending, sh->pending_len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                sim_pump_want_pollout(&sh->pump);
                return 0;
            }
            return -1;
        }
        memmove(sh->pending, sh->pending + n, sh->pending_len - (size_t)n);
        sh->pending_len -= (size_t)n;
    }
    return 0;
}

static void on_pollout(struct sim_pump *p, void *user)
{
    (void)p;
    flush_pending(user);
}

static int shell_spawn(sim_session *s, void **state, const char *command)
{
    struct shell *sh = calloc(1, sizeof *sh);
    if (sh == NULL)
        return -1;
    sh->s = s;
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    sh->pid = forkpty(&sh->master, NULL, NULL, &ws);
    if (sh->pid < 0) {
        free(sh);
        return -1;
    }
    if (sh->pid == 0) {
        if (getenv("TERM") == NULL)
            setenv("TERM", "xterm", 1);
        if (command) {
            execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        } else {
            const char *shell = getenv("SIM_SHELL");
            if (shell && shell[0])
                execl(shell, shell, (char *)NULL);
            else
                execl("/bin/sh", "sh", "-i", (char *)NULL);
        }
        _exit(127);
    }
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "pid", sh->pid);
    cJSON_AddStringToObject(f, "command", command ? command : "(shell)");
    sim_record(s, "process_start", f);
    if (sim_pump_start(&sh->pump, s, sh->master, SSM_PT_OUTPUT, on_eof, on_pollout, sh) != 0) {
        kill(sh->pid, SIGKILL);
        waitpid(sh->pid, NULL, 0);
        close(sh->master);
        free(sh);
        return -1;
    }
    sim_pump_utf8(&sh->pump, 1);
    *state = sh;
    return 0;
}

static int std_start(sim_session *s, void **state)
{
    return shell_spawn(s, state, NULL);
}

static int interactive_start(sim_session *s, void **state)
{
    return shell_spawn(s, state, sim_param(s, "command", "true"));
}

static void apply_size(struct shell *sh, const uint8_t *p, size_t n)
{
    cJSON *root = cJSON_ParseWithLength((const char *)p, n);
    const cJSON *cols = cJSON_GetObjectItemCaseSensitive(root, "cols");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(root, "rows");
    cJSON *f = cJSON_CreateObject();
    if (cJSON_IsNumber(cols) && cJSON_IsNumber(rows)) {
        /* The agent truncates to 16 bits (§16). */
        struct winsize ws = {.ws_row = (unsigned short)(uint32_t)rows->valuedouble,
                             .ws_col = (unsigned short)(uint32_t)cols->valuedouble};
        int rc = ioctl(sh->master, TIOCSWINSZ, &ws);
        cJSON_AddNumberToObject(f, "cols", ws.ws_col);
        cJSON_AddNumberToObject(f, "rows", ws.ws_row);
        cJSON_AddBoolToObject(f, "applied", rc == 0);
    } else {
        cJSON_AddBoolToObject(f, "applied", 0);
    }
    cJSON_Delete(root);
    sim_record(sh->s, "size", f);
}

static enum sim_input_result shell_input(sim_session *s, void *state, uint32_t ptype, const uint8_t *p,
                                         size_t n)
{
    (void)s;
    struct shell *sh = state;
    if (ptype == SSM_PT_SIZE) {
        apply_size(sh, p, n);
        return SIM_INPUT_OK;
    }
    if (ptype != SSM_PT_OUTPUT)
        return SIM_INPUT_OK;
    if (flush_pending(sh) != 0)
        return SIM_INPUT_ERROR;
    if (sh->pending_len + n > sizeof sh->pending)
        return SIM_INPUT_NOT_READY; /* the pty is not draining: let the client retransmit */
    memcpy(sh->pending + sh->pending_len, p, n);
    sh->pending_len += n;
    return flush_pending(sh) == 0 ? SIM_INPUT_OK : SIM_INPUT_ERROR;
}

static void shell_writable(sim_session *s, void *state)
{
    (void)s;
    struct shell *sh = state;
    sim_pump_resume(&sh->pump);
}

static void shell_close(sim_session *s, void *state)
{
    (void)s;
    struct shell *sh = state;
    if (sh == NULL)
        return;
    sim_pump_stop(&sh->pump);
    if (sh->pid > 0) {
        kill(-sh->pid, SIGHUP);
        kill(sh->pid, SIGKILL);
        waitpid(sh->pid, NULL, 0);
    }
    close(sh->master);
    free(sh);
}

static const char *const std_docs[] = {"SSM-SessionManagerRunShell", NULL};
static const char *const interactive_docs[] = {"AWS-StartInteractiveCommand", NULL};

static const sim_behaviour shell_behaviour = {
    .name = "shell",
    .session_type = "Standard_Stream",
    .documents = std_docs,
    .handshake = SIM_HANDSHAKE_IF_FLAG,
    .start = std_start,
    .on_input = shell_input,
    .on_writable = shell_writable,
    .on_close = shell_close,
};

static const sim_behaviour interactive_behaviour = {
    .name = "interactive_command",
    .session_type = "InteractiveCommands",
    .documents = interactive_docs,
    .handshake = SIM_HANDSHAKE_IF_FLAG,
    .start = interactive_start,
    .on_input = shell_input,
    .on_writable = shell_writable,
    .on_close = shell_close,
};

SIM_REGISTER_BEHAVIOUR(shell_behaviour)
SIM_REGISTER_BEHAVIOUR(interactive_behaviour)
