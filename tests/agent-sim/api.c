/* Fake SSM JSON-1.1 API: POST / with X-Amz-Target AmazonSSM.<Operation>.
 * StartSession, ResumeSession, TerminateSession; anything else is a 400. */
#include <stdlib.h>
#include <string.h>

#include "kms.h"
#include "sim.h"

/* sigv4_hooks.c: 0 to accept, else the request is refused with 403. */
int sim_api_authorize(struct lws *wsi, const char *amz_target, const char *body, size_t body_len);

int sim_api_respond(struct lws *wsi, int status, const char *body)
{
    return sim_http_respond(wsi, status, "application/x-amz-json-1.1", body);
}

int sim_http_respond(struct lws *wsi, int status, const char *ctype, const char *body)
{
    size_t n = strlen(body);
    uint8_t hdr[LWS_PRE + 1024];
    uint8_t *p = hdr + LWS_PRE, *end = hdr + sizeof hdr - 1;
    uuid_t rid;
    char rids[37];
    uuid_generate_random(rid);
    uuid_unparse_lower(rid, rids);
    if (lws_add_http_common_headers(wsi, (unsigned int)status, ctype, n, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-amzn-RequestId:",
                                    (const unsigned char *)rids, (int)strlen(rids), &p, end) ||
        lws_finalize_write_http_header(wsi, hdr + LWS_PRE, &p, end))
        return -1;
    uint8_t *buf = malloc(LWS_PRE + n + 1);
    if (buf == NULL)
        return -1;
    memcpy(buf + LWS_PRE, body, n);
    int w = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
    free(buf);
    if (w < (int)n)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int respond_json(struct lws *wsi, int status, cJSON *o)
{
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (txt == NULL)
        return -1;
    int rc = sim_api_respond(wsi, status, txt);
    cJSON_free(txt);
    return rc;
}

static int respond_error(struct lws *wsi, int status, const char *type, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "__type", type);
    cJSON_AddStringToObject(o, "message", msg);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "status", status);
    cJSON_AddStringToObject(f, "__type", type);
    sim_record_global("api_error", f);
    return respond_json(wsi, status, o);
}

static void new_cell(sim_session *s)
{
    /* cell-number: opaque, base64-like, with a raw '+' that must survive. */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t r[24];
    char prev[sizeof s->cell];
    memcpy(prev, s->cell, sizeof prev);
    do {
        sim_random_bytes(r, sizeof r);
        size_t i = 0;
        for (; i < sizeof r; i++)
            s->cell[i] = b64[r[i] % 62];
        s->cell[6] = '+';
        s->cell[i++] = '=';
        s->cell[i++] = '=';
        s->cell[i] = '\0';
    } while (strcmp(prev, s->cell) == 0);
}

static void stream_url(const sim_session *s, char *out, size_t cap)
{
    const char *host = strcmp(g_cfg.listen, "0.0.0.0") == 0 ? "127.0.0.1" : g_cfg.listen;
    snprintf(out, cap, "%s://%s:%d/v1/data-channel/%s?role=publish_subscribe&cell-number=%s",
             g_cfg.tls_cert ? "wss" : "ws", host, g_listen_port, s->id, s->cell);
}

static int params_ok(const cJSON *p)
{
    if (p == NULL || cJSON_IsNull(p))
        return 1;
    if (!cJSON_IsObject(p))
        return 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, p)
    {
        if (!cJSON_IsArray(v))
            return 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (!cJSON_IsString(e)) return 0;
    }
    return 1;
}

static int start_session(struct lws *wsi, const cJSON *req)
{
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(req, "Target");
    const cJSON *doc = cJSON_GetObjectItemCaseSensitive(req, "DocumentName");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(req, "Parameters");
    if (!cJSON_IsString(target) || target->valuestring[0] == '\0')
        return respond_error(wsi, 400, "ValidationException", "Target is required");
    if (doc && !cJSON_IsNull(doc) && !cJSON_IsString(doc))
        return respond_error(wsi, 400, "ValidationException", "DocumentName must be a string");
    if (!params_ok(params))
        return respond_error(wsi, 400, "ValidationException", "Parameters must map names to string lists");
    const char *dn = cJSON_IsString(doc) ? doc->valuestring : "";
    static uint32_t starts;
    if (g_cfg.start_fail_after && ++starts > g_cfg.start_fail_after)
        return respond_error(wsi, 400, "ThrottlingException", "Rate exceeded");
    if (sim_behaviour_find(dn) == NULL)
        return respond_error(wsi, 400, "InvalidDocument", "Document not supported by agent-sim");
    sim_session *s = sim_session_new(target->valuestring, dn, cJSON_IsObject(params) ? params : NULL);
    if (s == NULL)
        return respond_error(wsi, 400, "ThrottlingException", "too many sessions");
    char url[512];
    new_cell(s);
    stream_url(s, url, sizeof url);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "SessionId", s->id);
    cJSON_AddStringToObject(o, "TokenValue", s->token);
    cJSON_AddStringToObject(o, "StreamUrl", url);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "target", s->target);
    cJSON_AddStringToObject(f, "document", s->doc);
    cJSON_AddStringToObject(f, "stream_url", url);
    sim_record(s, "session_created", f);
    return respond_json(wsi, 200, o);
}

static sim_session *by_id(const cJSON *req)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "SessionId");
    return cJSON_IsString(id) ? sim_session_get(id->valuestring) : NULL;
}

static int resume_session(struct lws *wsi, const cJSON *req)
{
    static uint32_t calls;
    calls++;
    sim_session *s = by_id(req);
    if (s == NULL)
        return respond_error(wsi, 400, "DoesNotExistException", "Session not found");
    uint64_t now = sim_now_ms();
    if (calls <= g_cfg.resume_fail_count ||
        (g_cfg.resume_fail_ms && g_first_cut_ms && now < g_first_cut_ms + g_cfg.resume_fail_ms)) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "call", calls);
        sim_record(s, "fault_resume_fail", f);
        return respond_error(wsi, 403, "AccessDeniedException",
                             "User is not authorized to perform: ssm:ResumeSession");
    }
    if (g_cfg.resume_new_cell)
        new_cell(s);
    char url[512];
    stream_url(s, url, sizeof url);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "SessionId", s->id);
    /* An ended session resumes with no token (the client then reports a
     * timeout, §13.2); one still draining its output can be resumed. */
    if (s->state != ST_CLOSED && g_cfg.resume_empty_token) {
        cJSON_AddStringToObject(o, "TokenValue", "");
        sim_record(s, "fault_resume_empty_token", NULL);
    } else if (s->state != ST_CLOSED) {
        sim_session_new_token(s);
        cJSON_AddStringToObject(o, "TokenValue", s->token);
    }
    cJSON_AddStringToObject(o, "StreamUrl", url);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddBoolToObject(f, "new_token", s->state != ST_CLOSED);
    sim_record(s, "session_resumed", f);
    return respond_json(wsi, 200, o);
}

static int terminate_session(struct lws *wsi, const cJSON *req)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "SessionId");
    if (!cJSON_IsString(id))
        return respond_error(wsi, 400, "ValidationException", "SessionId is required");
    sim_session *s = sim_session_get(id->valuestring);
    if (s) {
        sim_record(s, "session_terminated", NULL);
        sim_session_terminate(s);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "SessionId", id->valuestring);
    return respond_json(wsi, 200, o);
}

int sim_api_handle(struct sim_conn *c, struct lws *wsi)
{
    const char *target = c->amz_target;
    const char *op = strncmp(target, "AmazonSSM.", 10) == 0 ? target + 10 : "";
    int has_auth = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) > 0;
    cJSON *req = c->body_overflow ? NULL : cJSON_ParseWithLength(c->body ? c->body : "", c->body_len);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "target", target);
    cJSON_AddBoolToObject(f, "has_authorization", has_auth);
    cJSON_AddItemToObject(f, "body", req ? cJSON_Duplicate(req, 1) : cJSON_CreateNull());
    sim_record_global("api_call", f);
    int rc;
    if (sim_api_authorize(wsi, target, c->body, c->body_len) != 0)
        rc = respond_error(wsi, 403, "InvalidSignatureException", "request signature rejected");
    else if (req == NULL || !cJSON_IsObject(req))
        rc = respond_error(wsi, 400, "SerializationException", "request body is not a JSON object");
    else if (strncmp(target, "TrentService.", 13) == 0)
        rc = sim_kms_handle(wsi, target + 13, req);
    else if (strcmp(op, "StartSession") == 0)
        rc = start_session(wsi, req);
    else if (strcmp(op, "ResumeSession") == 0)
        rc = resume_session(wsi, req);
    else if (strcmp(op, "TerminateSession") == 0)
        rc = terminate_session(wsi, req);
    else
        rc = respond_error(wsi, 400, "UnknownOperationException", "unknown X-Amz-Target");
    cJSON_Delete(req);
    return rc;
}
