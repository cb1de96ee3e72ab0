/* "Sim-Echo": a Standard_Stream session that sends every client Output payload
 * back byte for byte. Backpressure: when the reliable sender is full the input
 * is reported not ready (no ack), so the client's retransmission paces it. On
 * the legacy path a banner line goes first so the client can detect the
 * session type (§8.5); with --handshake-shell there is no banner. */
#include <string.h>

#include "sim.h"

#define ECHO_BANNER "Sim-Echo ready\r\n"

static int echo_start(sim_session *s, void **state)
{
    *state = NULL;
    if (s->hs_start_ms == 0) {
        const char *banner = sim_param(s, "banner", ECHO_BANNER);
        if (banner[0] && sim_send(s, SSM_PT_OUTPUT, (const uint8_t *)banner, strlen(banner)) != SIM_SEND_OK)
            return -1;
    }
    return 0;
}

static enum sim_input_result echo_input(sim_session *s, void *state, uint32_t ptype, const uint8_t *p,
                                        size_t n)
{
    (void)state;
    if (ptype != SSM_PT_OUTPUT || n == 0)
        return SIM_INPUT_OK;
    size_t chunks = (n + SIM_MAX_PAYLOAD - 1) / SIM_MAX_PAYLOAD;
    if (sim_send_room(s) < chunks) {
        sim_want_writable(s);
        return SIM_INPUT_NOT_READY;
    }
    for (size_t off = 0; off < n; off += SIM_MAX_PAYLOAD) {
        size_t k = n - off < SIM_MAX_PAYLOAD ? n - off : SIM_MAX_PAYLOAD;
        if (sim_send(s, SSM_PT_OUTPUT, p + off, k) != SIM_SEND_OK)
            return SIM_INPUT_ERROR;
    }
    return SIM_INPUT_OK;
}

static const char *const echo_docs[] = {"Sim-Echo", NULL};

static const sim_behaviour echo_behaviour = {
    .name = "echo",
    .session_type = "Standard_Stream",
    .documents = echo_docs,
    .handshake = SIM_HANDSHAKE_IF_FLAG,
    .start = echo_start,
    .on_input = echo_input,
};

SIM_REGISTER_BEHAVIOUR(echo_behaviour)
