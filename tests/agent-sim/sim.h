/* Internal state of the agent simulator core (not for behaviours: they use
 * behaviour.h). One process, one lws loop, many sessions. */
#ifndef SIM_H
#define SIM_H

#include <stdint.h>
#include <stdio.h>

#include <libwebsockets.h>
#include <uuid/uuid.h>

#include "behaviour.h"
#include "ssm_msg.h"

/* ---- configuration (command line) ------------------------------------- */

struct sim_config {
    const char *listen;
    int port;
    const char *port_file;
    const char *tls_cert, *tls_key;
    const char *agent_version;
    const char *record;
    uint64_t seed;
    int handshake_shell;
    uint32_t handshake_timeout_ms; /* 15000 like the agent */
    uint32_t start_delay_ms;       /* behaviour "not ready" this long (pty creation time) */
    /* faults */
    double drop, dup, reorder, drop_in, malformed;
    uint32_t withhold_acks_ms;
    uint32_t pause_publication_ms;
    uint32_t cut_after_msgs, cut_count;
    uint32_t cut_after_client_msgs; /* cut while the client uploads */
    int cut_mode_close;             /* 0: TCP RST (SO_LINGER 0), 1: websocket close 1001 */
    uint32_t start_fail_after; /* StartSession calls past the first N: 400 ThrottlingException */
    uint32_t stall_reads_ms;   /* stop reading the websocket this long at the first client data */
    /* ResumeSession faults */
    uint32_t resume_fail_count; /* first N calls: 403 AccessDeniedException */
    uint32_t resume_fail_ms;    /* every call fails for T ms after the first cut */
    int resume_empty_token;     /* TokenValue "" */
    int resume_new_cell;        /* new cell-number per resume; older URLs refused */
    int require_sigv4;          /* refuse unsigned / badly signed API calls and upgrades */
    const char *ecs_auth;       /* expected container-credentials Authorization, NULL = any */
    const char *sso_token;      /* expected SSO bearer token, NULL = any non-empty */
    uint32_t smux_ka_interval_ms; /* smux NOP interval (10000) for old clients */
    uint32_t smux_ka_timeout_ms;  /* smux dead-session check (30000) */
    const char *kms_key_id;     /* KMSEncryption requested with this KMSKeyId */
    int kms_challenge;          /* ...and a RandomChallenge (agent >= 3.3.808.0) */
    const char *kms_valid[8];   /* keys the fake KMS knows (default: kms_key_id) */
    int kms_valid_count;
    uint32_t close_after_ms;
    const char *close_output;
};
extern struct sim_config g_cfg;
extern int g_listen_port;
extern struct lws_context *g_ctx;
extern struct lws_vhost *g_vhost;
extern uint64_t g_first_cut_ms; /* sim_now_ms() of the first cut, 0 = none yet */

/* ---- sizes -------------------------------------------------------------- */

#define SIM_OUT_WINDOW 256   /* unacked agent messages before sim_send says FULL */
#define SIM_IN_MAX_MSGS 100000        /* early client messages kept (the agent's limit) */
#define SIM_IN_MAX_BYTES (16u << 20) /* ...and their payload bytes (a memory guard) */
#define SIM_FRAME_MAX 4096   /* largest encoded ClientMessage we build or keep */
#define SIM_TX_SLOTS 512     /* per-connection websocket write ring */
#define SIM_TX_RESERVE 64    /* free slots below which client reads pause */
#define SIM_TX_DATA_MAX (SIM_TX_SLOTS - 2 * SIM_TX_RESERVE) /* data beyond this is deferred */
#define SIM_RX_MAX 65536     /* largest websocket message accepted */
#define SIM_MAX_SESSIONS 64
#define SIM_MAX_TIMERS 16
#define SIM_MAX_FDS 8

/* ---- sessions ----------------------------------------------------------- */

enum sim_state {
    ST_WAIT_CONNECT = 0, /* StartSession done, no data channel yet */
    ST_HANDSHAKE,        /* HandshakeRequest sent, waiting for the response */
    ST_RUNNING,          /* behaviour started */
    ST_ENDING,           /* draining acks before channel_closed */
    ST_CLOSED,
};

struct sim_conn;

struct sim_out_entry {
    int64_t seq;
    uint64_t sent_ms; /* 0 = never transmitted */
    uint32_t resends;
    int deferred; /* not put on the wire yet: the write ring was full */
    size_t len;
    uint8_t buf[SIM_FRAME_MAX];
};

struct sim_in_entry {
    struct sim_in_entry *next; /* hash chain (inbuf.c) */
    int need_ack;              /* held while not ready: ack once processed */
    uint8_t id[16];
    int64_t seq;
    uint32_t ptype;
    size_t len;
    uint8_t buf[]; /* len bytes */
};
struct sim_inbuf;

struct sim_timer {
    lws_sorted_usec_list_t sul; /* first: the callback casts back */
    sim_session *s;
    sim_timer_cb cb;
    void *user;
    int used;
};

struct sim_fdw {
    struct lws *wsi;
    sim_session *s;
    int fd;
    sim_fd_cb cb;
    void *user;
};

struct sim_session {
    int used;
    char id[64];
    char token[96];
    char cell[40]; /* cell-number of the current StreamUrl */
    char target[128];
    char doc[128];
    cJSON *params;
    enum sim_state state;
    struct sim_conn *conn; /* current websocket or NULL */
    uint64_t connect_ms;   /* first data-channel attach */
    int reads_stalled;     /* --stall-reads-ms done (once per session) */
    uint32_t connects;

    /* agent -> client reliable sender */
    int64_t next_seq;
    struct sim_out_entry *out; /* ring of SIM_OUT_WINDOW */
    size_t out_head, out_count;
    double rtt_ms, rttvar_ms, rto_ms;
    int want_writable;
    int deferred; /* some out entries wait for ring room (keep their order) */
    int64_t held_seq; /* --reorder: held back, -1 = none */
    uint64_t held_ms;

    /* client -> agent receiver */
    int64_t expected;
    struct sim_inbuf *in; /* early client messages (inbuf.c), NULL until needed */

    /* handshake */
    const sim_behaviour *beh;
    void *beh_state;
    int beh_started;
    uint64_t hs_start_ms;
    int hs_request_acked;
    char client_version[64];
    int separate_output_warned;
    struct sim_kms *kms; /* kms_agent.c, NULL unless KMSEncryption was requested */

    /* end */
    char end_output[3840]; /* channel_closed Output: as long as a SIM_FRAME_MAX frame allows */
    uint64_t end_deadline_ms;
    uint32_t cuts_done;

    lws_sorted_usec_list_t tick;
    struct sim_timer timers[SIM_MAX_TIMERS];
    struct sim_fdw fds[SIM_MAX_FDS];
};

/* ---- websocket connection (lws per-session data) ------------------------ */

struct sim_tx_slot {
    size_t len;
    int is_text;
    uint8_t buf[LWS_PRE + SIM_FRAME_MAX];
};

struct sim_conn {
    struct lws *wsi;
    int is_ws;
    /* http */
    char amz_target[128];
    char http_uri[128];
    char *body;
    size_t body_len;
    int body_overflow;
    /* websocket */
    char sid[64];
    sim_session *s;
    int opened; /* OpenDataChannel accepted */
    uint8_t *rx;
    size_t rx_len;
    int rx_overflow;
    struct sim_tx_slot *tx; /* ring of SIM_TX_SLOTS */
    size_t tx_head, tx_count;
    uint32_t msgs_sent;
    uint32_t msgs_recv; /* client input_stream_data on this websocket */
    int rx_paused;         /* lws_rx_flow_control off: ring nearly full */
    int cut_after_flush;   /* --cut-after-msgs: abort once the ring drains */
    int close_after_flush; /* polite close once the ring drains */
    char close_reason[128];
};

/* sessions.c */
sim_session *sim_session_new(const char *target, const char *doc, const cJSON *params);
sim_session *sim_session_get(const char *id);
void sim_session_new_token(sim_session *s);
void sim_sessions_stop_all(void); /* behaviours closed, timers cancelled */
void sim_sessions_free_all(void);

/* datachan.c */
int sim_datachan_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len);
void sim_conn_attach(struct sim_conn *c, sim_session *s);
void sim_conn_detach(struct sim_conn *c);
int sim_conn_queue(struct sim_conn *c, const uint8_t *p, size_t n, int is_text);
/* A position in the ring; sim_conn_queue_at puts a frame there, ahead of what
 * was queued after the mark (an ack goes out before what its input caused). */
size_t sim_conn_mark(const struct sim_conn *c);
int sim_conn_queue_at(struct sim_conn *c, size_t mark, const uint8_t *p, size_t n, int is_text);
size_t sim_conn_room(const struct sim_conn *c);
void sim_conn_close(struct sim_conn *c, const char *reason);
void sim_conn_cut(struct sim_conn *c, const char *why); /* fault: ends once the ring drains */
/* 0 when the upgrade may proceed, else a reason (FILTER_PROTOCOL_CONNECTION). */
const char *sim_ws_filter(struct lws *wsi);
const char *sim_ws_authorize(struct lws *wsi); /* NULL = allowed (sigv4_hooks.c) */

/* inbuf.c */
struct sim_in_entry *sim_inbuf_find(sim_session *s, int64_t seq);
int sim_inbuf_put(sim_session *s, const ssm_msg *m, int need_ack); /* -1 = full */
void sim_inbuf_remove(sim_session *s, int64_t seq);
void sim_inbuf_free(sim_session *s);

/* reliable.c */
void sim_rel_init(sim_session *s);
int sim_rel_send(sim_session *s, uint32_t ptype, const uint8_t *p, size_t n);
void sim_rel_on_ack(sim_session *s, const uint8_t *payload, size_t n);
void sim_rel_on_input(sim_session *s, const ssm_msg *m);
void sim_rel_tick(sim_session *s);
void sim_rel_reconnected(sim_session *s);
void sim_rel_flush_deferred(sim_session *s); /* ring has room again */
size_t sim_rel_unacked(sim_session *s);
int sim_send_control(sim_session *s, const char *type, uint32_t ptype, const uint8_t *p, size_t n,
                     uint64_t flags);

/* handshake.c */
void sim_handshake_begin(sim_session *s);
int sim_handshake_on_input(sim_session *s, uint32_t ptype, const uint8_t *p, size_t n);
void sim_handshake_check_timeout(sim_session *s);
void sim_behaviour_start(sim_session *s);

/* session lifecycle (services.c) */
void sim_session_tick_end(sim_session *s);
void sim_session_send_closed(sim_session *s);
void sim_session_terminate(sim_session *s); /* TerminateSession: no drain */
void sim_sessions_stop(sim_session *s);

int sim_fd_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
/* api.c */
int sim_api_handle(struct sim_conn *c, struct lws *wsi);
int sim_api_respond(struct lws *wsi, int status, const char *body);
int sim_http_respond(struct lws *wsi, int status, const char *ctype, const char *body);

/* creds_endpoints.c: 1 when the request was a credential endpoint's (*rc set). */
int sim_creds_http(struct lws *wsi, const char *method, const char *uri, int *rc);
int sim_creds_post(struct lws *wsi, const char *uri, const char *body, size_t n, int *rc);

/* faults.c */
uint64_t sim_rand(void);
int sim_chance(double p);
void sim_rand_seed(uint64_t seed);
void sim_random_bytes(uint8_t *p, size_t n); /* real randomness (ids, tokens) */
size_t sim_fault_malformed(const uint8_t *real, size_t len, uint8_t *out, size_t cap,
                           const char **kind);

/* record.c */
int sim_record_open(const char *path);
void sim_record_close(void);
void sim_record_global(const char *event, cJSON *fields);

uint64_t sim_wall_ms(void);

#endif
