/* Session lifecycle on the loop: data-channel attach (first connect starts the
 * handshake or the behaviour; later ones resume), the 100 ms tick, and the
 * end (drain acks <= 2 s, then channel_closed, as agent + MGS do). */
#include <string.h>
#include <time.h>

#include "kms.h"
#include "sim.h"

#define TICK_MS 100
#define END_DRAIN_MS 2000

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    sim_session *s = lws_container_of(sul, sim_session, tick);
    sim_rel_tick(s);
    sim_handshake_check_timeout(s);
    sim_session_tick_end(s);
    if (s->state != ST_CLOSED || s->conn)
        lws_sul_schedule(g_ctx, 0, &s->tick, tick_cb, TICK_MS * LWS_US_PER_MS);
}

static void kick(sim_session *s)
{
    lws_sul_schedule(g_ctx, 0, &s->tick, tick_cb, TICK_MS * LWS_US_PER_MS);
}

static void fault_resume_pub(sim_session *s, void *user)
{
    (void)user;
    if (sim_send_control(s, SSM_MT_START_PUB, SSM_PT_NONE, NULL, 0, 0) == 0)
        sim_record(s, "fault_start_publication", NULL);
}

static void fault_close(sim_session *s, void *user)
{
    (void)user;
    sim_record(s, "fault_close_after", NULL);
    if (s->state < ST_ENDING) {
        sim_session_end(s, g_cfg.close_output ? g_cfg.close_output : "");
        s->end_deadline_ms = sim_now_ms(); /* MGS closing: no drain */
        sim_session_tick_end(s);
    }
}

static void first_attach(sim_session *s)
{
    s->connect_ms = sim_now_ms();
    s->beh = sim_behaviour_find(s->doc);
    if (s->beh == NULL) {
        sim_session_end(s, "agent-sim: no behaviour for this document");
        return;
    }
    if (g_cfg.pause_publication_ms &&
        sim_send_control(s, SSM_MT_PAUSE_PUB, SSM_PT_NONE, NULL, 0, 0) == 0) {
        sim_record(s, "fault_pause_publication", NULL);
        sim_timer_after(s, g_cfg.pause_publication_ms, fault_resume_pub, NULL);
    }
    if (g_cfg.close_after_ms)
        sim_timer_after(s, g_cfg.close_after_ms, fault_close, NULL);
    if (s->beh->handshake == SIM_HANDSHAKE_ALWAYS || g_cfg.handshake_shell || sim_kms_wanted(s))
        sim_handshake_begin(s);
    else
        sim_behaviour_start(s);
}

void sim_conn_attach(struct sim_conn *c, sim_session *s)
{
    if (s->conn && s->conn != c) {
        struct sim_conn *old = s->conn;
        sim_conn_detach(old);
        sim_conn_close(old, "superseded by a new data channel");
    }
    s->conn = c;
    c->s = s;
    c->opened = 1;
    s->connects++;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "connects", s->connects);
    sim_record(s, "attach", f);
    kick(s);
    if (s->state == ST_CLOSED) {
        sim_session_send_closed(s);
        sim_conn_close(c, "session closed");
        return;
    }
    if (s->state == ST_WAIT_CONNECT)
        first_attach(s);
    else
        sim_rel_reconnected(s);
}

static void format_iso(char *out, size_t cap)
{
    uint64_t ms = sim_wall_ms();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03uZ", base, (unsigned)(ms % 1000));
}

void sim_session_send_closed(sim_session *s)
{
    uuid_t id;
    char ids[37], date[40];
    uuid_generate_random(id);
    uuid_unparse_lower(id, ids);
    format_iso(date, sizeof date);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "MessageId", ids);
    cJSON_AddStringToObject(o, "CreatedDate", date);
    cJSON_AddStringToObject(o, "DestinationId", s->target);
    cJSON_AddStringToObject(o, "SessionId", s->id);
    cJSON_AddStringToObject(o, "MessageType", "channel_closed");
    cJSON_AddNumberToObject(o, "SchemaVersion", 1);
    cJSON_AddStringToObject(o, "Output", s->end_output);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (txt == NULL)
        return;
    int rc = sim_send_control(s, SSM_MT_CHANNEL_CLOSED, SSM_PT_NONE, (const uint8_t *)txt, strlen(txt), 0);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "output", s->end_output);
    cJSON_AddBoolToObject(f, "sent", rc == 0);
    sim_record(s, "channel_closed", f);
    cJSON_free(txt);
}

static void stop_behaviour(sim_session *s)
{
    if (s->beh_started) {
        s->beh_started = 0;
        if (s->beh->on_close)
            s->beh->on_close(s, s->beh_state);
        s->beh_state = NULL;
    }
    for (int i = 0; i < SIM_MAX_TIMERS; i++) {
        if (s->timers[i].used) {
            lws_sul_cancel(&s->timers[i].sul);
            s->timers[i].used = 0;
        }
    }
    for (int i = 0; i < SIM_MAX_FDS; i++)
        if (s->fds[i].cb)
            sim_fd_unwatch(s, s->fds[i].fd);
}

void sim_session_tick_end(sim_session *s)
{
    if (s->state != ST_ENDING)
        return;
    size_t unacked = sim_rel_unacked(s);
    /* Keep draining while disconnected too: a client that resumes within
     * the window still gets the tail of the output. */
    if (unacked > 0 && sim_now_ms() < s->end_deadline_ms)
        return;
    stop_behaviour(s);
    s->state = ST_CLOSED;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "output", s->end_output);
    cJSON_AddNumberToObject(f, "unacked", (double)unacked);
    sim_record(s, "session_end", f);
    if (s->conn) {
        sim_session_send_closed(s);
        sim_conn_close(s->conn, "session ended");
    }
}

void sim_sessions_stop(sim_session *s)
{
    stop_behaviour(s);
    lws_sul_cancel(&s->tick);
}

/* ---- services for behaviours ------------------------------------------- */

int sim_send(sim_session *s, uint32_t payload_type, const uint8_t *p, size_t n)
{
    if (s == NULL || s->state != ST_RUNNING || n > SIM_MAX_PAYLOAD)
        return SIM_SEND_ERROR;
    return sim_rel_send(s, payload_type, p, n);
}

int sim_send_flag(sim_session *s, uint32_t flag)
{
    uint8_t b[4];
    ssm_flag_encode(flag, b);
    return sim_send(s, SSM_PT_FLAG, b, sizeof b);
}

size_t sim_send_room(sim_session *s)
{
    if (s == NULL || s->state != ST_RUNNING)
        return 0;
    return SIM_OUT_WINDOW - s->out_count;
}

void sim_want_writable(sim_session *s)
{
    if (s)
        s->want_writable = 1;
}

void sim_session_end(sim_session *s, const char *output)
{
    if (s == NULL || s->state >= ST_ENDING)
        return;
    s->state = ST_ENDING;
    snprintf(s->end_output, sizeof s->end_output, "%s", output ? output : "");
    s->end_deadline_ms = sim_now_ms() + END_DRAIN_MS;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "output", s->end_output);
    sim_record(s, "session_end_requested", f);
    kick(s);
}

void sim_session_terminate(sim_session *s)
{
    if (s->state == ST_CLOSED)
        return;
    if (s->state < ST_ENDING)
        sim_session_end(s, "");
    s->end_deadline_ms = sim_now_ms();
    sim_session_tick_end(s);
    if (s->state == ST_CLOSED && s->conn == NULL)
        lws_sul_cancel(&s->tick);
}

struct lws_context *sim_lws_context(sim_session *s)
{
    (void)s;
    return g_ctx;
}

struct lws_vhost *sim_lws_vhost(sim_session *s)
{
    (void)s;
    return g_vhost;
}

const char *sim_session_id(sim_session *s)
{
    return s->id;
}

const char *sim_session_target(sim_session *s)
{
    return s->target;
}

const char *sim_document_name(sim_session *s)
{
    return s->doc;
}

const cJSON *sim_parameters(sim_session *s)
{
    return s->params;
}

const char *sim_param(sim_session *s, const char *name, const char *def)
{
    const cJSON *v = s->params ? cJSON_GetObjectItemCaseSensitive(s->params, name) : NULL;
    if (cJSON_IsArray(v))
        v = cJSON_GetArrayItem(v, 0);
    return cJSON_IsString(v) ? v->valuestring : def;
}

const char *sim_agent_version(sim_session *s)
{
    (void)s;
    return g_cfg.agent_version;
}

const char *sim_client_version(sim_session *s)
{
    return s->client_version;
}

/* ---- timers ------------------------------------------------------------ */

static void timer_fire(lws_sorted_usec_list_t *sul)
{
    struct sim_timer *t = lws_container_of(sul, struct sim_timer, sul);
    t->used = 0;
    t->cb(t->s, t->user);
}

int sim_timer_after(sim_session *s, uint32_t ms, sim_timer_cb cb, void *user)
{
    for (int i = 0; i < SIM_MAX_TIMERS; i++) {
        struct sim_timer *t = &s->timers[i];
        if (t->used)
            continue;
        t->used = 1;
        t->s = s;
        t->cb = cb;
        t->user = user;
        lws_sul_schedule(g_ctx, 0, &t->sul, timer_fire, (lws_usec_t)ms * LWS_US_PER_MS);
        return i;
    }
    return -1;
}

void sim_timer_cancel(sim_session *s, int handle)
{
    if (handle < 0 || handle >= SIM_MAX_TIMERS || !s->timers[handle].used)
        return;
    lws_sul_cancel(&s->timers[handle].sul);
    s->timers[handle].used = 0;
}
