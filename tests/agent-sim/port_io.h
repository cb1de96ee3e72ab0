/* Simulator port behaviours: a growable byte queue and raw fds on the
 * simulator's loop (its own lws vhost, so any number of destination sockets
 * per session; the core's sim_fd_watch() is capped per session). */
#ifndef SIM_PORT_IO_H
#define SIM_PORT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "behaviour.h"

typedef struct pq {
    uint8_t *p;
    size_t off, len, cap; /* data is p[off .. off+len) */
} pq;

int pq_append(pq *q, const void *p, size_t n);
void pq_consume(pq *q, size_t n);
void pq_free(pq *q);

typedef struct pio pio;
enum { PIO_IN = 1, PIO_OUT = 2, PIO_HUP = 3 };
typedef void (*pio_cb)(void *user, pio *io, int ev);

/* Adopts fd (non-blocking); lws owns it from now on. NULL on failure (fd closed). */
pio *pio_adopt(sim_session *s, int fd, pio_cb cb, void *user);
int pio_fd(const pio *io);
void pio_read_enable(pio *io, bool on);
void pio_want_write(pio *io);
/* Closes the fd (peer sees EOF at once); no more callbacks. */
void pio_close(pio *io);

/* Blocking loopback dial of host:port (getaddrinfo, every address tried).
 * Returns a non-blocking connected fd or -1. */
int pio_dial(const char *host, const char *port);

#endif
