/* The simulator's own smux v1 server side (deliberately not protocol/smux.c,
 * so a shared misunderstanding cannot hide): whole frames are parsed from an
 * accumulation buffer; frames to send are appended to a byte queue. */
#ifndef SIM_SMUX_SERVER_H
#define SIM_SMUX_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "port_io.h"

enum { SMUXS_SYN = 0, SMUXS_FIN = 1, SMUXS_PSH = 2, SMUXS_NOP = 3, SMUXS_UPD = 4 };
#define SMUXS_MAX_FRAME 32768u

typedef struct smuxs_ops {
    void (*on_syn)(void *user, uint32_t sid);
    void (*on_data)(void *user, uint32_t sid, const uint8_t *p, size_t n);
    void (*on_fin)(void *user, uint32_t sid);
} smuxs_ops;

typedef struct smuxs {
    smuxs_ops ops;
    void *user;
    pq in;          /* bytes not yet forming a whole frame */
    uint64_t frames_in, nops_in;
    int broken;     /* protocol error seen */
} smuxs;

void smuxs_init(smuxs *m, const smuxs_ops *ops, void *user);
void smuxs_free(smuxs *m);
/* Returns 0, or -1 on a protocol error (bad version / command). */
int smuxs_feed(smuxs *m, const uint8_t *p, size_t n);
/* Appends one frame (PSH data split at SMUXS_MAX_FRAME) to q. */
int smuxs_put(pq *q, uint8_t cmd, uint32_t sid, const uint8_t *data, size_t n);

#endif
