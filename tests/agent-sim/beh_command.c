/* AWS-StartNonInteractiveCommand: NonInteractiveCommands (always handshaken).
 * Runs sh -c <command> with pipes; stdout as Output, stderr as StdErr when
 * separateOutputStream is "true" (else merged into Output), then ExitCode
 * "EXIT_CODE: <n>" and the end of the session. Only 0x03 (SIGINT) and 0x1C
 * (SIGQUIT) in client Output are acted on. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pump.h"
#include "sim.h"

struct command {
    sim_session *s;
    pid_t pid;
    int out_fd, err_fd; /* err_fd -1 when merged */
    struct sim_pump out, err;
    int open_pumps;
    int exit_code;
    int exit_pending; /* ExitCode not sent yet (sender was full) */
};

static void send_exit(struct command *c)
{
    char txt[32];
    int n = snprintf(txt, sizeof txt, "EXIT_CODE: %d", c->exit_code);
    int rc = sim_send(c->s, SSM_PT_EXIT_CODE, (const uint8_t *)txt, (size_t)n);
    if (rc == SIM_SEND_FULL) {
        c->exit_pending = 1;
        sim_want_writable(c->s);
        return;
    }
    c->exit_pending = 0;
    sim_session_end(c->s, "");
}

static void on_eof(struct sim_pump *p, void *user)
{
    (void)p;
    struct command *c = user;
    if (--c->open_pumps > 0)
        return;
    int status = 0;
    if (c->pid > 0 && waitpid(c->pid, &status, 0) == c->pid) {
        c->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "exit_code", c->exit_code);
        sim_record(c->s, "process_exit", f);
        c->pid = -1;
    }
    send_exit(c);
}

static int cmd_start(sim_session *s, void **state)
{
    struct command *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->s = s;
    c->err_fd = -1;
    int separate = strcmp(sim_param(s, "separateOutputStream", "false"), "true") == 0;
    int po[2], pe[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC) != 0 || (separate && pipe2(pe, O_CLOEXEC) != 0)) {
        free(c);
        return -1;
    }
    const char *command = sim_param(s, "command", "true");
    c->pid = fork();
    if (c->pid == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(po[1], 1);
        dup2(separate ? pe[1] : po[1], 2);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(po[1]);
    if (separate)
        close(pe[1]);
    if (c->pid < 0) {
        close(po[0]);
        if (separate)
            close(pe[0]);
        free(c);
        return -1;
    }
    setpgid(c->pid, c->pid);
    c->out_fd = po[0];
    c->err_fd = separate ? pe[0] : -1;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "pid", c->pid);
    cJSON_AddStringToObject(f, "command", command);
    cJSON_AddBoolToObject(f, "separate_output", separate);
    sim_record(s, "process_start", f);
    c->open_pumps = separate ? 2 : 1;
    if (sim_pump_start(&c->out, s, c->out_fd, SSM_PT_OUTPUT, on_eof, NULL, c) != 0 ||
        (separate && sim_pump_start(&c->err, s, c->err_fd, SSM_PT_STDERR, on_eof, NULL, c) != 0)) {
        kill(-c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        sim_pump_stop(&c->out);
        close(c->out_fd);
        if (c->err_fd >= 0)
            close(c->err_fd);
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static enum sim_input_result cmd_input(sim_session *s, void *state, uint32_t ptype, const uint8_t *p,
                                       size_t n)
{
    struct command *c = state;
    if (ptype != SSM_PT_OUTPUT || c->pid <= 0)
        return SIM_INPUT_OK;
    for (size_t i = 0; i < n; i++) {
        int sig = p[i] == 0x03 ? SIGINT : p[i] == 0x1c ? SIGQUIT : 0;
        if (sig == 0)
            continue;
        kill(-c->pid, sig);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "signal", sig);
        sim_record(s, "signal_sent", f);
    }
    return SIM_INPUT_OK;
}

static void cmd_writable(sim_session *s, void *state)
{
    (void)s;
    struct command *c = state;
    if (c->exit_pending) {
        send_exit(c);
        return;
    }
    sim_pump_resume(&c->out);
    if (c->err_fd >= 0)
        sim_pump_resume(&c->err);
}

static void cmd_close(sim_session *s, void *state)
{
    (void)s;
    struct command *c = state;
    if (c == NULL)
        return;
    sim_pump_stop(&c->out);
    if (c->err_fd >= 0)
        sim_pump_stop(&c->err);
    if (c->pid > 0) {
        kill(-c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    close(c->out_fd);
    if (c->err_fd >= 0)
        close(c->err_fd);
    free(c);
}

static const char *const cmd_docs[] = {"AWS-StartNonInteractiveCommand", NULL};

static const sim_behaviour command_behaviour = {
    .name = "noninteractive_command",
    .session_type = "NonInteractiveCommands",
    .documents = cmd_docs,
    .handshake = SIM_HANDSHAKE_ALWAYS,
    .start = cmd_start,
    .on_input = cmd_input,
    .on_writable = cmd_writable,
    .on_close = cmd_close,
};

SIM_REGISTER_BEHAVIOUR(command_behaviour)
