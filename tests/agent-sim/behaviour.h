/* The interface a simulated agent session behaviour implements (shell, echo,
 * command, port...), and the services the simulator core offers it.
 *
 * Life of a behaviour instance (one per session):
 *   start()     after the handshake completed, or at once on the legacy
 *               (no-handshake) path, once a client has connected;
 *   on_input()  for every in-order client input_stream_data payload (never
 *               acks, never handshake payloads, never duplicates);
 *   on_writable() when the reliable sender has room again after
 *               sim_send() returned SIM_SEND_FULL;
 *   on_close()  exactly once when the session ends (any reason); free state.
 * All callbacks run on the single simulator thread (the lws service loop). */
#ifndef SIM_BEHAVIOUR_H
#define SIM_BEHAVIOUR_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct lws_context;
struct lws_vhost;
typedef struct sim_session sim_session;

/* on_input() results. */
enum sim_input_result {
    SIM_INPUT_OK = 0,        /* consumed: the core acks it */
    SIM_INPUT_NOT_READY = 1, /* not acked, not consumed: the client retransmits */
    SIM_INPUT_ERROR = 2,     /* not acked; the behaviour should end the session */
};

/* When the core runs the §8 handshake before start(). */
enum sim_handshake_mode {
    SIM_HANDSHAKE_ALWAYS = 0,  /* Port, NonInteractiveCommands */
    SIM_HANDSHAKE_IF_FLAG = 1, /* shell family: only with --handshake-shell */
};

typedef struct sim_behaviour {
    const char *name;          /* for logs and records, e.g. "port" */
    const char *session_type;  /* "Standard_Stream", "InteractiveCommands", "NonInteractiveCommands", "Port" */
    const char *const *documents; /* NULL-terminated DocumentNames this serves */
    enum sim_handshake_mode handshake;
    /* Optional: the SessionType "Properties" object for the HandshakeRequest
     * (ownership passes to the core). NULL or returning NULL sends null. */
    cJSON *(*handshake_properties)(sim_session *s);
    /* Required. Returns 0, or -1 (the core ends the session with an error text
     * set by sim_session_end or a generic one). *state is handed back below. */
    int (*start)(sim_session *s, void **state);
    /* Required. payload_type is enum ssm_payload_type (Output, Size, Flag...). */
    enum sim_input_result (*on_input)(sim_session *s, void *state, uint32_t payload_type,
                                      const uint8_t *payload, size_t len);
    void (*on_writable)(sim_session *s, void *state); /* optional */
    void (*on_close)(sim_session *s, void *state);    /* optional */
} sim_behaviour;

/* ---- registry --------------------------------------------------------- */

/* Registers a behaviour; later registrations for the same document win.
 * Call from a constructor, e.g. SIM_REGISTER_BEHAVIOUR(my_behaviour); */
void sim_behaviour_register(const sim_behaviour *b);
/* Behaviour serving this DocumentName (NULL/"" = the default shell), or NULL. */
const sim_behaviour *sim_behaviour_find(const char *document);

#define SIM_REGISTER_BEHAVIOUR(b)                                                   \
    __attribute__((constructor)) static void sim_register_##b(void)                 \
    {                                                                               \
        sim_behaviour_register(&(b));                                               \
    }

/* ---- services --------------------------------------------------------- */

/* sim_send() results. */
enum sim_send_result {
    SIM_SEND_OK = 0,
    SIM_SEND_FULL = 1,  /* window full, nothing queued: wait for on_writable() */
    SIM_SEND_ERROR = -1, /* session ending or bad argument */
};

/* Largest payload one sim_send() accepts (the agent reads 1024-byte chunks). */
#define SIM_MAX_PAYLOAD 1024u

/* Queues one output_stream_data (payload_type Output, StdErr, ExitCode, Flag,
 * ...) on the reliable sender: sequenced, SYN on seq 0, retransmitted until
 * acked. Empty payloads are refused (the agent never sends them). */
int sim_send(sim_session *s, uint32_t payload_type, const uint8_t *p, size_t n);
/* Convenience: 4-byte big-endian flag payload. */
int sim_send_flag(sim_session *s, uint32_t flag);
/* How many more messages sim_send() will accept right now (0 = full). */
size_t sim_send_room(sim_session *s);
/* Ask for on_writable() once room is available again. */
void sim_want_writable(sim_session *s);

/* Ends the session the way the agent + MGS do: wait (<= 2 s) for outstanding
 * acks, then send channel_closed with this Output text ("" = normal end) and
 * close. Safe to call more than once (first call wins) and from callbacks. */
void sim_session_end(sim_session *s, const char *output);

/* Event loop access, e.g. to lws_adopt_descriptor_vhost() a socket. */
struct lws_context *sim_lws_context(sim_session *s);
struct lws_vhost *sim_lws_vhost(sim_session *s);

/* Simpler fd watching on the same loop (raw-file adoption under the hood).
 * cb is called with the revents that fired (POLLIN/POLLOUT/POLLHUP...). The
 * core never closes fd; call sim_fd_unwatch before closing it. */
typedef void (*sim_fd_cb)(sim_session *s, void *user, int fd, int revents);
int sim_fd_watch(sim_session *s, int fd, int want_pollout, sim_fd_cb cb, void *user);
void sim_fd_want_pollout(sim_session *s, int fd, int on);
void sim_fd_pause_read(sim_session *s, int fd, int paused); /* backpressure */
void sim_fd_unwatch(sim_session *s, int fd);

/* One-shot timer on the loop; cancelled automatically when the session ends.
 * Returns a handle >= 0 for sim_timer_cancel, or -1. */
typedef void (*sim_timer_cb)(sim_session *s, void *user);
int sim_timer_after(sim_session *s, uint32_t ms, sim_timer_cb cb, void *user);
void sim_timer_cancel(sim_session *s, int handle);

/* StartSession parameters. */
const char *sim_session_id(sim_session *s);
const char *sim_session_target(sim_session *s);
const char *sim_document_name(sim_session *s); /* "" when absent */
/* The Parameters object: {"name":["v1",...],...} (may be NULL). Borrowed. */
const cJSON *sim_parameters(sim_session *s);
/* First value of Parameters[name], or def when absent/not a string. */
const char *sim_param(sim_session *s, const char *name, const char *def);

/* Versions: --agent-version, and the ClientVersion from the
 * HandshakeResponse ("" before/without a handshake). */
const char *sim_agent_version(sim_session *s);
const char *sim_client_version(sim_session *s);

/* Appends one JSON line to the --record file: {"t_ms":..,"session":..,
 * "event":event, ...fields}. Takes ownership of fields (may be NULL). */
void sim_record(sim_session *s, const char *event, cJSON *fields);

/* Milliseconds, monotonic. */
uint64_t sim_now_ms(void);

#endif
