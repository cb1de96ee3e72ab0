/* Local side of the port handlers: the listening socket (TCP on 127.0.0.1
 * or a unix path) and accepted connections, all as raw fds on the session's
 * lws loop (raw-file adoption: we do the read()/write()/accept() calls, lws
 * only polls, so pausing a direction is exact). */
#ifndef SSM_PORT_LISTEN_H
#define SSM_PORT_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ssm_handshake.h"

typedef struct ssm_session ssm_session;
typedef struct port_fd port_fd;

enum port_fd_event {
    PORT_FD_READABLE = 1,
    PORT_FD_WRITABLE = 2,
    PORT_FD_HUP = 3, /* lws saw a hangup without data; the fd is gone after this */
};

typedef void (*port_fd_cb)(void *user, port_fd *f, int event);

/* Adopts fd (made non-blocking) into the loop. On failure closes fd and
 * returns NULL. */
port_fd *port_fd_adopt(ssm_session *s, int fd, port_fd_cb cb, void *user);
int port_fd_fd(const port_fd *f);
/* Pauses/resumes PORT_FD_READABLE events (idempotent). */
void port_fd_read_enable(port_fd *f, bool on);
/* One PORT_FD_WRITABLE event when the fd can take data. */
void port_fd_want_write(port_fd *f);
/* Closes the fd now; no callback fires for f afterwards. */
void port_fd_close(port_fd *f);

/* Payload-size limit of local reads (the official plugin reads 1024). */
#define PORT_READ_CHUNK 1024u

typedef struct port_listener port_listener;

/* A TCP listen address: an IPv4 or IPv6 literal ("[::1]" too) or
 * "localhost" (127.0.0.1). SSM_PLUGIN_LISTEN_ADDRESS picks it; the default
 * is 127.0.0.1. */
typedef struct port_listen_addr {
    int family;              /* AF_INET or AF_INET6 */
    unsigned char addr[16];  /* network order */
    char text[46];           /* canonical text: "127.0.0.2", "::1" */
} port_listen_addr;
/* Returns 0 (and *out when out is non-NULL) or -1 when text is not one of
 * those forms. */
int port_listen_parse_address(const char *text, port_listen_addr *out);

/* The ready signal: writes line plus "\n" to SSM_PLUGIN_READY_FILE (to a
 * temporary file beside it, then rename, so readers never see half a line)
 * and/or to SSM_PLUGIN_READY_FD (>= 3, closed afterwards), once per process.
 * With several sessions (port_ready_expect(n), default 1) the lines wait
 * until each session has published (sid: one line per session) or ended
 * without (port_ready_session_ended), then go out together. Failures are
 * logged, never fatal. Returns 0, or -1 when a configured target failed. */
void port_ready_expect(unsigned n);
int port_ready_publish(const char *sid, const char *line);
void port_ready_session_ended(const char *sid);
#define PORT_ACCEPT_RETRY_MS 100u
/* A connection was accepted (fd non-blocking, close-on-exec). The callee
 * adopts or closes it. */
typedef void (*port_accept_cb)(void *user, int fd);

/* Opens the local listener per §10.2: localConnectionType "unix" listens on
 * localUnixSocket, else TCP <listen address>:<localPortNumber or 0>, then
 * publishes the ready signal. On failure
 * returns NULL and writes a reason ("listen tcp 127.0.0.1:80: bind: address
 * already in use") to err. max_per_event bounds accepts per wake-up. */
port_listener *port_listen_open(ssm_session *s, const ssm_port_props *props, port_accept_cb cb,
                                void *user, unsigned max_per_event, char *err, size_t errlen);
/* "Port 53117 opened for sessionId <sid>." / "Unix socket <p> opened for sessionId <sid>." */
void port_listen_opened_text(const port_listener *l, const char *sid, char *buf, size_t cap);
/* Stop/start accepting (basic mode accepts one connection at a time). */
void port_listen_pause(port_listener *l, bool paused);
/* Closes the listener and unlinks the unix socket it created. */
void port_listen_close(port_listener *l);

/* Milliseconds timer on the session loop (a thin lws_sul wrapper). */
typedef struct port_timer port_timer;
typedef void (*port_timer_cb)(void *user);
port_timer *port_timer_new(ssm_session *s, port_timer_cb cb, void *user);
void port_timer_arm(port_timer *t, uint64_t ms);
void port_timer_cancel(port_timer *t);
void port_timer_free(port_timer *t);

/* The SIGINT/SIGTSTP/SIGQUIT text of §12.2. */
#define PORT_TEXT_TERMINATE "Terminate signal received, exiting.\n"
/* After queueing the TerminateSession flag a port mode polls every
 * PORT_EXIT_POLL_MS until everything sent is acknowledged, at most
 * PORT_EXIT_WAIT_MS, then exits (the official plugin waits for nothing). */
#define PORT_EXIT_POLL_MS 10u
#define PORT_EXIT_WAIT_MS 1000u
/* True when the handler may exit now: all acked, or waited long enough. */
bool port_exit_ready(ssm_session *s, uint64_t since_ms);
/* Ends the session with exit 0 and "\n\nExiting session with sessionId: <sid>.\n\n". */
void port_end_with_exit_text(ssm_session *s);
/* A handler's start() failed: frees its state with stop (the session does not
 * call stop for a handler that never started), clears *state, ends the
 * session with "Cannot perform start session: <why>\n"; returns -1. */
int port_start_failed(ssm_session *s, void **state, void (*stop)(void *), const char *why);
/* Sends the TerminateSession flag (PayloadType 10, value 2); errors ignored. */
void port_send_flag(ssm_session *s, uint32_t flag);

#endif
