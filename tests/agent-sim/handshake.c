/* Agent side of the §8 handshake: HandshakeRequest as seq 0, wait up to 15 s
 * for the HandshakeResponse, then HandshakeComplete and start the behaviour. */
#include <stdlib.h>
#include <string.h>

#include "kms.h"
#include "sim.h"

#define SEPARATE_OUTPUT_WARNING                                                                   \
    "Please update session manager plugin version (minimum required version 1.2.312.0) for fully " \
    "support of separate StdOut/StdErr output.\r\n"

static void record_text(sim_session *s, const char *event, const char *text, cJSON *f)
{
    if (f == NULL)
        f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "text", text);
    sim_record(s, event, f);
}

void sim_handshake_begin(sim_session *s)
{
    s->state = ST_HANDSHAKE;
    s->hs_start_ms = sim_now_ms();
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "AgentVersion", g_cfg.agent_version);
    cJSON *actions = cJSON_AddArrayToObject(root, "RequestedClientActions");
    cJSON *act = cJSON_CreateObject();
    cJSON_AddStringToObject(act, "ActionType", "SessionType");
    cJSON *params = cJSON_AddObjectToObject(act, "ActionParameters");
    cJSON_AddStringToObject(params, "SessionType", s->beh->session_type);
    cJSON *props = s->beh->handshake_properties ? s->beh->handshake_properties(s) : NULL;
    if (props)
        cJSON_AddItemToObject(params, "Properties", props);
    else
        cJSON_AddNullToObject(params, "Properties");
    cJSON_AddItemToArray(actions, act);
    if (sim_kms_wanted(s))
        sim_kms_add_action(s, actions);
    char *txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (txt == NULL || sim_rel_send(s, SSM_PT_HANDSHAKE_REQUEST, (const uint8_t *)txt, strlen(txt)) != 0) {
        cJSON_free(txt);
        sim_session_end(s, "agent-sim: could not send the HandshakeRequest");
        return;
    }
    record_text(s, "handshake_request", txt, NULL);
    cJSON_free(txt);
}

/* Agent version comparison on ClientVersion: numeric component-wise, more
 * components = greater (what the agent does for non-semver strings). */
static int version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
        if (x != y)
            return x < y ? -1 : 1;
        if (*a == '.')
            a++;
        if (*b == '.')
            b++;
        if (!*a != !*b)
            return *a ? 1 : -1;
        if (!*a && !*b)
            break;
    }
    return 0;
}

static const char *check_actions(const cJSON *root, char *err, size_t cap)
{
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive(root, "ProcessedClientActions");
    if (!cJSON_IsArray(acts))
        return "HandshakeResponse has no ProcessedClientActions";
    int saw_type = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, acts)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(a, "ActionType");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(a, "ActionStatus");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "Error");
        const char *tn = cJSON_IsString(type) ? type->valuestring : "?";
        int st = cJSON_IsNumber(status) ? status->valueint : 0;
        if (strcmp(tn, "SessionType") == 0)
            saw_type = 1;
        if (st != 1) {
            snprintf(err, cap, "%s failed on client with status %d error: %s", tn, st,
                     cJSON_IsString(e) ? e->valuestring : "");
            return err;
        }
    }
    return saw_type ? NULL : "HandshakeResponse did not process SessionType";
}

static void complete_handshake(sim_session *s, void *user)
{
    (void)user;
    if (s->state != ST_HANDSHAKE)
        return;
    char msg[256] = "";
    if (strcmp(s->beh->session_type, "NonInteractiveCommands") == 0 &&
        strcmp(sim_param(s, "separateOutputStream", "false"), "true") == 0 &&
        version_cmp(s->client_version, "1.2.295") <= 0)
        snprintf(msg, sizeof msg, "%s", SEPARATE_OUTPUT_WARNING);
    if (sim_kms_active(s))
        snprintf(msg, sizeof msg, "This session is encrypted using AWS KMS.");
    cJSON *done = cJSON_CreateObject();
    cJSON_AddNumberToObject(done, "HandshakeTimeToComplete", (double)(sim_now_ms() - s->hs_start_ms) * 1e6);
    cJSON_AddStringToObject(done, "CustomerMessage", msg);
    char *out = cJSON_PrintUnformatted(done);
    cJSON_Delete(done);
    if (out == NULL || sim_rel_send(s, SSM_PT_HANDSHAKE_COMPLETE, (const uint8_t *)out, strlen(out)) != 0) {
        cJSON_free(out);
        sim_session_end(s, "agent-sim: could not send HandshakeComplete");
        return;
    }
    record_text(s, "handshake_complete", out, NULL);
    cJSON_free(out);
    sim_behaviour_start(s);
}

int sim_handshake_on_input(sim_session *s, uint32_t ptype, const uint8_t *p, size_t n)
{
    if (ptype == SSM_PT_ENC_CHALLENGE_RESPONSE) {
        const char *e = sim_kms_on_challenge(s, p, n);
        if (e)
            sim_session_end(s, e);
        else if (sim_timer_after(s, 0, complete_handshake, NULL) < 0)
            complete_handshake(s, NULL);
        return 1;
    }
    if (sim_kms_active(s))
        return 1; /* a repeated HandshakeResponse: already handled */
    char *txt = strndup((const char *)p, n);
    cJSON *root = cJSON_ParseWithLength((const char *)p, n);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddBoolToObject(f, "request_acked", s->hs_request_acked);
    cJSON_AddBoolToObject(f, "json_ok", root != NULL);
    record_text(s, "handshake_response", txt ? txt : "", f);
    free(txt);
    char errbuf[512];
    const char *err = root ? check_actions(root, errbuf, sizeof errbuf) : "HandshakeResponse is not JSON";
    const cJSON *cv = root ? cJSON_GetObjectItemCaseSensitive(root, "ClientVersion") : NULL;
    if (cJSON_IsString(cv))
        snprintf(s->client_version, sizeof s->client_version, "%s", cv->valuestring);
    if (err == NULL && sim_kms_wanted(s))
        err = sim_kms_on_response(s, root, errbuf, sizeof errbuf);
    int wait_challenge = err == NULL && sim_kms_active(s);
    cJSON_Delete(root);
    if (err) {
        sim_session_end(s, err);
        return 1;
    }
    if (wait_challenge)
        return 1; /* HandshakeComplete after the EncChallengeResponse */
    /* Complete on the next loop turn so the ack of the response goes out
     * first, as the agent's separate handshake goroutine usually does. */
    if (sim_timer_after(s, 0, complete_handshake, NULL) < 0)
        complete_handshake(s, NULL);
    return 1;
}

void sim_handshake_check_timeout(sim_session *s)
{
    if (s->state == ST_HANDSHAKE && sim_now_ms() - s->hs_start_ms > g_cfg.handshake_timeout_ms)
        sim_session_end(s, "Handshake timed out. Please ensure that you have the latest version of the "
                           "session manager plugin.");
}

static void start_now(sim_session *s, void *user)
{
    (void)user;
    if (s->state != ST_RUNNING || s->beh_started)
        return;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "behaviour", s->beh->name);
    cJSON_AddStringToObject(f, "session_type", s->beh->session_type);
    sim_record(s, "behaviour_start", f);
    if (s->beh->start(s, &s->beh_state) != 0) {
        sim_session_end(s, "agent-sim: the session behaviour failed to start");
        return;
    }
    s->beh_started = 1;
}

void sim_behaviour_start(sim_session *s)
{
    s->state = ST_RUNNING;
    /* Until the behaviour starts, input is "not ready" (no ack), like the
     * agent before its pty exists. */
    if (g_cfg.start_delay_ms && sim_timer_after(s, g_cfg.start_delay_ms, start_now, NULL) >= 0)
        return;
    start_now(s, NULL);
}
