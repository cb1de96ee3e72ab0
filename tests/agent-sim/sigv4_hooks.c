/* Connects the SigV4 verifier to the fake API and the websocket upgrade:
 * every signed request is verified and recorded; with --require-sigv4 an
 * unsigned or badly signed one is refused. */
#include <string.h>

#include "sigv4.h"
#include "sim.h"

static const char *expected_service(const char *amz_target)
{
    if (strncmp(amz_target, "TrentService.", 13) == 0)
        return "kms";
    return "ssm";
}

int sim_api_authorize(struct lws *wsi, const char *amz_target, const char *body, size_t body_len)
{
    struct sim_sigv4_result r;
    sim_sigv4_verify(wsi, "POST", body ? body : "", body ? body_len : 0, 0, &r);
    if (r.ok && strcmp(r.service, expected_service(amz_target)) != 0) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "service", r.service);
        cJSON_AddStringToObject(f, "expected", expected_service(amz_target));
        sim_record_global("sigv4_wrong_service", f);
        r.ok = 0;
    }
    return g_cfg.require_sigv4 && !r.ok;
}

const char *sim_ws_authorize(struct lws *wsi)
{
    struct sim_sigv4_result r;
    sim_sigv4_verify(wsi, "GET", NULL, 0, 1, &r);
    if (!g_cfg.require_sigv4)
        return NULL;
    if (!r.ok)
        return r.error ? r.error : "bad signature";
    if (strcmp(r.service, "ssmmessages") != 0)
        return "upgrade not signed for ssmmessages";
    return NULL;
}
