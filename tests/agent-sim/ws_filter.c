/* Decides, before the websocket upgrade completes, whether a data-channel
 * connection is refused: a stale cell-number (--resume-new-cell) or, with
 * --require-sigv4, a missing or bad signature. */
#include <string.h>

#include "sim.h"

#define DATA_CHANNEL_PREFIX "/v1/data-channel/"

/* lws decodes the query: a raw '+' arrives as ' ', so treat them as equal. */
static int cell_equal(const char *want, const char *got)
{
    for (; *want && *got; want++, got++) {
        char w = *want == '+' ? ' ' : *want, g = *got == '+' ? ' ' : *got;
        if (w != g)
            return 0;
    }
    return *want == *got;
}

static sim_session *session_of(struct lws *wsi)
{
    char uri[256], sid[64];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0)
        return NULL;
    if (strncmp(uri, DATA_CHANNEL_PREFIX, strlen(DATA_CHANNEL_PREFIX)) != 0)
        return NULL;
    const char *id = uri + strlen(DATA_CHANNEL_PREFIX);
    size_t n = strcspn(id, "?");
    if (n >= sizeof sid)
        return NULL;
    memcpy(sid, id, n);
    sid[n] = '\0';
    return sim_session_get(sid);
}

const char *sim_ws_filter(struct lws *wsi)
{
    const char *why = sim_ws_authorize(wsi);
    if (why)
        return why;
    if (!g_cfg.resume_new_cell)
        return NULL;
    sim_session *s = session_of(wsi);
    if (s == NULL)
        return NULL; /* OpenDataChannel reports "session not found" */
    char arg[96];
    const char *cell = lws_get_urlarg_by_name(wsi, "cell-number=", arg, (int)sizeof arg);
    if (cell == NULL)
        return "no cell-number";
    return cell_equal(s->cell, cell) ? NULL : "stale cell-number";
}
