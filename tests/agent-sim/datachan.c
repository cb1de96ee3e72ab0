/* lws protocol 0: the JSON-1.1 API over HTTP POST and the data channel over
 * websocket on the same port. Websocket writes go through a bounded ring per
 * connection with backpressure instead of drops: data beyond SIM_TX_DATA_MAX
 * slots is deferred by the reliable layer, and reading from the client stops
 * while fewer than SIM_TX_RESERVE slots are free (acks are only produced by
 * client input, so they always fit). */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sim.h"

#define SIM_API_BODY_MAX 65536
#define DATA_CHANNEL_PREFIX "/v1/data-channel/"

static void conn_free(struct sim_conn *c)
{
    free(c->body);
    free(c->rx);
    free(c->tx);
    c->body = NULL;
    c->rx = NULL;
    c->tx = NULL;
}

uint64_t g_first_cut_ms;

static int cut_budget_left(const sim_session *s)
{
    return s && s->cuts_done < (g_cfg.cut_count ? g_cfg.cut_count : 1);
}

void sim_conn_cut(struct sim_conn *c, const char *why)
{
    sim_session *s = c->s;
    if (c->cut_after_flush || s == NULL)
        return;
    c->cut_after_flush = 1;
    s->cuts_done++;
    if (g_first_cut_ms == 0)
        g_first_cut_ms = sim_now_ms() ? sim_now_ms() : 1;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "why", why);
    cJSON_AddNumberToObject(f, "after_msgs", c->msgs_sent);
    cJSON_AddNumberToObject(f, "after_client_msgs", c->msgs_recv);
    cJSON_AddNumberToObject(f, "cut", s->cuts_done);
    cJSON_AddStringToObject(f, "mode", g_cfg.cut_mode_close ? "close" : "reset");
    sim_record(s, "fault_cut", f);
    lws_callback_on_writable(c->wsi);
}

size_t sim_conn_room(const struct sim_conn *c)
{
    return (c && c->tx) ? SIM_TX_SLOTS - c->tx_count : 0;
}

/* Stops reading client frames while the ring is nearly full; resumed from
 * on_writeable once it has drained to half. */
static void rx_backpressure(struct sim_conn *c)
{
    if (!c->rx_paused && SIM_TX_SLOTS - c->tx_count < SIM_TX_RESERVE) {
        c->rx_paused = 1;
        lws_rx_flow_control(c->wsi, 0);
        sim_record(c->s, "rx_paused", NULL);
    }
}

size_t sim_conn_mark(const struct sim_conn *c)
{
    return c ? c->tx_count : 0;
}

int sim_conn_queue_at(struct sim_conn *c, size_t mark, const uint8_t *p, size_t n, int is_text)
{
    if (c == NULL || c->tx == NULL || n > SIM_FRAME_MAX || c->cut_after_flush || c->close_after_flush)
        return -1;
    if (c->tx_count >= SIM_TX_SLOTS) {
        /* Unreachable while rx_backpressure holds; kept as a guard. */
        sim_record(c->s, "tx_overflow", NULL);
        return -1;
    }
    if (mark > c->tx_count)
        mark = c->tx_count;
    /* Open a gap at `mark` (messages queued after the mark move back one). */
    for (size_t i = c->tx_count; i > mark; i--) {
        struct sim_tx_slot *to = &c->tx[(c->tx_head + i) % SIM_TX_SLOTS];
        struct sim_tx_slot *from = &c->tx[(c->tx_head + i - 1) % SIM_TX_SLOTS];
        memcpy(to->buf + LWS_PRE, from->buf + LWS_PRE, from->len);
        to->len = from->len;
        to->is_text = from->is_text;
    }
    struct sim_tx_slot *t = &c->tx[(c->tx_head + mark) % SIM_TX_SLOTS];
    memcpy(t->buf + LWS_PRE, p, n);
    t->len = n;
    t->is_text = is_text;
    c->tx_count++;
    lws_callback_on_writable(c->wsi);
    rx_backpressure(c);
    if (is_text)
        return 0;
    c->msgs_sent++;
    sim_session *s = c->s;
    if (g_cfg.cut_after_msgs && cut_budget_left(s) && c->msgs_sent >= g_cfg.cut_after_msgs)
        sim_conn_cut(c, "after_msgs");
    return 0;
}

int sim_conn_queue(struct sim_conn *c, const uint8_t *p, size_t n, int is_text)
{
    return sim_conn_queue_at(c, c ? c->tx_count : 0, p, n, is_text);
}

void sim_conn_close(struct sim_conn *c, const char *reason)
{
    if (c == NULL)
        return;
    c->close_after_flush = 1;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason ? reason : "");
    lws_callback_on_writable(c->wsi);
}

void sim_conn_detach(struct sim_conn *c)
{
    sim_session *s = c->s;
    if (s && s->conn == c) {
        s->conn = NULL;
        sim_record(s, "ws_disconnect", NULL);
    }
    c->s = NULL;
}

static int printable_json(const uint8_t *p, size_t n)
{
    if (n == 0 || n > 8192)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] >= 0x7f)
            return 0;
    return 1;
}

static void add_str_field(cJSON *f, const cJSON *root, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsString(v))
        cJSON_AddStringToObject(f, key, v->valuestring);
    else if (v == NULL)
        cJSON_AddNullToObject(f, key);
    else
        cJSON_AddStringToObject(f, key, "(not a string)");
}

/* First text message: OpenDataChannel (§3.4). Returns -1 to close. */
static int handle_open(struct sim_conn *c, const uint8_t *p, size_t n, int is_text)
{
    sim_session *s = sim_session_get(c->sid);
    cJSON *root = cJSON_ParseWithLength((const char *)p, n);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "path_session", c->sid);
    cJSON_AddBoolToObject(f, "text_frame", is_text);
    const char *err = NULL;
    int token_ok = 0;
    if (root == NULL || !cJSON_IsObject(root)) {
        err = "OpenDataChannel is not a JSON object";
    } else {
        add_str_field(f, root, "MessageSchemaVersion");
        add_str_field(f, root, "RequestId");
        add_str_field(f, root, "ClientId");
        add_str_field(f, root, "ClientVersion");
        cJSON *keys = cJSON_AddArrayToObject(f, "keys");
        for (cJSON *it = root->child; it; it = it->next)
            cJSON_AddItemToArray(keys, cJSON_CreateString(it->string ? it->string : ""));
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "TokenValue");
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "MessageSchemaVersion");
        token_ok = s && cJSON_IsString(tok) && strcmp(tok->valuestring, s->token) == 0;
        if (s == NULL)
            err = "session not found";
        else if (!cJSON_IsString(schema) || strcmp(schema->valuestring, "1.0") != 0)
            err = "unsupported MessageSchemaVersion";
        else if (!token_ok)
            err = "invalid token";
    }
    cJSON_AddBoolToObject(f, "token_ok", token_ok);
    if (err)
        cJSON_AddStringToObject(f, "error", err);
    cJSON_Delete(root);
    if (s)
        sim_record(s, "open_data_channel", f);
    else
        sim_record_global("open_data_channel", f);
    if (err) {
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)err, strlen(err));
        return -1;
    }
    sim_conn_attach(c, s);
    return 0;
}

static void record_frame(sim_session *s, const ssm_msg *m, int rc)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "type", m->type);
    cJSON_AddNumberToObject(f, "seq", (double)m->seq);
    cJSON_AddNumberToObject(f, "flags", (double)m->flags);
    cJSON_AddNumberToObject(f, "schema", m->schema_version);
    cJSON_AddNumberToObject(f, "payload_type", m->payload_type);
    cJSON_AddNumberToObject(f, "len", (double)m->payload_len);
    cJSON_AddNumberToObject(f, "payload_length_field", m->payload_length);
    cJSON_AddBoolToObject(f, "digest_ok", rc == SSM_MSG_OK);
    char id[37];
    uuid_unparse_lower(m->id, id);
    cJSON_AddStringToObject(f, "id", id);
    if (m->payload_type == SSM_PT_FLAG) {
        uint32_t flag = 0;
        if (ssm_flag_decode(m->payload, m->payload_len, &flag) == 0)
            cJSON_AddNumberToObject(f, "flag", flag);
    } else if (m->payload_type != SSM_PT_OUTPUT && printable_json(m->payload, m->payload_len)) {
        char *t = strndup((const char *)m->payload, m->payload_len);
        if (t) {
            cJSON_AddStringToObject(f, "text", t);
            free(t);
        }
    }
    sim_record(s, "recv", f);
}

static void handle_frame(struct sim_conn *c, const uint8_t *p, size_t n)
{
    sim_session *s = c->s;
    if (s == NULL)
        return;
    ssm_msg m;
    int rc = ssm_msg_decode(p, n, &m);
    /* The agent does not check the digest (§4.3); note it and go on. */
    if (rc != SSM_MSG_OK && rc != SSM_MSG_ERR_DIGEST) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "error", ssm_msg_strerror(rc));
        cJSON_AddNumberToObject(f, "len", (double)n);
        sim_record(s, "recv_invalid", f);
        return;
    }
    record_frame(s, &m, rc);
    if (strcmp(m.type, SSM_MT_ACK) == 0) {
        sim_rel_on_ack(s, m.payload, m.payload_len);
    } else if (strcmp(m.type, SSM_MT_INPUT) == 0) {
        c->msgs_recv++;
        /* --cut-after-client-msgs: the Nth upload message is lost with the
         * connection (not processed, not acked), so the client must resend. */
        if (g_cfg.cut_after_client_msgs && cut_budget_left(s) &&
            c->msgs_recv >= g_cfg.cut_after_client_msgs) {
            sim_conn_cut(c, "after_client_msgs");
            return;
        }
        if (!c->cut_after_flush)
            sim_rel_on_input(s, &m);
    }
}

static int on_established(struct sim_conn *c, struct lws *wsi)
{
    char uri[256];
    conn_free(c); /* a keep-alive POST on this connection before the upgrade */
    memset(c, 0, sizeof *c);
    c->wsi = wsi;
    c->is_ws = 1;
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0)
        uri[0] = '\0';
    if (strncmp(uri, DATA_CHANNEL_PREFIX, strlen(DATA_CHANNEL_PREFIX)) == 0) {
        /* Longer ids than the table holds are truncated, so they match no session. */
        const char *id = uri + strlen(DATA_CHANNEL_PREFIX);
        size_t n = strnlen(id, sizeof c->sid - 1);
        memcpy(c->sid, id, n);
        c->sid[n] = '\0';
    }
    char *q = strchr(c->sid, '?');
    if (q)
        *q = '\0';
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "path", uri);
    char args[256];
    if (lws_hdr_copy(wsi, args, sizeof args, WSI_TOKEN_HTTP_URI_ARGS) > 0)
        cJSON_AddStringToObject(f, "query", args);
    cJSON_AddStringToObject(f, "path_session", c->sid);
    sim_record_global("ws_connect", f);
    c->rx = malloc(SIM_RX_MAX);
    c->tx = malloc(sizeof(struct sim_tx_slot) * SIM_TX_SLOTS);
    return (c->rx && c->tx) ? 0 : -1;
}

static int on_receive(struct sim_conn *c, struct lws *wsi, const uint8_t *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        c->rx_len = 0;
        c->rx_overflow = 0;
    }
    if (!c->rx_overflow && c->rx_len + len <= SIM_RX_MAX) {
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
    } else {
        c->rx_overflow = 1;
    }
    if (!lws_is_final_fragment(wsi))
        return 0;
    if (c->rx_overflow) {
        sim_record(c->s, "recv_too_large", NULL);
        return 0;
    }
    if (!c->opened)
        return handle_open(c, c->rx, c->rx_len, !lws_frame_is_binary(wsi));
    handle_frame(c, c->rx, c->rx_len);
    return 0;
}

static int on_writeable(struct sim_conn *c, struct lws *wsi)
{
    if (c->tx_count > 0) {
        struct sim_tx_slot *t = &c->tx[c->tx_head];
        int n = lws_write(wsi, t->buf + LWS_PRE, t->len, t->is_text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
        if (n < (int)t->len)
            return -1;
        c->tx_head = (c->tx_head + 1) % SIM_TX_SLOTS;
        c->tx_count--;
    }
    if (c->tx_count > 0) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->rx_paused && c->tx_count <= SIM_TX_SLOTS / 2) {
        c->rx_paused = 0;
        lws_rx_flow_control(wsi, 1);
        sim_record(c->s, "rx_resumed", NULL);
    }
    if (c->s && c->tx_count <= SIM_TX_SLOTS / 2 && !c->cut_after_flush && !c->close_after_flush)
        sim_rel_flush_deferred(c->s);
    if (c->cut_after_flush) {
        if (g_cfg.cut_mode_close) {
            static const char why[] = "agent-sim cut";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)why, sizeof why - 1);
        } else {
            /* Abrupt: RST instead of a websocket close handshake. */
            struct linger lg = {1, 0};
            setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        sim_conn_detach(c);
        return -1;
    }
    if (c->close_after_flush) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)c->close_reason,
                         strlen(c->close_reason));
        return -1;
    }
    return 0;
}

int sim_datachan_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct sim_conn *c = user;
    /* lws may report events (e.g. CLOSED_HTTP of a half-sent request) before
     * any per-connection data exists. */
    if (c == NULL)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        c->wsi = wsi;
        c->body_len = 0;
        c->body_overflow = 0;
        c->amz_target[0] = '\0';
        const char *uri = in ? (const char *)in : "";
        int is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
        if (lws_hdr_custom_copy(wsi, c->amz_target, sizeof c->amz_target, "x-amz-target:", 13) < 0)
            c->amz_target[0] = '\0';
        snprintf(c->http_uri, sizeof c->http_uri, "%s", uri);
        if (!is_post) {
            int rc = 0;
            int is_put = lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0;
            if (sim_creds_http(wsi, is_put ? "PUT" : "GET", uri, &rc))
                return rc;
        }
        if (!is_post || (strcmp(uri, "/") != 0 && strcmp(uri, "/token") != 0))
            return sim_api_respond(wsi, 404, "{\"__type\":\"NotFound\",\"message\":\"POST / only\"}");
        if (c->body == NULL)
            c->body = malloc(SIM_API_BODY_MAX);
        return c->body ? 0 : -1;
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (c->body && !c->body_overflow && c->body_len + len <= SIM_API_BODY_MAX) {
            memcpy(c->body + c->body_len, in, len);
            c->body_len += len;
        } else {
            c->body_overflow = 1;
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        int rc = 0;
        if (c->amz_target[0] == '\0' && !c->body_overflow &&
            sim_creds_post(wsi, c->http_uri, c->body, c->body_len, &rc))
            return rc;
        return sim_api_handle(c, wsi);
    }
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_WSI_DESTROY:
        /* A keep-alive connection still open at shutdown only sees the last
         * two; conn_free is idempotent. */
        conn_free(c);
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        const char *why = sim_ws_filter(wsi);
        if (why == NULL)
            return 0;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "reason", why);
        sim_record_global("ws_refused", f);
        /* Like MGS: an HTTP error instead of 101 (best effort), then close. */
        lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, why);
        return 1;
    }
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(c, wsi);
    case LWS_CALLBACK_RECEIVE:
        return on_receive(c, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(c, wsi);
    case LWS_CALLBACK_CLOSED:
        sim_conn_detach(c);
        sim_record_global("ws_closed", NULL);
        conn_free(c);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
