/* A precise one-shot timer on the lws loop, backed by a timerfd.
 *
 * Why not lws_sul: lws 4.1 computes its poll() timeout with a floor division
 * to milliseconds, so a timer due in less than a millisecond makes the loop
 * call poll(0) until it is ripe. A timer re-armed every millisecond or two
 * (upload pacing, retransmission) then busy-polls most of the time. A
 * timerfd wakes poll() exactly when it expires. */
#ifndef SSM_PTIMER_H
#define SSM_PTIMER_H

#include <stdint.h>

struct lws_vhost;
struct lws_protocols;
typedef struct ssm_ptimer ssm_ptimer;
typedef void (*ssm_ptimer_cb)(void *user);

/* The protocol the timer's descriptor is adopted with: list it in the
 * vhost's protocols. */
const struct lws_protocols *ssm_ptimer_protocol(void);

ssm_ptimer *ssm_ptimer_new(struct lws_vhost *vh, ssm_ptimer_cb cb, void *user);
/* (Re)arms to fire once after delay_ms (0: on the next loop turn). */
void ssm_ptimer_arm(ssm_ptimer *t, uint64_t delay_ms);
/* Makes sure it fires within delay_ms: keeps an armed expiry that is sooner
 * (the callback then finds nothing due and re-arms), so a caller re-arming
 * on every event costs no syscall while the deadline only moves later. */
void ssm_ptimer_arm_within(ssm_ptimer *t, uint64_t delay_ms);
void ssm_ptimer_cancel(ssm_ptimer *t);
/* Disarms and releases the timer (its descriptor closes with its wsi). */
void ssm_ptimer_free(ssm_ptimer *t);

#endif
