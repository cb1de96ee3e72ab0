/* Dotted version strings and the gates both sides apply (PROTOCOL.md §8.8). */
#ifndef SSM_VERSION_H
#define SSM_VERSION_H

#include <stdbool.h>

/* Official client-side gate rule: both versions must have the same number of
 * all-numeric components; true iff v > threshold. Anything else: false. */
bool ssm_version_gt_strict(const char *v, const char *threshold);

/* Numeric component-wise compare, missing components are 0. Returns <0, 0,
 * >0; non-numeric input compares as 0 components. */
int ssm_version_cmp(const char *a, const char *b);

#define SSM_AGENT_GATE_TERMINATE_FLAG "2.3.722.0" /* basic mode: flag instead of API */
#define SSM_AGENT_GATE_SMUX "3.0.196.0"           /* mux port forwarding */
#define SSM_AGENT_GATE_SMUX_NO_KEEPALIVE "3.1.1511.0"

#endif
