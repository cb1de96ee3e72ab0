/* The session: wires the transport (websocket) to the data channel engine and
 * the channel to one session-type handler (shell, or a port mode). Owns the
 * one libwebsockets event loop of the process.
 *
 * Data flows one way: socket -> transport -> ssm_chan -> session (handshake,
 * decryption, dispatch) -> handler -> local fd; and back: local fd -> handler
 * -> session_send() (encryption) -> ssm_chan -> transport -> socket. Handlers
 * never touch the channel or the websocket directly. */
#ifndef SSM_SESSION_H
#define SSM_SESSION_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ssm_handshake.h"

struct lws_context;
struct lws_vhost;
typedef struct ssm_session ssm_session;

/* ---- What handlers may call ---- */

/* Queue one payload for the agent (Output payloads are encrypted when KMS is
 * on). Returns 0, or SSM_CHAN_EFULL when the send window is full: the handler
 * stops reading its local source until on_send_space(). */
int session_send(ssm_session *s, uint32_t payload_type, const uint8_t *p, size_t n);
/* Largest plaintext payload session_send() accepts right now (0: stop reading). */
size_t session_send_space(const ssm_session *s);
/* Messages queued ahead of anything sent now, not handed to the socket yet
 * (pacing, a full socket, a reconnect). */
size_t session_send_backlog(const ssm_session *s);
/* One on_send_space() call once that backlog is empty. */
void session_notify_when_sent(ssm_session *s);
/* True while the websocket is open (false while (re)connecting). */
bool session_connected(const ssm_session *s);
/* True when everything sent so far has been acknowledged by the agent. */
bool session_send_idle(const ssm_session *s);
/* Messages sent and not yet acknowledged (falling = the agent is working). */
uint32_t session_unacked(const ssm_session *s);
/* The handler can take payloads again after returning SSM_DELIVER_NOT_READY. */
void session_resume_delivery(ssm_session *s);

struct lws_context *session_lws_context(ssm_session *s);
struct lws_vhost *session_lws_vhost(ssm_session *s);
const char *session_id(const ssm_session *s);
/* The parsed HandshakeRequest (agent version, port properties); for the legacy
 * no-handshake shell path a request with kind SHELL and empty fields. */
const ssm_hs_request *session_handshake(const ssm_session *s);

/* User-visible text to stdout, written in order with payload output. */
void session_print(ssm_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Finish: run the handler's stop, restore everything, leave the loop, exit
 * with code. message (may be NULL) is printed to stdout first. */
void session_end(ssm_session *s, int exit_code, const char *message);
/* Ask the service to end the session (TerminateSession API, best effort). */
void session_terminate_api(ssm_session *s);
/* Milliseconds of a monotonic clock (the one every protocol call gets). */
uint64_t session_now_ms(void);
/* session_terminate_api(), then session_end() once it answered (or after at
 * most ~2 s). For ~. and SIGTERM/SIGHUP. */
void session_end_terminate(ssm_session *s, int exit_code, const char *message);

/* ---- What main() calls ---- */

struct ssm_cli_args;
/* Runs the whole session on one libwebsockets loop: connect (with retries),
 * handshake, the handler, reconnects. Prints every user-visible text and
 * returns the process exit code (0 for every normal end, PROTOCOL.md §1.5). */
int ssm_session_run(const struct ssm_cli_args *args);
/* Several sessions on the one loop (standalone --forward), each its own SSM
 * session; one failing leaves the others running. Returns once all ended:
 * the first nonzero exit code in argument order, else 0. */
int ssm_sessions_run(const struct ssm_cli_args *const *args, size_t n);

/* Handlers that need their own lws protocols (listeners, sockets) create
 * their own vhost on session_lws_context(); session_lws_vhost() only carries
 * the session's stdio and signal protocols. stdout is shared: write it only
 * through stdio_fd.h (ssm_stdout_write) or session_print, never directly. */

/* ---- What a handler provides ---- */

typedef struct ssm_handler_ops {
    const char *name;
    /* The session type is known (HandshakeComplete processed, or the legacy
     * first Output). Set up local I/O; return 0 or -1 with a message printed
     * through session_end(). */
    int (*start)(ssm_session *s, void **state);
    /* An in-order, decrypted payload. Return SSM_DELIVER_OK or
     * SSM_DELIVER_NOT_READY (backpressure: call session_resume_delivery()
     * once room frees). */
    int (*on_payload)(void *state, uint32_t payload_type, const uint8_t *p, size_t n);
    /* The send window reopened: resume reading local sources. */
    void (*on_send_space)(void *state);
    /* SIGINT/SIGQUIT/SIGTSTP/SIGWINCH (delivered on the loop, never in a
     * signal handler). NULL: the session does not catch these signals at all
     * (their inherited disposition stays, e.g. standard-stream port mode). */
    void (*on_signal)(void *state, int signo);
    /* Undo everything (terminal modes, sockets, unix socket files). Must be
     * safe to call at any point after start. */
    void (*stop)(void *state);
} ssm_handler_ops;

extern const ssm_handler_ops ssm_shell_handler;
extern const ssm_handler_ops ssm_port_mux_handler;
extern const ssm_handler_ops ssm_port_basic_handler;
extern const ssm_handler_ops ssm_port_stdio_handler;

#endif
