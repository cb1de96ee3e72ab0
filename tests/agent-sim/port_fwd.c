/* Simulated agent port sessions (PROTOCOL.md §10.2-10.5, §12):
 *  - AWS-StartPortForwardingSession / ...ToRemoteHost: mux mode (smux server,
 *    one destination dial per stream, ConnectToPortError + FIN when the dial
 *    fails) when agent > 3.0.196.0 and client >= 1.1.70, else basic mode (one
 *    destination connection, closed on DisconnectToPort, re-dialled on the
 *    next data);
 *  - AWS-StartSSHSession: standard-stream mode (one destination connection
 *    dialled at start; its EOF ends the session).
 * TerminateSession (flag 2) ends the session in every mode.
 * Destination = Parameters host (default localhost) : portNumber. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "behaviour.h"
#include "port_io.h"
#include "sim.h"
#include "smux_server.h"
#include "ssm_msg.h"
#include "ssm_version.h"

#define SIM_OUT_WINDOW_MSGS 256u /* sim_send_room() when nothing is unacked */
#define OUT_HWM (256u * 1024u)     /* bytes queued for the client before dest reads pause */
#define DEST_HWM (256u * 1024u)    /* bytes queued for a destination before input is refused */
#define DEST_READ 16384u
/* Unacked messages kept in flight: well under the core's websocket write ring
 * (which drops on overflow) even with an ack queued for every client message. */
#define PUMP_MAX_INFLIGHT 128u

enum pf_mode { PF_MUX, PF_BASIC, PF_STDIO };

typedef struct pstream {
    struct pf *pf;
    uint32_t sid;
    pio *io;
    pq to_dest;
    int client_fin; /* close once to_dest drained */
    struct pstream *next;
} pstream;

typedef struct pf {
    sim_session *s;
    enum pf_mode mode;
    smuxs srv;
    pq out;           /* bytes for the client (smux frames, or raw) */
    pstream *streams; /* mux */
    pstream single;   /* basic / stdio destination */
    int dest_eof_end; /* stdio: end the session once out drained */
    int reads_paused;
    int ka_timer, ka_check_timer;
    uint64_t frames_at_check;
    int ending;
} pf;

static const char *dest_host(pf *p) { return sim_param(p->s, "host", "localhost"); }
static const char *dest_port(pf *p) { return sim_param(p->s, "portNumber", "80"); }

static void record_sid(pf *p, const char *ev, uint32_t sid)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "sid", sid);
    sim_record(p->s, ev, f);
}

static void stream_set_reading(pstream *st, int on)
{
    if (st->io)
        pio_read_enable(st->io, on);
}

static void set_reads(pf *p, int on)
{
    p->reads_paused = !on;
    if (p->mode == PF_MUX)
        for (pstream *st = p->streams; st; st = st->next)
            stream_set_reading(st, on);
    else
        stream_set_reading(&p->single, on);
}

/* Sends queued client-bound bytes in <= 1024-byte Output payloads. */
static void pump(pf *p)
{
    while (p->out.len > 0 && !p->ending) {
        if (sim_send_room(p->s) + PUMP_MAX_INFLIGHT <= SIM_OUT_WINDOW_MSGS) {
            sim_want_writable(p->s); /* on_writable comes with the next ack */
            break;
        }
        size_t k = p->out.len < SIM_MAX_PAYLOAD ? p->out.len : SIM_MAX_PAYLOAD;
        int rc = sim_send(p->s, SSM_PT_OUTPUT, p->out.p + p->out.off, k);
        if (rc == SIM_SEND_FULL) {
            sim_want_writable(p->s);
            break;
        }
        if (rc != SIM_SEND_OK)
            return;
        pq_consume(&p->out, k);
    }
    if (p->reads_paused && p->out.len < OUT_HWM / 2)
        set_reads(p, 1);
    if (p->dest_eof_end && p->out.len == 0 && !p->ending) {
        p->ending = 1;
        sim_session_end(p->s, "");
    }
}

/* ---- destination sockets -------------------------------------------------- */

static void stream_unlink(pf *p, pstream *st)
{
    for (pstream **pp = &p->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
}

/* Full close of a mux stream: destination closed, FIN to the client once. */
static void stream_close(pstream *st)
{
    pf *p = st->pf;
    pio_close(st->io);
    st->io = NULL;
    if (p->mode == PF_MUX) {
        smuxs_put(&p->out, SMUXS_FIN, st->sid, NULL, 0);
        record_sid(p, "port_stream_closed", st->sid);
        stream_unlink(p, st);
        pq_free(&st->to_dest);
        free(st);
    } else {
        pq_free(&st->to_dest);
        st->client_fin = 0;
        if (p->mode == PF_STDIO)
            p->dest_eof_end = 1;
    }
    pump(p);
}

static void dest_write(pstream *st)
{
    while (st->to_dest.len > 0) {
        ssize_t w = send(pio_fd(st->io), st->to_dest.p + st->to_dest.off, st->to_dest.len,
                         MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pio_want_write(st->io);
                return;
            }
            stream_close(st);
            return;
        }
        pq_consume(&st->to_dest, (size_t)w);
    }
    if (st->client_fin)
        stream_close(st);
}

static void dest_read(pstream *st)
{
    pf *p = st->pf;
    if (p->out.len >= OUT_HWM) {
        set_reads(p, 0);
        return;
    }
    uint8_t buf[DEST_READ];
    ssize_t r = recv(pio_fd(st->io), buf, sizeof(buf), 0);
    if (r > 0) {
        if (p->mode == PF_MUX)
            smuxs_put(&p->out, SMUXS_PSH, st->sid, buf, (size_t)r);
        else
            pq_append(&p->out, buf, (size_t)r);
        pump(p);
        return;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    stream_close(st);
}

static void dest_event(void *user, pio *io, int ev)
{
    pstream *st = user;
    (void)io;
    if (ev == PIO_IN)
        dest_read(st);
    else if (ev == PIO_OUT)
        dest_write(st);
    else
        stream_close(st); /* lws closed the fd; pio_close() only frees */
}

static int stream_dial(pstream *st)
{
    pf *p = st->pf;
    int fd = pio_dial(dest_host(p), dest_port(p));
    if (fd < 0)
        return -1;
    st->io = pio_adopt(p->s, fd, dest_event, st);
    if (!st->io)
        return -1;
    if (p->reads_paused)
        pio_read_enable(st->io, 0);
    return 0;
}

/* ---- smux server callbacks (mux mode) ------------------------------------- */

static pstream *find_stream(pf *p, uint32_t sid)
{
    for (pstream *st = p->streams; st; st = st->next)
        if (st->sid == sid)
            return st;
    return NULL;
}

static void on_syn(void *user, uint32_t sid)
{
    pf *p = user;
    if (find_stream(p, sid))
        return; /* SYN for an existing id is ignored */
    pstream *st = calloc(1, sizeof(*st));
    if (!st)
        return;
    st->pf = p;
    st->sid = sid;
    st->next = p->streams;
    p->streams = st;
    record_sid(p, "port_stream_open", sid);
    if (stream_dial(st) != 0) {
        record_sid(p, "port_dial_failed", sid);
        sim_send_flag(p->s, SSM_FLAG_CONNECT_TO_PORT_ERROR);
        stream_close(st);
    }
}

static void on_data(void *user, uint32_t sid, const uint8_t *d, size_t n)
{
    pf *p = user;
    pstream *st = find_stream(p, sid);
    if (!st || !st->io)
        return; /* unknown or closed stream: discarded */
    pq_append(&st->to_dest, d, n);
    dest_write(st);
}

static void on_fin(void *user, uint32_t sid)
{
    pf *p = user;
    pstream *st = find_stream(p, sid);
    if (!st)
        return;
    st->client_fin = 1;
    if (st->to_dest.len == 0)
        stream_close(st);
}

/* ---- keepalive (agent side: only for clients <= 1.2.331.0) ----------------- */

static void ka_fire(sim_session *s, void *user)
{
    pf *p = user;
    (void)s;
    smuxs_put(&p->out, SMUXS_NOP, 0, NULL, 0);
    pump(p);
    p->ka_timer = sim_timer_after(p->s, g_cfg.smux_ka_interval_ms, ka_fire, p);
}

/* smux's dead-session check: no frame at all from the client in 30 s closes
 * the smux session, which ends the agent's port session. */
static void ka_check(sim_session *s, void *user)
{
    pf *p = user;
    (void)s;
    p->ka_check_timer = -1;
    if (p->ending)
        return;
    if (p->srv.frames_in == p->frames_at_check) {
        sim_record(p->s, "port_smux_timeout", NULL);
        p->ending = 1;
        sim_session_end(p->s, "");
        return;
    }
    p->frames_at_check = p->srv.frames_in;
    p->ka_check_timer = sim_timer_after(p->s, g_cfg.smux_ka_timeout_ms, ka_check, p);
}

/* ---- behaviour ------------------------------------------------------------ */

static cJSON *pf_properties(sim_session *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "portNumber", sim_param(s, "portNumber", "80"));
    cJSON_AddStringToObject(o, "type", "LocalPortForwarding");
    cJSON_AddStringToObject(o, "localPortNumber", sim_param(s, "localPortNumber", "0"));
    const char *host = sim_param(s, "host", NULL);
    if (host)
        cJSON_AddStringToObject(o, "host", host);
    const char *ut = sim_param(s, "localConnectionType", NULL);
    if (ut)
        cJSON_AddStringToObject(o, "localConnectionType", ut);
    const char *us = sim_param(s, "localUnixSocket", NULL);
    if (us)
        cJSON_AddStringToObject(o, "localUnixSocket", us);
    return o;
}

static cJSON *ssh_properties(sim_session *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "portNumber", sim_param(s, "portNumber", "22"));
    return o;
}

static int start_common(sim_session *s, void **state, enum pf_mode mode)
{
    pf *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->s = s;
    p->mode = mode;
    p->ka_timer = -1;
    p->ka_check_timer = -1;
    p->single.pf = p;
    *state = p;
    static const smuxs_ops ops = {.on_syn = on_syn, .on_data = on_data, .on_fin = on_fin};
    smuxs_init(&p->srv, &ops, p);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "mode", mode == PF_MUX ? "mux" : mode == PF_BASIC ? "basic" : "stdio");
    sim_record(s, "port_mode", f);
    /* Agents up to 3.1.1511.0 always send NOPs; newer ones stop for clients
     * newer than 1.2.331.0 (so the service idle timeout works). */
    if (mode == PF_MUX && (ssm_version_cmp(sim_agent_version(s), SSM_AGENT_GATE_SMUX_NO_KEEPALIVE) <= 0 ||
                           ssm_version_cmp(sim_client_version(s), "1.2.331.0") <= 0)) {
        p->ka_timer = sim_timer_after(s, g_cfg.smux_ka_interval_ms, ka_fire, p);
        p->ka_check_timer = sim_timer_after(s, g_cfg.smux_ka_timeout_ms, ka_check, p);
    }
    if (mode == PF_STDIO && stream_dial(&p->single) != 0) {
        sim_session_end(s, "Unable to connect to the destination port");
        return 0;
    }
    return 0;
}

static int pf_start(sim_session *s, void **state)
{
    bool mux = ssm_version_cmp(sim_agent_version(s), SSM_AGENT_GATE_SMUX) > 0 &&
               ssm_version_cmp(sim_client_version(s), "1.1.70") >= 0;
    return start_common(s, state, mux ? PF_MUX : PF_BASIC);
}

static int ssh_start(sim_session *s, void **state) { return start_common(s, state, PF_STDIO); }

static bool mux_dest_backlogged(pf *p)
{
    for (pstream *st = p->streams; st; st = st->next)
        if (st->to_dest.len > DEST_HWM)
            return true;
    return false;
}

static enum sim_input_result pf_on_input(sim_session *s, void *state, uint32_t type,
                                         const uint8_t *d, size_t n)
{
    pf *p = state;
    (void)s;
    if (p->ending)
        return SIM_INPUT_OK;
    if (type == SSM_PT_FLAG) {
        uint32_t flag = 0;
        if (ssm_flag_decode(d, n, &flag) != 0)
            return SIM_INPUT_OK;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "flag", flag);
        sim_record(p->s, "port_flag", f);
        if (flag == SSM_FLAG_TERMINATE_SESSION) {
            p->ending = 1;
            sim_session_end(p->s, "");
        } else if (flag == SSM_FLAG_DISCONNECT_TO_PORT && p->mode == PF_BASIC && p->single.io) {
            pio_close(p->single.io);
            p->single.io = NULL;
            pq_free(&p->single.to_dest);
        }
        return SIM_INPUT_OK;
    }
    if (type != SSM_PT_OUTPUT)
        return SIM_INPUT_OK;
    if (p->mode == PF_MUX) {
        if (mux_dest_backlogged(p))
            return SIM_INPUT_NOT_READY;
        uint64_t nops = p->srv.nops_in;
        int rc = smuxs_feed(&p->srv, d, n);
        if (p->srv.nops_in != nops)
            sim_record(p->s, "port_smux_nop", NULL);
        if (rc != 0) {
            sim_record(p->s, "port_smux_error", NULL);
            p->ending = 1;
            sim_session_end(p->s, "smux protocol error");
        }
        pump(p);
        return SIM_INPUT_OK;
    }
    pstream *st = &p->single;
    if (st->to_dest.len > DEST_HWM)
        return SIM_INPUT_NOT_READY;
    if (!st->io) {
        if (p->mode == PF_STDIO)
            return SIM_INPUT_OK; /* destination gone; the session is ending */
        if (stream_dial(st) != 0) { /* basic: re-dial on the next data */
            sim_record(p->s, "port_dial_failed", NULL);
            return SIM_INPUT_OK;
        }
    }
    pq_append(&st->to_dest, d, n);
    dest_write(st);
    return SIM_INPUT_OK;
}

static void pf_on_writable(sim_session *s, void *state)
{
    (void)s;
    pump(state);
}

static void pf_on_close(sim_session *s, void *state)
{
    pf *p = state;
    (void)s;
    if (!p)
        return;
    p->ending = 1;
    while (p->streams) {
        pstream *st = p->streams;
        p->streams = st->next;
        pio_close(st->io);
        pq_free(&st->to_dest);
        free(st);
    }
    pio_close(p->single.io);
    pq_free(&p->single.to_dest);
    if (p->ka_timer >= 0)
        sim_timer_cancel(p->s, p->ka_timer);
    if (p->ka_check_timer >= 0)
        sim_timer_cancel(p->s, p->ka_check_timer);
    smuxs_free(&p->srv);
    pq_free(&p->out);
    free(p);
}

static const char *const pf_docs[] = {"AWS-StartPortForwardingSession",
                                      "AWS-StartPortForwardingSessionToRemoteHost", NULL};
static const char *const ssh_docs[] = {"AWS-StartSSHSession", NULL};

static const sim_behaviour port_forwarding_behaviour = {
    .name = "port",
    .session_type = "Port",
    .documents = pf_docs,
    .handshake = SIM_HANDSHAKE_ALWAYS,
    .handshake_properties = pf_properties,
    .start = pf_start,
    .on_input = pf_on_input,
    .on_writable = pf_on_writable,
    .on_close = pf_on_close,
};
SIM_REGISTER_BEHAVIOUR(port_forwarding_behaviour)

static const sim_behaviour port_ssh_behaviour = {
    .name = "port-stdio",
    .session_type = "Port",
    .documents = ssh_docs,
    .handshake = SIM_HANDSHAKE_ALWAYS,
    .handshake_properties = ssh_properties,
    .start = ssh_start,
    .on_input = pf_on_input,
    .on_writable = pf_on_writable,
    .on_close = pf_on_close,
};
SIM_REGISTER_BEHAVIOUR(port_ssh_behaviour)
