/* UUID text form <-> bytes (canonical RFC 4122 order). Generation is the
 * caller's job (it needs an RNG, which is I/O). */
#ifndef SSM_UUID_H
#define SSM_UUID_H

#include <stdint.h>

#define SSM_UUID_STRLEN 36

/* Writes 36 lowercase hex chars with hyphens plus NUL. */
void ssm_uuid_format(const uint8_t id[16], char out[SSM_UUID_STRLEN + 1]);
/* Returns 0 on success, -1 if s is not a UUID string. */
int ssm_uuid_parse(const char *s, uint8_t id[16]);
/* Turns 16 random bytes into a version-4, RFC 4122 variant UUID. */
void ssm_uuid_v4_from_random(uint8_t id[16]);

#endif
