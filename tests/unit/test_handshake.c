/* Handshake payloads: parsing HandshakeRequest/Complete/challenge/
 * channel_closed, building HandshakeResponse/challenge/Size, byte for byte
 * against the official plugin's recorded frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unhex.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssm_handshake.h"

#define U8(s) ((const uint8_t *)(s))

/* ---- helpers ----------------------------------------------------------- */

/* The results a client would produce for a request without KMS. */
static size_t results_for(const ssm_hs_request *r, ssm_hs_result *res, char *errbuf, size_t cap)
{
    for (size_t i = 0; i < r->n_actions; i++) {
        memset(&res[i], 0, sizeof res[i]);
        res[i].type = r->actions[i].type;
        res[i].error = "";
        if (r->actions[i].is_session_type) {
            if (r->kind != SSM_SESSION_UNKNOWN) {
                res[i].status = SSM_ACTION_SUCCESS;
            } else {
                snprintf(errbuf, cap, "Unknown session type %s", r->session_type);
                res[i].status = SSM_ACTION_FAILED;
                res[i].error = errbuf;
            }
        } else {
            res[i].status = SSM_ACTION_UNSUPPORTED;
        }
    }
    return r->n_actions;
}

static void assert_response_for(const char *request, const char *version, const char *expected)
{
    ssm_hs_request r;
    ssm_hs_result res[SSM_HS_MAX_ACTIONS];
    char err[256];
    assert_int_equal(ssm_hs_request_parse(U8(request), strlen(request), &r), 0);
    size_t n = results_for(&r, res, err, sizeof err);
    char *json = ssm_hs_response_build(version, res, n);
    assert_non_null(json);
    assert_string_equal(json, expected);
    free(json);
    ssm_hs_request_free(&r);
}


/* ---- golden: official plugin's recorded frames ------------------------- */

typedef struct frame {
    char dir[4];
    int payload_type;
    char msg_type[40];
    uint8_t *raw; /* whole ClientMessage */
    size_t raw_len;
} frame;

/* Reads the binary ClientMessages of one fixture file. Returns the count. */
static size_t load_frames(const char *name, frame *frames, size_t cap, char *agent_version,
                          size_t av_cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/official-plugin/%s", SSM_FIXTURES_DIR, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("fixture %s missing", path);
    char *line = NULL;
    size_t lcap = 0, n = 0;
    while (getline(&line, &lcap, f) > 0 && n < cap) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "meta");
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(meta, "agent_version");
        if (cJSON_IsString(av))
            snprintf(agent_version, av_cap, "%s", av->valuestring);
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "msg");
        const cJSON *hex = cJSON_GetObjectItemCaseSensitive(o, "hex");
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "opcode");
        if (msg && cJSON_IsString(hex) && cJSON_IsNumber(op) && op->valueint == 2) {
            frame *fr = &frames[n++];
            snprintf(fr->dir, sizeof fr->dir, "%s",
                     cJSON_GetObjectItemCaseSensitive(o, "dir")->valuestring);
            fr->payload_type = cJSON_GetObjectItemCaseSensitive(msg, "payload_type")->valueint;
            snprintf(fr->msg_type, sizeof fr->msg_type, "%s",
                     cJSON_GetObjectItemCaseSensitive(msg, "type")->valuestring);
            fr->raw = unhex(hex->valuestring, &fr->raw_len);
            assert_true(fr->raw_len >= 120);
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    return n;
}

#define PAYLOAD(fr) ((fr)->raw + 120)
#define PAYLOAD_LEN(fr) ((fr)->raw_len - 120)

static void check_fixture(const char *name, const char *port, const char *type,
                          const char *local_port, size_t want_closes)
{
    static frame frames[2048];
    char agent_version[64] = "";
    size_t n = load_frames(name, frames, 2048, agent_version, sizeof agent_version);
    size_t responses = 0, completes = 0, sizes = 0, closes = 0;
    ssm_hs_request req;
    bool have_req = false;
    for (size_t i = 0; i < n; i++) {
        frame *fr = &frames[i];
        bool s2c = !strcmp(fr->dir, "s2c");
        if (s2c && !strcmp(fr->msg_type, "channel_closed")) {
            char *out = ssm_channel_closed_output(PAYLOAD(fr), PAYLOAD_LEN(fr));
            assert_string_equal(out, "");
            free(out);
            closes++;
        } else if (s2c && fr->payload_type == 5) {
            assert_int_equal(ssm_hs_request_parse(PAYLOAD(fr), PAYLOAD_LEN(fr), &req), 0);
            assert_string_equal(req.agent_version, agent_version);
            assert_int_equal(req.n_actions, 1);
            assert_true(req.actions[0].is_session_type);
            if (port) {
                assert_int_equal(req.kind, SSM_SESSION_PORT);
                assert_string_equal(req.port.port_number, port);
                assert_string_equal(req.port.type, type);
                assert_string_equal(req.port.local_port_number, local_port);
            } else {
                assert_int_equal(req.kind, SSM_SESSION_SHELL);
                assert_string_equal(req.port.port_number, "");
            }
            assert_null(req.kms_key_id);
            have_req = true;
        } else if (!s2c && fr->payload_type == 6) {
            /* The official plugin under test reported 1.2.0.0. */
            assert_true(have_req);
            ssm_hs_result res[SSM_HS_MAX_ACTIONS];
            char err[128];
            size_t k = results_for(&req, res, err, sizeof err);
            char *json = ssm_hs_response_build("1.2.0.0", res, k);
            assert_non_null(json);
            assert_int_equal(strlen(json), PAYLOAD_LEN(fr));
            assert_memory_equal(json, PAYLOAD(fr), PAYLOAD_LEN(fr));
            free(json);
            responses++;
        } else if (s2c && fr->payload_type == 7) {
            char *cm = NULL;
            assert_int_equal(ssm_hs_complete_parse(PAYLOAD(fr), PAYLOAD_LEN(fr), &cm), 0);
            assert_string_equal(cm, "");
            free(cm);
            completes++;
        } else if (!s2c && fr->payload_type == 3) {
            /* Re-encode the official Size body from its own numbers. */
            unsigned cols = 0, rows = 0;
            char want[64], got[64];
            snprintf(want, sizeof want, "%.*s", (int)PAYLOAD_LEN(fr), (const char *)PAYLOAD(fr));
            assert_int_equal(sscanf(want, "{\"cols\":%u,\"rows\":%u}", &cols, &rows), 2);
            int w = ssm_size_body(got, sizeof got, cols, rows);
            assert_int_equal(w, (int)PAYLOAD_LEN(fr));
            assert_memory_equal(got, PAYLOAD(fr), PAYLOAD_LEN(fr));
            sizes++;
        }
    }
    if (have_req)
        ssm_hs_request_free(&req);
    for (size_t i = 0; i < n; i++)
        free(frames[i].raw);
    /* Nothing vacuous: every recording holds a full handshake. */
    assert_int_equal(responses, 1);
    assert_int_equal(completes, 1);
    assert_int_equal(closes, want_closes);
    if (!port)
        assert_int_equal(sizes, 2);
}

static void test_fixture_shell(void **state)
{
    (void)state;
    check_fixture("shell.jsonl", NULL, NULL, NULL, 1);
}

static void test_fixture_port_mux(void **state)
{
    (void)state;
    check_fixture("port_mux.jsonl", "38287", "LocalPortForwarding", "33979", 1);
}

static void test_fixture_port_basic(void **state)
{
    (void)state;
    check_fixture("port_basic.jsonl", "38287", "LocalPortForwarding", "40993", 1);
}

static void test_fixture_stdio(void **state)
{
    (void)state;
    check_fixture("stdio.jsonl", "33659", "", "", 0); /* ends on stdin EOF */
}

/* The same bytes, embedded, so the vector survives fixture changes. */
static void test_official_response_bytes(void **state)
{
    (void)state;
    assert_response_for(
        "{\"AgentVersion\": \"3.0.196.0\", \"RequestedClientActions\": [{\"ActionType\": "
        "\"SessionType\", \"ActionParameters\": {\"SessionType\": \"Port\", \"Properties\": "
        "{\"portNumber\": \"38287\", \"type\": \"LocalPortForwarding\", \"localPortNumber\": "
        "\"40993\"}}}]}",
        "1.2.0.0",
        "{\"ClientVersion\":\"1.2.0.0\",\"ProcessedClientActions\":[{\"ActionType\":"
        "\"SessionType\",\"ActionStatus\":1,\"ActionResult\":null,\"Error\":\"\"}],\"Errors\":"
        "null}");
}

/* ---- HandshakeRequest parsing ------------------------------------------ */

static const char kms_request[] =
    "{\"AgentVersion\": \"3.3.987.0\", \"RequestedClientActions\": ["
    "{\"ActionType\": \"SessionType\", \"ActionParameters\": {\"SessionType\": "
    "\"Standard_Stream\", \"Properties\": null}},"
    "{\"ActionType\": \"KMSEncryption\", \"ActionParameters\": {\"KMSKeyId\": "
    "\"arn:aws:kms:us-east-1:111122223333:key/k\", \"Challenge\": \"q83vEjRWeJA=\"}}]}";

static void test_request_kms(void **state)
{
    (void)state;
    ssm_hs_request r;
    assert_int_equal(ssm_hs_request_parse(U8(kms_request), strlen(kms_request), &r), 0);
    assert_string_equal(r.agent_version, "3.3.987.0");
    assert_int_equal(r.n_actions, 2);
    assert_string_equal(r.actions[0].type, "SessionType");
    assert_true(r.actions[0].is_session_type);
    assert_false(r.actions[0].is_kms);
    assert_string_equal(r.actions[1].type, "KMSEncryption");
    assert_true(r.actions[1].is_kms);
    assert_false(r.actions[1].is_session_type);
    assert_string_equal(r.session_type, "Standard_Stream");
    assert_int_equal(r.kind, SSM_SESSION_SHELL);
    assert_string_equal(r.kms_key_id, "arn:aws:kms:us-east-1:111122223333:key/k");
    assert_string_equal(r.kms_challenge, "q83vEjRWeJA=");
    assert_string_equal(r.port.port_number, "");
    assert_string_equal(r.port.host, "");
    ssm_hs_request_free(&r);
    assert_null(r.agent_version);
}

static void parse_session_type(const char *type_json, ssm_hs_request *r)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"RequestedClientActions\":[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
             "{\"SessionType\":%s}}]}",
             type_json);
    assert_int_equal(ssm_hs_request_parse(U8(buf), strlen(buf), r), 0);
}

static void test_session_type_mapping(void **state)
{
    (void)state;
    static const struct {
        const char *json, *raw;
        enum ssm_session_kind kind;
    } cases[] = {
        {"\"Standard_Stream\"", "Standard_Stream", SSM_SESSION_SHELL},
        {"\"InteractiveCommands\"", "InteractiveCommands", SSM_SESSION_SHELL},
        {"\"NonInteractiveCommands\"", "NonInteractiveCommands", SSM_SESSION_SHELL},
        {"\"Port\"", "Port", SSM_SESSION_PORT},
        {"\"port\"", "port", SSM_SESSION_UNKNOWN}, /* values are case-sensitive */
        {"\"InteractiveCommand\"", "InteractiveCommand", SSM_SESSION_UNKNOWN},
        {"\"\"", "", SSM_SESSION_UNKNOWN},
        {"42", "", SSM_SESSION_UNKNOWN},
        {"null", "", SSM_SESSION_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ssm_hs_request r;
        parse_session_type(cases[i].json, &r);
        assert_string_equal(r.session_type, cases[i].raw);
        assert_int_equal(r.kind, cases[i].kind);
        assert_string_equal(r.agent_version, "");
        ssm_hs_request_free(&r);
    }
}

static void test_request_without_session_type(void **state)
{
    (void)state;
    static const char *reqs[] = {"{}", "{\"RequestedClientActions\": null}",
                                 "{\"RequestedClientActions\": {}}",
                                 "{\"AgentVersion\": 3, \"RequestedClientActions\": []}"};
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        ssm_hs_request r;
        assert_int_equal(ssm_hs_request_parse(U8(reqs[i]), strlen(reqs[i]), &r), 0);
        assert_int_equal(r.n_actions, 0);
        assert_null(r.session_type);
        assert_int_equal(r.kind, SSM_SESSION_UNKNOWN);
        assert_null(r.kms_key_id);
        assert_string_equal(r.agent_version, "");
        assert_string_equal(r.port.port_number, "");
        ssm_hs_request_free(&r);
    }
}

static void test_port_properties(void **state)
{
    (void)state;
    const char *req =
        "{\"agentversion\":\"3.3.1.0\",\"requestedclientactions\":[{\"actiontype\":\"SessionType\","
        "\"actionparameters\":{\"sessiontype\":\"Port\",\"properties\":{\"PortNumber\":\"22\","
        "\"localPortNumber\":\"2222\",\"localUnixSocket\":\"/tmp/s\",\"localConnectionType\":"
        "\"unix\",\"type\":\"LocalPortForwarding\",\"host\":\"db.internal\",\"extra\":{}}}}]}";
    ssm_hs_request r;
    assert_int_equal(ssm_hs_request_parse(U8(req), strlen(req), &r), 0);
    assert_string_equal(r.agent_version, "3.3.1.0");
    assert_int_equal(r.kind, SSM_SESSION_PORT);
    assert_string_equal(r.port.port_number, "22");
    assert_string_equal(r.port.local_port_number, "2222");
    assert_string_equal(r.port.local_unix_socket, "/tmp/s");
    assert_string_equal(r.port.local_connection_type, "unix");
    assert_string_equal(r.port.type, "LocalPortForwarding");
    assert_string_equal(r.port.host, "db.internal");
    ssm_hs_request_free(&r);

    /* Non-string values read as "" (what the official re-decode leaves). */
    req = "{\"RequestedClientActions\":[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
          "{\"SessionType\":\"Port\",\"Properties\":{\"portNumber\":22,\"localPortNumber\":null,"
          "\"type\":[\"x\"],\"host\":{\"a\":\"b\"},\"localUnixSocket\":true}}}]}";
    assert_int_equal(ssm_hs_request_parse(U8(req), strlen(req), &r), 0);
    assert_int_equal(r.kind, SSM_SESSION_PORT);
    assert_string_equal(r.port.port_number, "");
    assert_string_equal(r.port.local_port_number, "");
    assert_string_equal(r.port.type, "");
    assert_string_equal(r.port.host, "");
    assert_string_equal(r.port.local_unix_socket, "");
    ssm_hs_request_free(&r);

    /* Properties of a shell session are not port properties. */
    req = "{\"RequestedClientActions\":[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
          "{\"SessionType\":\"Standard_Stream\",\"Properties\":{\"portNumber\":\"22\"}}}]}";
    assert_int_equal(ssm_hs_request_parse(U8(req), strlen(req), &r), 0);
    assert_string_equal(r.port.port_number, "");
    ssm_hs_request_free(&r);

    /* Properties not an object. */
    req = "{\"RequestedClientActions\":[{\"ActionType\":\"SessionType\",\"ActionParameters\":"
          "{\"SessionType\":\"Port\",\"Properties\":\"portNumber=22\"}}]}";
    assert_int_equal(ssm_hs_request_parse(U8(req), strlen(req), &r), 0);
    assert_int_equal(r.kind, SSM_SESSION_PORT);
    assert_string_equal(r.port.port_number, "");
    ssm_hs_request_free(&r);
}

static void test_malformed_actions_kept(void **state)
{
    (void)state;
    const char *req = "{\"RequestedClientActions\":[42,{\"ActionType\":7},{},"
                      "{\"ActionType\":\"KMSEncryption\",\"ActionParameters\":{\"KMSKeyId\":5}},"
                      "{\"ActionType\":\"Future\"},"
                      "{\"ActionType\":\"SessionType\",\"ActionParameters\":\"Port\"}]}";
    ssm_hs_request r;
    assert_int_equal(ssm_hs_request_parse(U8(req), strlen(req), &r), 0);
    assert_int_equal(r.n_actions, 6);
    assert_string_equal(r.actions[0].type, "");
    assert_string_equal(r.actions[1].type, "");
    assert_string_equal(r.actions[2].type, "");
    assert_true(r.actions[3].is_kms);
    assert_string_equal(r.kms_key_id, "");
    assert_string_equal(r.kms_challenge, "");
    assert_string_equal(r.actions[4].type, "Future");
    assert_false(r.actions[4].is_kms || r.actions[4].is_session_type);
    assert_true(r.actions[5].is_session_type);
    assert_string_equal(r.session_type, "");
    assert_int_equal(r.kind, SSM_SESSION_UNKNOWN);
    ssm_hs_request_free(&r);
}

static void test_action_limit(void **state)
{
    (void)state;
    char buf[2048];
    for (int count = SSM_HS_MAX_ACTIONS; count <= SSM_HS_MAX_ACTIONS + 1; count++) {
        size_t len = (size_t)snprintf(buf, sizeof buf, "{\"RequestedClientActions\":[");
        for (int i = 0; i < count; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s{\"ActionType\":\"A%d\"}",
                                    i ? "," : "", i);
        snprintf(buf + len, sizeof buf - len, "]}");
        ssm_hs_request r;
        int rc = ssm_hs_request_parse(U8(buf), strlen(buf), &r);
        if (count <= SSM_HS_MAX_ACTIONS) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.n_actions, (size_t)count);
            assert_string_equal(r.actions[count - 1].type, "A7");
            ssm_hs_request_free(&r);
        } else {
            assert_int_equal(rc, -1);
            assert_null(r.agent_version);
            assert_int_equal(r.n_actions, 0);
        }
    }
}

static void test_hostile_requests(void **state)
{
    (void)state;
    ssm_hs_request r;
    static const char *bad[] = {
        "", "[]", "null", "\"x\"", "42", "{", "{\"AgentVersion\":\"1\"} x",
        "{\"AgentVersion\":\"1\"}{}", "{\"AgentVersion\":\"1\",}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ssm_hs_request_parse(U8(bad[i]), strlen(bad[i]), &r), -1);
        assert_null(r.agent_version);
    }
    assert_int_equal(ssm_hs_request_parse(NULL, 0, &r), -1);
    assert_int_equal(ssm_hs_request_parse(U8("{}"), 2, NULL), -1);
    /* A NUL byte inside the payload is not JSON (Go rejects it too). */
    assert_int_equal(ssm_hs_request_parse(U8("{}\0{}"), 5, &r), -1);
    /* Not NUL-terminated: only n bytes are read. */
    assert_int_equal(ssm_hs_request_parse(U8("{\"AgentVersion\":\"1\"}garbage"), 20, &r), 0);
    assert_string_equal(r.agent_version, "1");
    ssm_hs_request_free(&r);

    /* Deep nesting: rejected (cJSON's nesting limit), never a stack overflow. */
    size_t depth = 200000;
    char *deep = malloc(2 * depth + 32);
    assert_non_null(deep);
    size_t len = (size_t)sprintf(deep, "{\"AgentVersion\":");
    memset(deep + len, '[', depth);
    memset(deep + len + depth, ']', depth);
    deep[len + 2 * depth] = '}';
    assert_int_equal(ssm_hs_request_parse(U8(deep), len + 2 * depth + 1, &r), -1);
    free(deep);

    /* A huge string is carried through intact. */
    size_t big = 4u << 20;
    char *huge = malloc(big + 64);
    assert_non_null(huge);
    len = (size_t)sprintf(huge, "{\"AgentVersion\":\"");
    memset(huge + len, 'v', big);
    len += big;
    len += (size_t)sprintf(huge + len, "\"}");
    assert_int_equal(ssm_hs_request_parse(U8(huge), len, &r), 0);
    assert_int_equal(strlen(r.agent_version), big);
    ssm_hs_request_free(&r);
    free(huge);
}

static void test_duplicate_keys_last_wins(void **state)
{
    (void)state;
    const char *req = "{\"AgentVersion\":\"1.0\",\"agentVersion\":\"2.0\","
                      "\"RequestedClientActions\":[{\"ActionType\":\"SessionType\","
                      "\"ActionParameters\":{\"SessionType\":\"Port\"}},"
                      "{\"ActionType\":\"SessionType\",\"ActionParameters\":{\"SessionType\":"
                      "\"InteractiveCommands\"}}]}";
    ssm_hs_request r;
    assert_int_equal(ssm_hs_request_parse(U8(req), strlen(req), &r), 0);
    assert_string_equal(r.agent_version, "2.0");
    assert_int_equal(r.n_actions, 2);
    assert_string_equal(r.session_type, "InteractiveCommands");
    assert_int_equal(r.kind, SSM_SESSION_SHELL);
    assert_string_equal(r.port.port_number, "");
    ssm_hs_request_free(&r);
}

/* ---- HandshakeResponse building ---------------------------------------- */

static void test_response_kms_success(void **state)
{
    (void)state;
    ssm_hs_result res[2] = {
        {.type = "SessionType", .status = SSM_ACTION_SUCCESS, .error = ""},
        {.type = "KMSEncryption", .status = SSM_ACTION_SUCCESS, .error = "",
         .kms_ciphertext_b64 = "AQIDAHh+/w=="},
    };
    char *json = ssm_hs_response_build("1.2.677.0", res, 2);
    assert_string_equal(
        json, "{\"ClientVersion\":\"1.2.677.0\",\"ProcessedClientActions\":[{\"ActionType\":"
              "\"SessionType\",\"ActionStatus\":1,\"ActionResult\":null,\"Error\":\"\"},"
              "{\"ActionType\":\"KMSEncryption\",\"ActionStatus\":1,\"ActionResult\":"
              "{\"KMSCipherTextKey\":\"AQIDAHh+/w==\",\"KMSCipherTextHash\":null},\"Error\":\"\"}],"
              "\"Errors\":null}");
    free(json);

    res[1].challenge_ack = true;
    json = ssm_hs_response_build("1.2.896.0", res, 2);
    assert_string_equal(
        json, "{\"ClientVersion\":\"1.2.896.0\",\"ProcessedClientActions\":[{\"ActionType\":"
              "\"SessionType\",\"ActionStatus\":1,\"ActionResult\":null,\"Error\":\"\"},"
              "{\"ActionType\":\"KMSEncryption\",\"ActionStatus\":1,\"ActionResult\":"
              "{\"KMSCipherTextKey\":\"AQIDAHh+/w==\",\"KMSCipherTextHash\":null,"
              "\"ChallengeAcknowledgement\":true},\"Error\":\"\"}],\"Errors\":null}");
    free(json);
}

static void test_response_failures(void **state)
{
    (void)state;
    ssm_hs_result res[3] = {
        {.type = "SessionType", .status = SSM_ACTION_FAILED, .error = "Unknown session type Bogus"},
        {.type = "KMSEncryption", .status = SSM_ACTION_FAILED,
         .error = "Installed version of CLI does not support Session Manager encryption feature. "
                  "Please upgrade to the latest version of your CLI (e.g., AWS CLI).",
         .kms_ciphertext_b64 = "ignored-on-failure"},
        {.type = "Future", .status = SSM_ACTION_UNSUPPORTED, .error = NULL},
    };
    char *json = ssm_hs_response_build("1.2.896.0", res, 3);
    assert_string_equal(
        json,
        "{\"ClientVersion\":\"1.2.896.0\",\"ProcessedClientActions\":["
        "{\"ActionType\":\"SessionType\",\"ActionStatus\":2,\"ActionResult\":null,\"Error\":"
        "\"Failed to process action SessionType: Unknown session type Bogus\"},"
        "{\"ActionType\":\"KMSEncryption\",\"ActionStatus\":2,\"ActionResult\":null,\"Error\":"
        "\"Failed to process action KMSEncryption: Installed version of CLI does not support "
        "Session Manager encryption feature. Please upgrade to the latest version of your CLI "
        "(e.g., AWS CLI).\"},"
        "{\"ActionType\":\"Future\",\"ActionStatus\":3,\"ActionResult\":null,\"Error\":"
        "\"Unsupported action Future\"}],"
        "\"Errors\":[\"Unknown session type Bogus\",\"Installed version of CLI does not support "
        "Session Manager encryption feature. Please upgrade to the latest version of your CLI "
        "(e.g., AWS CLI).\",\"Unsupported action Future\"]}");
    free(json);
}

static void test_response_no_actions(void **state)
{
    (void)state;
    char *json = ssm_hs_response_build("1.2.896.0", NULL, 0);
    assert_string_equal(json, "{\"ClientVersion\":\"1.2.896.0\",\"ProcessedClientActions\":[],"
                              "\"Errors\":null}");
    free(json);
    assert_null(ssm_hs_response_build("1", NULL, 1));
}

static void test_response_go_escaping(void **state)
{
    (void)state;
    /* Go's json.Marshal: HTML-safe, short escapes, \u00xx for other controls,
     * DEL raw, U+2028/9 escaped, each invalid UTF-8 byte -> \ufffd. */
    ssm_hs_result res = {.type = "a<b>&\"\\\n\r\t\b\f\x01\x1f\x7f \xc3\xa9 \xe2\x80\xa8\xe2\x80\xa9 "
                                 "\xff \xed\xa0\x80 \xe0\x80\x80 \xf0\x9f\x98\x80 \xe2\x80",
                         .status = SSM_ACTION_SUCCESS};
    char *json = ssm_hs_response_build("v", &res, 1);
    assert_string_equal(
        json, "{\"ClientVersion\":\"v\",\"ProcessedClientActions\":[{\"ActionType\":"
              "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\x7f \xc3\xa9 "
              "\\u2028\\u2029 \\ufffd \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \xf0\x9f\x98\x80 "
              "\\ufffd\\ufffd\",\"ActionStatus\":1,\"ActionResult\":null,\"Error\":\"\"}],"
              "\"Errors\":null}");
    /* And cJSON reads it back to the same bytes where they were valid. */
    cJSON *back = cJSON_Parse(json);
    assert_non_null(back);
    cJSON_Delete(back);
    free(json);
}

static void test_response_roundtrip_through_parser(void **state)
{
    (void)state;
    /* A HandshakeResponse is itself valid JSON with the documented types. */
    ssm_hs_result res[2] = {
        {.type = "SessionType", .status = SSM_ACTION_SUCCESS},
        {.type = "KMSEncryption", .status = SSM_ACTION_SUCCESS, .kms_ciphertext_b64 = "QUJD",
         .challenge_ack = true},
    };
    char *json = ssm_hs_response_build("1.2.896.0", res, 2);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive(o, "ProcessedClientActions");
    assert_int_equal(cJSON_GetArraySize(acts), 2);
    const cJSON *kms = cJSON_GetArrayItem(acts, 1);
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(kms, "ActionResult");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "ChallengeAcknowledgement")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "Errors")));
    cJSON_Delete(o);
    free(json);
}

/* ---- HandshakeComplete --------------------------------------------------- */

static void test_handshake_complete(void **state)
{
    (void)state;
    static const struct {
        const char *json, *msg;
        int rc;
    } cases[] = {
        {"{\"HandshakeTimeToComplete\": 1234567890, \"CustomerMessage\": \"This session is "
         "encrypted using AWS KMS.\"}",
         "This session is encrypted using AWS KMS.", 0},
        {"{\"HandshakeTimeToComplete\": 42870264, \"CustomerMessage\": \"\"}", "", 0},
        {"{\"HandshakeTimeToComplete\": 1}", "", 0},
        {"{\"customermessage\": \"lower\"}", "lower", 0},
        {"{\"CustomerMessage\": 5}", "", 0},
        {"{\"CustomerMessage\": null}", "", 0},
        {"{\"CustomerMessage\": \"a\\r\\nb\"}", "a\r\nb", 0},
        {"[]", NULL, -1},
        {"", NULL, -1},
        {"{\"CustomerMessage\": \"x\"", NULL, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = (char *)"sentinel";
        assert_int_equal(ssm_hs_complete_parse(U8(cases[i].json), strlen(cases[i].json), &m),
                         cases[i].rc);
        if (cases[i].msg)
            assert_string_equal(m, cases[i].msg);
        else
            assert_null(m);
        free(m);
    }
    assert_int_equal(ssm_hs_complete_parse(U8("{}"), 2, NULL), -1);
}

/* ---- EncChallenge ------------------------------------------------------ */

static void test_challenge_build_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *json;
    } v[] = {
        {"", "{\"Challenge\":\"\"}"},
        {"f", "{\"Challenge\":\"Zg==\"}"},
        {"fo", "{\"Challenge\":\"Zm8=\"}"},
        {"foo", "{\"Challenge\":\"Zm9v\"}"},
        {"foob", "{\"Challenge\":\"Zm9vYg==\"}"},
        {"\xfb\xff\xbf", "{\"Challenge\":\"+/+/\"}"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *json = ssm_challenge_build(U8(v[i].raw), strlen(v[i].raw));
        assert_string_equal(json, v[i].json);
        uint8_t *bytes = NULL;
        size_t len = 99;
        assert_int_equal(ssm_challenge_parse(U8(json), strlen(json), &bytes, &len), 0);
        assert_int_equal(len, strlen(v[i].raw));
        assert_memory_equal(bytes, v[i].raw, len);
        free(bytes);
        free(json);
    }
    assert_null(ssm_challenge_build(NULL, 3));
}

static void test_challenge_roundtrip_all_lengths(void **state)
{
    (void)state;
    uint8_t raw[200];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof raw; n++) {
        char *json = ssm_challenge_build(raw, n);
        assert_non_null(json);
        assert_int_equal(strlen(json), 16 + (n + 2) / 3 * 4);
        uint8_t *bytes = NULL;
        size_t len = 0;
        assert_int_equal(ssm_challenge_parse(U8(json), strlen(json), &bytes, &len), 0);
        assert_int_equal(len, n);
        if (n)
            assert_memory_equal(bytes, raw, n);
        free(bytes);
        free(json);
    }
}

static void test_challenge_parse_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "{}", "{\"Challenge\": null}", "{\"Challenge\": 12}", "{\"Challenge\": [\"Zg==\"]}",
        "{\"Challenge\": \"Zg=\"}",   /* length not a multiple of 4 */
        "{\"Challenge\": \"Zg\"}",    /* unpadded */
        "{\"Challenge\": \"Z===\"}",  /* too much padding */
        "{\"Challenge\": \"Z=g=\"}",  /* padding in the middle */
        "{\"Challenge\": \"Zm9v\\nYg==\"}", "{\"Challenge\": \"Zm9-\"}", /* URL alphabet */
        "{\"Challenge\": \" Zm9v\"}", "[\"Zm9v\"]", "", "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *bytes = (uint8_t *)"x";
        size_t len = 7;
        assert_int_equal(ssm_challenge_parse(U8(bad[i]), strlen(bad[i]), &bytes, &len), -1);
        assert_null(bytes);
        assert_int_equal(len, 0);
    }
    uint8_t *bytes;
    size_t len;
    const char *lower = "{\"challenge\":\"Zm9v\"}";
    assert_int_equal(ssm_challenge_parse(U8(lower), strlen(lower), &bytes, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(bytes, "foo", 3);
    free(bytes);
    assert_int_equal(ssm_challenge_parse(U8(lower), strlen(lower), NULL, &len), -1);
}

/* ---- Size and channel_closed ------------------------------------------- */

static void test_size_body(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(ssm_size_body(buf, sizeof buf, 120, 40), 22);
    assert_string_equal(buf, "{\"cols\":120,\"rows\":40}");
    assert_int_equal(ssm_size_body(buf, sizeof buf, 300, 100), 23);
    assert_string_equal(buf, "{\"cols\":300,\"rows\":100}");
    assert_int_equal(ssm_size_body(buf, sizeof buf, 4294967295u, 0), 28);
    assert_string_equal(buf, "{\"cols\":4294967295,\"rows\":0}");
    /* exactly fitting needs room for the NUL */
    assert_int_equal(ssm_size_body(buf, 22, 120, 40), -1);
    assert_int_equal(ssm_size_body(buf, 23, 120, 40), 22);
    assert_int_equal(ssm_size_body(NULL, 64, 1, 1), -1);
    assert_int_equal(ssm_size_body(buf, 0, 1, 1), -1);
}

static void test_channel_closed_output(void **state)
{
    (void)state;
    static const struct {
        const char *json, *out;
    } cases[] = {
        {"{\"MessageId\": \"23320e87-6e86-4c9f-9b69-10622499a5e4\", \"CreatedDate\": "
         "\"2026-11-26T13:06:18.080Z\", \"DestinationId\": \"i-1\", \"SessionId\": \"s\", "
         "\"MessageType\": \"channel_closed\", \"SchemaVersion\": 1, \"Output\": \"\"}",
         ""},
        {"{\"Output\": \"Unable to start port forwarding: connection refused\"}",
         "Unable to start port forwarding: connection refused"},
        {"{\"SchemaVersion\": \"one\", \"MessageId\": 5, \"Output\": \"still read\"}", "still read"},
        {"{\"output\": \"lowercase\"}", "lowercase"},
        {"{\"Output\": 17}", ""},
        {"{\"Output\": null}", ""},
        {"{}", ""},
        {"plain text, not JSON", ""},
        {"[\"Output\"]", ""},
        {"", ""},
        {"{\"Output\": \"x\"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o = ssm_channel_closed_output(U8(cases[i].json), strlen(cases[i].json));
        assert_non_null(o);
        assert_string_equal(o, cases[i].out);
        free(o);
    }
    char *o = ssm_channel_closed_output(NULL, 0);
    assert_string_equal(o, "");
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_shell),
        cmocka_unit_test(test_fixture_port_mux),
        cmocka_unit_test(test_fixture_port_basic),
        cmocka_unit_test(test_fixture_stdio),
        cmocka_unit_test(test_official_response_bytes),
        cmocka_unit_test(test_request_kms),
        cmocka_unit_test(test_session_type_mapping),
        cmocka_unit_test(test_request_without_session_type),
        cmocka_unit_test(test_port_properties),
        cmocka_unit_test(test_malformed_actions_kept),
        cmocka_unit_test(test_action_limit),
        cmocka_unit_test(test_hostile_requests),
        cmocka_unit_test(test_duplicate_keys_last_wins),
        cmocka_unit_test(test_response_kms_success),
        cmocka_unit_test(test_response_failures),
        cmocka_unit_test(test_response_no_actions),
        cmocka_unit_test(test_response_go_escaping),
        cmocka_unit_test(test_response_roundtrip_through_parser),
        cmocka_unit_test(test_handshake_complete),
        cmocka_unit_test(test_challenge_build_vectors),
        cmocka_unit_test(test_challenge_roundtrip_all_lengths),
        cmocka_unit_test(test_challenge_parse_rejects),
        cmocka_unit_test(test_size_body),
        cmocka_unit_test(test_channel_closed_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
