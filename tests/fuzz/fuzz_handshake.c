/* libFuzzer target: arbitrary agent bytes into the handshake parsers
 * (HandshakeRequest, HandshakeComplete, EncChallengeRequest, channel_closed),
 * with invariants: every built response is valid JSON that echoes each
 * action, and a parsed challenge re-encodes to the same bytes. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ssm_handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_valid_json(const char *json, size_t want_actions)
{
    if (!json)
        return; /* out of memory only */
    cJSON *o = cJSON_Parse(json);
    if (!o)
        abort();
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive(o, "ProcessedClientActions");
    if (!cJSON_IsArray(acts) || (size_t)cJSON_GetArraySize(acts) != want_actions)
        abort();
    cJSON_Delete(o);
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    ssm_hs_request r;
    if (ssm_hs_request_parse(data, size, &r) != 0)
        return;
    if (r.n_actions > SSM_HS_MAX_ACTIONS || !r.agent_version || !r.port.port_number)
        abort();
    ssm_hs_result res[SSM_HS_MAX_ACTIONS];
    for (size_t i = 0; i < r.n_actions; i++) {
        memset(&res[i], 0, sizeof res[i]);
        res[i].type = r.actions[i].type;
        res[i].error = r.agent_version; /* attacker-chosen text through the escaper */
        res[i].status = (int)(i % 3) + 1;
        if (r.actions[i].is_kms) {
            if (!r.kms_key_id || !r.kms_challenge)
                abort();
            res[i].kms_ciphertext_b64 = r.kms_key_id;
            res[i].challenge_ack = r.kms_challenge[0] != '\0';
        }
    }
    char *json = ssm_hs_response_build(r.session_type ? r.session_type : "", res, r.n_actions);
    check_valid_json(json, r.n_actions);
    free(json);
    ssm_hs_request_free(&r);
}

static void fuzz_challenge(const uint8_t *data, size_t size)
{
    uint8_t *bytes = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    if (ssm_challenge_parse(data, size, &bytes, &len) != 0)
        return;
    char *json = ssm_challenge_build(bytes, len);
    if (json) {
        if (ssm_challenge_parse((const uint8_t *)json, strlen(json), &again, &len2) != 0 ||
            len2 != len || (len && memcmp(bytes, again, len) != 0))
            abort();
        free(again);
        free(json);
    }
    free(bytes);
}

/* The raw input as a string value: the escaper must always emit valid JSON. */
static void fuzz_escaper(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    ssm_hs_result res = {.type = s, .status = SSM_ACTION_FAILED, .error = s};
    char *json = ssm_hs_response_build(s, &res, 1);
    check_valid_json(json, 1);
    free(json);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_request(data, size);
    fuzz_challenge(data, size);
    fuzz_escaper(data, size);

    char *cm = NULL;
    if (ssm_hs_complete_parse(data, size, &cm) == 0 && !cm)
        abort();
    free(cm);
    free(ssm_channel_closed_output(data, size));
    return 0;
}
