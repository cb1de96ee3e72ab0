/* What Go's json.Unmarshal(data, &ssm.StartSessionOutput{}) returns, for the
 * official plugin's "Cannot perform start session: <err>" line (PROTOCOL.md
 * §1.3, docs/cli.md §1). Pure: no I/O, no allocation.
 *
 * Two passes, as Go: the whole input is checked by a byte-for-byte model of
 * encoding/json's scanner (its texts, including the space it feeds at end of
 * input and the 10000 nesting limit), then the value is walked like the
 * decoder: the first value of the wrong type gives Go's UnmarshalTypeError
 * text. An error text shows at most one input byte (Go-quoted), never more. */
#ifndef SSM_GOJSON_ERR_H
#define SSM_GOJSON_ERR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which ssm.StartSessionOutput: aws-sdk-go v1 (up to 1.2.792.0) has only the
 * three strings; aws-sdk-go-v2 (1.2.804.0 on) adds ResultMetadata, a struct
 * of type middleware.Metadata, so that key takes objects and null only. */
enum ssm_gojson_sdk {
    SSM_GOJSON_SDK_V1 = 1,
    SSM_GOJSON_SDK_V2 = 2,
};

enum ssm_gojson_field {
    SSM_GOJSON_SESSION_ID = 0,
    SSM_GOJSON_STREAM_URL = 1,
    SSM_GOJSON_TOKEN_VALUE = 2,
    SSM_GOJSON_NFIELDS = 3,
};

/* Where the value Go keeps for one *string field is: the string literal,
 * quotes included. len == 0 means a nil pointer (key absent, or its last
 * value was null): the official plugin panics on it. */
typedef struct ssm_gojson_span {
    size_t off, len;
} ssm_gojson_span;

typedef struct ssm_gojson_result {
    ssm_gojson_span field[SSM_GOJSON_NFIELDS];
    bool top_null; /* the whole input is `null` (Go: no error, all nil) */
} ssm_gojson_result;

/* Longest text ssm_gojson_start_session writes, with its NUL. */
#define SSM_GOJSON_MSG_MAX 128

/* Returns 0 when Go's Unmarshal returns nil (then *res says what it kept),
 * -1 with Go's error text in msg (truncated to cap) otherwise. */
int ssm_gojson_start_session(const char *data, size_t len, enum ssm_gojson_sdk sdk,
                             ssm_gojson_result *res, char *msg, size_t cap);

/* Go's unquoting of a string literal (quotes included, already valid):
 * escapes decoded, a lone or broken surrogate escape and each byte of
 * invalid UTF-8 become U+FFFD. out needs 3 * len bytes; returns the length
 * written (no NUL added). */
size_t ssm_gojson_unquote(const char *lit, size_t len, char *out);

/* Go's quoteChar(c) of encoding/json: the byte as a Go rune literal, e.g.
 * 'x', '\'', '"', '\\', '\n', '\x01', '\u0080', 'é'. out needs 9 bytes;
 * returns the length written (NUL added). */
size_t ssm_gojson_quote_char(uint8_t c, char *out);

#endif
