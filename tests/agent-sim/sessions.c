/* Session table: created by StartSession, looked up by id from the API and
 * from the data-channel URL. Buffers are allocated once per session. */
#include <stdlib.h>
#include <string.h>

#include "kms.h"
#include "sim.h"

static sim_session *g_sessions[SIM_MAX_SESSIONS];

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void sim_session_new_token(sim_session *s)
{
    /* Token alphabet like the real ones (base64ish), never recorded. */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t r[64];
    sim_random_bytes(r, sizeof r);
    memcpy(s->token, "AAEAA", 5);
    for (size_t i = 0; i < sizeof r; i++)
        s->token[5 + i] = b64[r[i] & 63];
    s->token[5 + sizeof r] = '\0';
}

static void session_free(sim_session *s)
{
    if (s == NULL)
        return;
    cJSON_Delete(s->params);
    sim_kms_free(s);
    free(s->out);
    sim_inbuf_free(s);
    free(s);
}

sim_session *sim_session_new(const char *target, const char *doc, const cJSON *params)
{
    int slot = -1;
    for (int i = 0; i < SIM_MAX_SESSIONS; i++) {
        if (g_sessions[i] == NULL) {
            slot = i;
            break;
        }
    }
    /* Table full: reuse a closed session with no connection. */
    for (int i = 0; slot < 0 && i < SIM_MAX_SESSIONS; i++) {
        if (g_sessions[i]->state == ST_CLOSED && g_sessions[i]->conn == NULL) {
            sim_sessions_stop(g_sessions[i]);
            session_free(g_sessions[i]);
            g_sessions[i] = NULL;
            slot = i;
        }
    }
    if (slot < 0)
        return NULL;
    sim_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->out = calloc(SIM_OUT_WINDOW, sizeof *s->out);
    if (s->out == NULL) {
        session_free(s);
        return NULL;
    }
    uint8_t r[9];
    sim_random_bytes(r, sizeof r);
    char h[19];
    hex(h, r, sizeof r);
    h[17] = '\0';
    snprintf(s->id, sizeof s->id, "sim-%s", h);
    snprintf(s->target, sizeof s->target, "%s", target ? target : "");
    snprintf(s->doc, sizeof s->doc, "%s", doc ? doc : "");
    s->params = params ? cJSON_Duplicate(params, 1) : NULL;
    sim_session_new_token(s);
    s->held_seq = -1;
    s->used = 1;
    sim_rel_init(s);
    g_sessions[slot] = s;
    return s;
}

sim_session *sim_session_get(const char *id)
{
    if (id == NULL)
        return NULL;
    for (int i = 0; i < SIM_MAX_SESSIONS; i++)
        if (g_sessions[i] && strcmp(g_sessions[i]->id, id) == 0)
            return g_sessions[i];
    return NULL;
}

void sim_sessions_stop_all(void)
{
    for (int i = 0; i < SIM_MAX_SESSIONS; i++)
        if (g_sessions[i])
            sim_sessions_stop(g_sessions[i]);
}

void sim_sessions_free_all(void)
{
    for (int i = 0; i < SIM_MAX_SESSIONS; i++) {
        sim_session *s = g_sessions[i];
        if (s == NULL)
            continue;
        session_free(s);
        g_sessions[i] = NULL;
    }
}
