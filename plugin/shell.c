/* Shell-family handler (PROTOCOL.md §10.1, PROTOCOL-NEWEST.md §4.1):
 * cbreak terminal, stdin -> escape filter -> Output, signals -> control
 * bytes, window size -> Size, every payload -> stdout. */
#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "go_errtext.h"
#include "log.h"
#include "session.h"
#include "ssm_channel.h"
#include "ssm_handshake.h"
#include "ssm_msg.h"
#include "standalone_exit.h"
#include "stdio_fd.h"
#include "terminal.h"

#define EOF_QUIET_MS 500     /* after stdin EOF: output quiet this long and all acked -> end */
#define EOF_MAX_IDLE_MS 2000 /* ... or quiet this long regardless */

typedef struct shell {
    ssm_session *s;
    ssm_escape esc;
    uint8_t pending[SSM_STDIN_CHUNK + 1]; /* filtered input waiting for send space */
    size_t pending_len;
    uint8_t sig_bytes[16]; /* control bytes waiting for send space */
    size_t sig_len;
    bool size_dirty;
    unsigned cols, rows; /* last size sent; 0x0 before the first */
    bool delivery_blocked;
    bool eof;
    char eof_text[200]; /* the end text once input and output are done */
    uint64_t last_activity_ms;
    uint32_t eof_unacked; /* unacked count at the last EOF check */
    lws_sorted_usec_list_t sul_eof;
} shell;

static void update_read_pause(shell *sh)
{
    bool pause = sh->pending_len || sh->sig_len ||
                 session_send_space(sh->s) < SSM_STDIN_CHUNK + 1;
    ssm_stdin_pause(pause);
}

/* As the official plugin: not a terminal means 300x100; a size equal to the
 * last one sent (0x0 at first, so a pty reporting 0x0) sends nothing. */
static void send_size(shell *sh)
{
    unsigned c, r;
    if (!ssm_term_size(&c, &r)) {
        c = 300;
        r = 100;
    }
    sh->size_dirty = false;
    if (c == sh->cols && r == sh->rows)
        return;
    char body[64];
    int n = ssm_size_body(body, sizeof body, c, r);
    if (n < 0)
        return;
    if (session_send(sh->s, SSM_PT_SIZE, (const uint8_t *)body, (size_t)n) == SSM_CHAN_EFULL) {
        sh->size_dirty = true; /* coalesced: re-read the size when space returns */
        return;
    }
    sh->cols = c;
    sh->rows = r;
}

static void flush_pending(shell *sh)
{
    if (sh->sig_len) {
        size_t i = 0;
        for (; i < sh->sig_len; i++)
            if (session_send(sh->s, SSM_PT_OUTPUT, &sh->sig_bytes[i], 1) == SSM_CHAN_EFULL)
                break;
        memmove(sh->sig_bytes, sh->sig_bytes + i, sh->sig_len - i);
        sh->sig_len -= i;
    }
    if (sh->pending_len && !sh->sig_len) {
        int rc = session_send(sh->s, SSM_PT_OUTPUT, sh->pending, sh->pending_len);
        if (rc != SSM_CHAN_EFULL) {
            if (rc < 0)
                LOGE("dropping %zu bytes of input (error %d)", sh->pending_len, rc);
            sh->pending_len = 0;
        }
    }
    if (sh->size_dirty)
        send_size(sh);
}

static void send_input(shell *sh, uint8_t *p, size_t n)
{
    /* Enter in cbreak mode reads as LF; the agent's pty wants CR (§7.1). */
    if (n == 1 && p[0] == '\n')
        p[0] = '\r';
    int rc = session_send(sh->s, SSM_PT_OUTPUT, p, n);
    if (rc == SSM_CHAN_EFULL) {
        memcpy(sh->pending, p, n);
        sh->pending_len = n;
    } else if (rc < 0) {
        LOGE("dropping %zu bytes of input (error %d)", n, rc);
    }
}

static void on_stdin(void *user, const uint8_t *p, size_t n)
{
    shell *sh = user;
    uint8_t out[SSM_STDIN_CHUNK + 1];
    size_t out_len = 0, pos = 0;
    if (n > SSM_STDIN_CHUNK)
        n = SSM_STDIN_CHUNK;
    while (pos < n) {
        size_t used = 0;
        int a = ssm_escape_filter(&sh->esc, p + pos, n - pos, out, &out_len, &used);
        pos += used;
        if (a == SSM_ESC_HELP) {
            ssm_stdout_write_text(ssm_escape_help_text, strlen(ssm_escape_help_text));
        } else if (a == SSM_ESC_DISABLED) {
            ssm_stdout_write_text(ssm_escape_disabled_text, strlen(ssm_escape_disabled_text));
        } else if (a == SSM_ESC_TERMINATE) {
            LOGI("~. typed: terminating the session");
            session_end_terminate(sh->s, 0, NULL);
            return;
        }
    }
    if (out_len)
        send_input(sh, out, out_len);
    update_read_pause(sh);
}

static void eof_check(lws_sorted_usec_list_t *sul)
{
    shell *sh = lws_container_of(sul, shell, sul_eof);
    uint64_t now = session_now_ms();
    /* Neither a reconnect (its budget bounds it) nor acks still coming in
     * for our input count as quiet. */
    uint32_t unacked = session_unacked(sh->s);
    if (!session_connected(sh->s) || unacked < sh->eof_unacked)
        sh->last_activity_ms = now;
    sh->eof_unacked = unacked;
    uint64_t quiet = now - sh->last_activity_ms;
    if ((quiet >= EOF_QUIET_MS && session_send_idle(sh->s) && !sh->delivery_blocked) ||
        quiet >= EOF_MAX_IDLE_MS) {
        session_end(sh->s, 0, sh->eof_text); /* it copies the text before freeing sh */
        return;
    }
    lws_sul_schedule(session_lws_context(sh->s), 0, &sh->sul_eof, eof_check, 100 * LWS_US_PER_MS);
}

static void on_stdin_eof(void *user, int err)
{
    shell *sh = user;
    LOGI("stdin %s; waiting briefly for pending output", err ? "read error" : "EOF");
    /* The official plugin's texts: Go's io.EOF, or its *PathError. */
    char et[128];
    if (err)
        snprintf(sh->eof_text, sizeof sh->eof_text,
                 "Cannot perform start session: read /dev/stdin: %s\n",
                 ssm_go_errno_text(err, et, sizeof et));
    else
        snprintf(sh->eof_text, sizeof sh->eof_text, "Cannot perform start session: EOF\n");
    sh->eof = true;
    sh->last_activity_ms = session_now_ms();
    sh->eof_unacked = session_unacked(sh->s);
    lws_sul_schedule(session_lws_context(sh->s), 0, &sh->sul_eof, eof_check, 100 * LWS_US_PER_MS);
}

static const ssm_stdin_ops stdin_ops = {.on_data = on_stdin, .on_eof = on_stdin_eof};

static void stdout_drained(void *user)
{
    shell *sh = user;
    if (sh->delivery_blocked) {
        sh->delivery_blocked = false;
        session_resume_delivery(sh->s);
    }
}

static int shell_start(ssm_session *s, void **state)
{
    shell *sh = calloc(1, sizeof *sh);
    if (!sh) {
        session_end(s, 0, "Cannot perform start session: out of memory\n");
        return -1;
    }
    sh->s = s;
    *state = sh;
    ssm_escape_init(&sh->esc);
    ssm_term_cbreak();
    ssm_stdout_on_drain(stdout_drained, sh);
    send_size(sh);
    if (ssm_stdin_start(session_lws_vhost(s), &stdin_ops, sh) < 0) {
        session_end(s, 0, "Cannot perform start session: cannot read stdin\n");
        return -1;
    }
    update_read_pause(sh);
    return 0;
}

static int shell_on_payload(void *state, uint32_t pt, const uint8_t *p, size_t n)
{
    shell *sh = state;
    switch (pt) {
    case SSM_PT_HANDSHAKE_REQUEST:
    case SSM_PT_HANDSHAKE_RESPONSE:
    case SSM_PT_HANDSHAKE_COMPLETE:
    case SSM_PT_ENC_CHALLENGE_REQUEST:
    case SSM_PT_ENC_CHALLENGE_RESPONSE:
    case SSM_PT_FLAG:
        return SSM_DELIVER_OK; /* not display data */
    case SSM_PT_EXIT_CODE:
        ssm_exit_code_note(p, n); /* standalone mode's exit status; still shown */
        break;
    default:
        break;
    }
    if (ssm_stdout_write(p, n) < 0) {
        if (n > SSM_STDOUT_RING_DEFAULT) {
            ssm_stdout_write_text(p, n); /* can never fit: write it through */
        } else {
            sh->delivery_blocked = true;
            return SSM_DELIVER_NOT_READY;
        }
    }
    sh->last_activity_ms = session_now_ms();
    if (ssm_stdout_broken()) {
        /* Nobody reads our output any more (the official plugin would die of
         * SIGPIPE here): end quietly. */
        LOGW("stdout is gone; ending the session");
        session_end(sh->s, 0, NULL);
    }
    return SSM_DELIVER_OK;
}

static void shell_on_send_space(void *state)
{
    shell *sh = state;
    flush_pending(sh);
    update_read_pause(sh);
}

static void shell_on_signal(void *state, int signo)
{
    shell *sh = state;
    uint8_t b;
    switch (signo) {
    case SIGINT:
        b = 0x03;
        break;
    case SIGTSTP:
        b = 0x1A;
        break;
    case SIGQUIT:
        b = 0x1C;
        break;
    case SIGWINCH:
        if (!sh->size_dirty)
            send_size(sh);
        return;
    default:
        return;
    }
    if (sh->sig_len || session_send(sh->s, SSM_PT_OUTPUT, &b, 1) == SSM_CHAN_EFULL) {
        if (sh->sig_len < sizeof sh->sig_bytes)
            sh->sig_bytes[sh->sig_len++] = b;
        update_read_pause(sh);
    }
}

static void shell_stop(void *state)
{
    shell *sh = state;
    if (!sh)
        return;
    ssm_stdin_stop();
    ssm_term_restore();
    ssm_stdout_on_drain(NULL, NULL);
    lws_sul_cancel(&sh->sul_eof);
    free(sh);
}

const ssm_handler_ops ssm_shell_handler = {
    .name = "shell",
    .start = shell_start,
    .on_payload = shell_on_payload,
    .on_send_space = shell_on_send_space,
    .on_signal = shell_on_signal,
    .stop = shell_stop,
};
