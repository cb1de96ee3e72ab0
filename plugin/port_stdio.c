/* Standard-stream port mode (PROTOCOL.md §10.3, e.g. AWS-StartSSHSession as
 * an SSH ProxyCommand): stdin -> Output payloads, every received payload ->
 * stdout, byte for byte (stdout is a byte pipe here, never a terminal: no
 * newline rewriting, no other text). No signal handling. stdin EOF ends the
 * plugin with exit 0 once stdout is flushed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "go_errtext.h"
#include "port_listen.h"
#include "session.h"
#include "ssm_channel.h"
#include "ssm_msg.h"
#include "stdio_fd.h"

#define STDIO_EXIT_POLL_MS 10u
#define STDIO_EXIT_MAX_MS 1000u /* bounded wait at EOF: stdout drained, input acked */

typedef struct stdio_port {
    ssm_session *s;
    port_timer *exit_timer;
    bool deliver_blocked;
    bool paused;
    bool eof;
    bool ended;
    uint64_t eof_at;
    /* One stdin chunk the channel refused (kept, never dropped). */
    uint8_t pending[SSM_STDIN_CHUNK];
    size_t pending_len;
} stdio_port;

static void stdio_stop(void *state);

static void stdio_fail(stdio_port *sp, const char *why)
{
    if (sp->ended)
        return;
    sp->ended = true;
    char msg[256];
    snprintf(msg, sizeof(msg), "Cannot perform start session: %s\n", why);
    session_end(sp->s, 0, msg);
}

static void set_paused(stdio_port *sp, bool paused)
{
    if (sp->paused != paused) {
        sp->paused = paused;
        ssm_stdin_pause(paused);
    }
}

static bool flush_pending(stdio_port *sp)
{
    if (sp->pending_len == 0)
        return true;
    if (session_send_space(sp->s) < sp->pending_len ||
        session_send(sp->s, SSM_PT_OUTPUT, sp->pending, sp->pending_len) != 0)
        return false;
    sp->pending_len = 0;
    return true;
}

static void on_stdin_data(void *user, const uint8_t *p, size_t n)
{
    stdio_port *sp = user;
    if (sp->ended)
        return;
    if (n > sizeof(sp->pending))
        n = sizeof(sp->pending); /* reads are <= SSM_STDIN_CHUNK */
    if (sp->pending_len == 0 && session_send_space(sp->s) >= n &&
        session_send(sp->s, SSM_PT_OUTPUT, p, n) == 0) {
        if (session_send_space(sp->s) < SSM_STDIN_CHUNK)
            set_paused(sp, true);
        return;
    }
    memcpy(sp->pending, p, n);
    sp->pending_len = n;
    set_paused(sp, true);
}

static void exit_poll(void *user)
{
    stdio_port *sp = user;
    if (sp->ended)
        return;
    bool out_done = ssm_stdout_empty() && sp->pending_len == 0 && session_send_idle(sp->s);
    if (out_done || session_now_ms() - sp->eof_at >= STDIO_EXIT_MAX_MS) {
        sp->ended = true;
        session_end(sp->s, 0, NULL);
        return;
    }
    port_timer_arm(sp->exit_timer, STDIO_EXIT_POLL_MS);
}

static void on_stdin_eof(void *user, int err)
{
    stdio_port *sp = user;
    if (sp->ended)
        return;
    if (err) {
        char et[128], why[160];
        snprintf(why, sizeof why, "read /dev/stdin: %s", ssm_go_errno_text(err, et, sizeof et));
        stdio_fail(sp, why);
        return;
    }
    sp->eof = true;
    sp->eof_at = session_now_ms();
    /* One loop turn at least, so what was just queued reaches the socket. */
    port_timer_arm(sp->exit_timer, STDIO_EXIT_POLL_MS);
}

static const ssm_stdin_ops stdin_ops = {.on_data = on_stdin_data, .on_eof = on_stdin_eof};

static void on_stdout_drain(void *user)
{
    stdio_port *sp = user;
    if (sp->deliver_blocked && !sp->ended) {
        sp->deliver_blocked = false;
        session_resume_delivery(sp->s);
    }
}

static int stdio_start(ssm_session *s, void **state)
{
    stdio_port *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        session_end(s, 0, "Cannot perform start session: out of memory\n");
        return -1;
    }
    sp->s = s;
    *state = sp;
    sp->exit_timer = port_timer_new(s, exit_poll, sp);
    if (!sp->exit_timer)
        return port_start_failed(s, state, stdio_stop, "out of memory");
    ssm_stdout_on_drain(on_stdout_drain, sp);
    if (ssm_stdin_start(session_lws_vhost(s), &stdin_ops, sp) != 0)
        return port_start_failed(s, state, stdio_stop, "cannot read stdin");
    return 0;
}

static int stdio_on_payload(void *state, uint32_t type, const uint8_t *p, size_t n)
{
    stdio_port *sp = state;
    (void)type; /* every payload type is written raw (§10.3) */
    if (sp->ended || n == 0)
        return SSM_DELIVER_OK;
    if (ssm_stdout_write(p, n) != 0) {
        sp->deliver_blocked = true;
        return SSM_DELIVER_NOT_READY;
    }
    return SSM_DELIVER_OK;
}

static void stdio_on_send_space(void *state)
{
    stdio_port *sp = state;
    if (sp->ended || !flush_pending(sp))
        return;
    if (!sp->eof && session_send_space(sp->s) >= SSM_STDIN_CHUNK)
        set_paused(sp, false);
}

static void stdio_stop(void *state)
{
    stdio_port *sp = state;
    if (!sp)
        return;
    sp->ended = true;
    ssm_stdin_stop();
    ssm_stdout_on_drain(NULL, NULL);
    ssm_stdout_flush_blocking(1000);
    port_timer_free(sp->exit_timer);
    free(sp);
}

const ssm_handler_ops ssm_port_stdio_handler = {
    .name = "port-stdio",
    .start = stdio_start,
    .on_payload = stdio_on_payload,
    .on_send_space = stdio_on_send_space,
    .on_signal = NULL, /* none in this mode: the inherited dispositions stay */
    .stop = stdio_stop,
};
