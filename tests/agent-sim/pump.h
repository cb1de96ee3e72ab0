/* Reads a process fd (pty master or pipe) into sequenced output payloads of at
 * most 1024 bytes, pausing the fd while the reliable sender is full. */
#ifndef SIM_PUMP_H
#define SIM_PUMP_H

#include <stdint.h>

#include "behaviour.h"

struct sim_pump;
typedef void (*sim_pump_event)(struct sim_pump *p, void *user);

struct sim_pump {
    sim_session *s;
    int fd;
    uint32_t ptype;
    int watching, paused, hup, eof;
    int utf8;            /* shell output: never end a chunk inside a UTF-8 sequence */
    uint8_t carry[3];    /* held-back start of a split sequence */
    size_t carry_len;
    sim_pump_event on_eof;     /* read side finished (EOF/EIO) */
    sim_pump_event on_pollout; /* fd writable (after sim_pump_want_pollout) */
    void *user;
};

/* fd must stay open until sim_pump_stop(); it is made non-blocking. */
int sim_pump_start(struct sim_pump *p, sim_session *s, int fd, uint32_t ptype, sim_pump_event on_eof,
                   sim_pump_event on_pollout, void *user);
/* Enables the agent's UTF-8 boundary preservation for pty output (§7.8). */
void sim_pump_utf8(struct sim_pump *p, int on);
/* Call from the behaviour's on_writable(). */
void sim_pump_resume(struct sim_pump *p);
void sim_pump_want_pollout(struct sim_pump *p);
void sim_pump_stop(struct sim_pump *p);

#endif
