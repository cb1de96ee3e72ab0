/* stdin and stdout adopted into the lws loop as raw files.
 *
 * stdout: every byte the plugin writes (payloads and user texts, in order)
 * goes through one bounded ring written on POLLOUT, so a slow reader
 * back-pressures the channel instead of growing memory. stdin: read on
 * POLLIN in chunks of at most 1024 bytes; pausable. */
#ifndef SSM_STDIO_FD_H
#define SSM_STDIO_FD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lws_vhost;
struct lws_protocols;

#define SSM_STDOUT_RING_DEFAULT (256u * 1024u)
#define SSM_STDIN_CHUNK 1024u

/* The lws protocol both adopted fds use (name "ssm-stdio"). */
const struct lws_protocols *ssm_stdio_protocol(void);

/* Allocates the ring (cap bytes) and adopts fd 1 (O_NONBLOCK, restored by
 * ssm_stdio_restore). Returns 0 or -1. */
int ssm_stdout_init(struct lws_vhost *vh, size_t cap);
/* Free bytes in the ring. */
size_t ssm_stdout_space(void);
/* All or nothing: 0 when queued, -1 when it does not fit (nothing queued;
 * the drain callback fires once there is room again). */
int ssm_stdout_write(const void *p, size_t n);
/* For user-visible texts: queues what fits and writes the rest blocking, so
 * texts are never lost and stay in order. */
void ssm_stdout_write_text(const void *p, size_t n);
/* Called (on the loop) when a refused write could fit again. */
void ssm_stdout_on_drain(void (*cb)(void *user), void *user);
bool ssm_stdout_empty(void);
/* stdout failed (EPIPE: the reader went away); output is being discarded. */
bool ssm_stdout_broken(void);
/* Writes out whatever is queued, waiting at most timeout_ms on a stuck
 * reader. Used on the way out. */
void ssm_stdout_flush_blocking(int timeout_ms);

typedef struct ssm_stdin_ops {
    /* One read; returns nothing: pause with ssm_stdin_pause() if needed. */
    void (*on_data)(void *user, const uint8_t *p, size_t n);
    /* EOF (err 0) or read error (errno). Reading has stopped. */
    void (*on_eof)(void *user, int err);
} ssm_stdin_ops;

/* Adopts fd 0 and starts reading. Returns 0 or -1. */
int ssm_stdin_start(struct lws_vhost *vh, const ssm_stdin_ops *ops, void *user);
void ssm_stdin_pause(bool paused);
/* Stops reading for good (no more callbacks). */
void ssm_stdin_stop(void);

/* Restores the original fd flags of stdin/stdout (atexit-safe, idempotent). */
void ssm_stdio_restore(void);

#endif
