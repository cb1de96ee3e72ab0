/* See gojson_err.h. The scanner below is a state-for-state model of Go's
 * encoding/json scanner (Go 1.19 to 1.25 share it), so every error names the
 * same byte and context as Go's SyntaxError. */
#include "gojson_err.h"

#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 10000 /* encoding/json maxNestingDepth */

enum st {
    S_BEGIN_VALUE_OR_EMPTY, /* after '[' */
    S_BEGIN_VALUE,
    S_BEGIN_STRING_OR_EMPTY, /* after '{' */
    S_BEGIN_STRING,          /* after ',' in an object */
    S_END_VALUE,
    S_END_TOP,
    S_IN_STRING,
    S_IN_STRING_ESC,
    S_ESC_U, /* the 4 hex digits of \u: S_ESC_U + digits read so far */
    S_ESC_U1,
    S_ESC_U12,
    S_ESC_U123,
    S_NEG,
    S_1, /* integer part started with 1-9 */
    S_0,
    S_DOT,
    S_DOT0,
    S_E,
    S_E_SIGN,
    S_E0,
    S_LITERAL, /* inside true/false/null: lit + lit_pos */
};

enum ps { P_OBJECT_KEY, P_OBJECT_VALUE, P_ARRAY_VALUE };

typedef struct scanner {
    enum st st;
    const char *lit; /* "true", "false" or "null" while in S_LITERAL */
    size_t lit_pos;
    size_t depth;
    enum ps top;                            /* parse state of the innermost container */
    uint8_t is_object[(MAX_DEPTH + 7) / 8]; /* container kind per level, to pop to */
    bool end_top, failed;
    char *msg;
    size_t cap;
} scanner;

static const char hexdig[] = "0123456789abcdef";

size_t ssm_gojson_quote_char(uint8_t c, char *out)
{
    size_t n = 0;
    out[n++] = '\'';
    if (c == '\'' || c == '\\') {
        out[n++] = '\\';
        out[n++] = (char)c;
    } else if (c == '"' || (c >= 0x20 && c < 0x7f)) {
        out[n++] = (char)c;
    } else if (c >= 0xa1 && c != 0xad) {
        /* Printable Latin-1: Go shows the rune itself, in UTF-8. */
        out[n++] = (char)(0xc0 | (c >> 6));
        out[n++] = (char)(0x80 | (c & 0x3f));
    } else {
        static const char named[] = "\a\b\f\n\r\t\v";
        static const char letter[] = "abfnrtv";
        const char *p = c ? strchr(named, c) : NULL;
        out[n++] = '\\';
        if (p) {
            out[n++] = letter[p - named];
        } else if (c < 0x80) { /* other controls and DEL */
            out[n++] = 'x';
            out[n++] = hexdig[c >> 4];
            out[n++] = hexdig[c & 15];
        } else { /* C1 controls, NBSP, soft hyphen */
            out[n++] = 'u';
            out[n++] = '0';
            out[n++] = '0';
            out[n++] = hexdig[c >> 4];
            out[n++] = hexdig[c & 15];
        }
    }
    out[n++] = '\'';
    out[n] = '\0';
    return n;
}

static void fail(scanner *s, uint8_t c, const char *context)
{
    char q[9];
    ssm_gojson_quote_char(c, q);
    snprintf(s->msg, s->cap, "invalid character %s %s", q, context);
    s->failed = true;
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static void set_kind(scanner *s, size_t level, bool object)
{
    uint8_t bit = (uint8_t)(1u << (level & 7));
    if (object)
        s->is_object[level >> 3] |= bit;
    else
        s->is_object[level >> 3] &= (uint8_t)~bit;
}

static void push(scanner *s, uint8_t c, bool object)
{
    if (s->depth >= MAX_DEPTH) {
        fail(s, c, "exceeded max depth");
        return;
    }
    set_kind(s, s->depth, object);
    s->depth++;
    s->top = object ? P_OBJECT_KEY : P_ARRAY_VALUE;
}

/* A container closed: back in the parent's value, or at the top. */
static void pop(scanner *s)
{
    s->depth--;
    if (s->depth == 0) {
        s->st = S_END_TOP;
        s->end_top = true;
        return;
    }
    size_t level = s->depth - 1;
    s->top = (s->is_object[level >> 3] >> (level & 7)) & 1 ? P_OBJECT_VALUE : P_ARRAY_VALUE;
    s->st = S_END_VALUE;
}

static void step(scanner *s, uint8_t c);

static void end_top(scanner *s, uint8_t c)
{
    if (!is_space(c))
        fail(s, c, "after top-level value");
}

static void end_value(scanner *s, uint8_t c)
{
    if (s->depth == 0) {
        s->st = S_END_TOP;
        s->end_top = true;
        end_top(s, c);
        return;
    }
    if (is_space(c)) {
        s->st = S_END_VALUE;
        return;
    }
    switch (s->top) {
    case P_OBJECT_KEY:
        if (c == ':') {
            s->top = P_OBJECT_VALUE;
            s->st = S_BEGIN_VALUE;
        } else {
            fail(s, c, "after object key");
        }
        return;
    case P_OBJECT_VALUE:
        if (c == ',') {
            s->top = P_OBJECT_KEY;
            s->st = S_BEGIN_STRING;
        } else if (c == '}') {
            pop(s);
        } else {
            fail(s, c, "after object key:value pair");
        }
        return;
    case P_ARRAY_VALUE:
        if (c == ',')
            s->st = S_BEGIN_VALUE;
        else if (c == ']')
            pop(s);
        else
            fail(s, c, "after array element");
        return;
    }
}

static void begin_value(scanner *s, uint8_t c)
{
    if (is_space(c))
        return;
    switch (c) {
    case '{':
        s->st = S_BEGIN_STRING_OR_EMPTY;
        push(s, c, true);
        return;
    case '[':
        s->st = S_BEGIN_VALUE_OR_EMPTY;
        push(s, c, false);
        return;
    case '"':
        s->st = S_IN_STRING;
        return;
    case '-':
        s->st = S_NEG;
        return;
    case '0':
        s->st = S_0;
        return;
    case 't':
    case 'f':
    case 'n':
        s->st = S_LITERAL;
        s->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        s->lit_pos = 1;
        return;
    }
    if (c >= '1' && c <= '9') {
        s->st = S_1;
        return;
    }
    fail(s, c, "looking for beginning of value");
}

static void in_literal(scanner *s, uint8_t c)
{
    char want = s->lit[s->lit_pos];
    if ((uint8_t)want == c) {
        if (s->lit[++s->lit_pos] == '\0')
            s->st = S_END_VALUE;
        return;
    }
    char context[40];
    snprintf(context, sizeof context, "in literal %s (expecting '%c')", s->lit, want);
    fail(s, c, context);
}

/* After the integer part (state0 in Go): '.', an exponent, or the end. */
static void after_int(scanner *s, uint8_t c)
{
    if (c == '.')
        s->st = S_DOT;
    else if (c == 'e' || c == 'E')
        s->st = S_E;
    else
        end_value(s, c);
}

static void step(scanner *s, uint8_t c)
{
    switch (s->st) {
    case S_BEGIN_VALUE_OR_EMPTY:
        if (is_space(c))
            return;
        if (c == ']')
            end_value(s, c);
        else
            begin_value(s, c);
        return;
    case S_BEGIN_VALUE:
        begin_value(s, c);
        return;
    case S_BEGIN_STRING_OR_EMPTY:
        if (is_space(c))
            return;
        if (c == '}') {
            s->top = P_OBJECT_VALUE;
            end_value(s, c);
            return;
        }
        /* fall through */
    case S_BEGIN_STRING:
        if (is_space(c))
            return;
        if (c == '"')
            s->st = S_IN_STRING;
        else
            fail(s, c, "looking for beginning of object key string");
        return;
    case S_END_VALUE:
        end_value(s, c);
        return;
    case S_END_TOP:
        end_top(s, c);
        return;
    case S_IN_STRING:
        if (c == '"')
            s->st = S_END_VALUE;
        else if (c == '\\')
            s->st = S_IN_STRING_ESC;
        else if (c < 0x20)
            fail(s, c, "in string literal");
        return;
    case S_IN_STRING_ESC:
        if (c == 'u')
            s->st = S_ESC_U;
        else if (c && strchr("bfnrt\\/\"", c))
            s->st = S_IN_STRING;
        else
            fail(s, c, "in string escape code");
        return;
    case S_ESC_U:
    case S_ESC_U1:
    case S_ESC_U12:
    case S_ESC_U123:
        if (!is_hex(c))
            fail(s, c, "in \\u hexadecimal character escape");
        else
            s->st = s->st == S_ESC_U123 ? S_IN_STRING : (enum st)(s->st + 1);
        return;
    case S_NEG:
        if (c == '0')
            s->st = S_0;
        else if (c >= '1' && c <= '9')
            s->st = S_1;
        else
            fail(s, c, "in numeric literal");
        return;
    case S_1:
        if (is_digit(c))
            return;
        after_int(s, c);
        return;
    case S_0:
        after_int(s, c);
        return;
    case S_DOT:
        if (is_digit(c))
            s->st = S_DOT0;
        else
            fail(s, c, "after decimal point in numeric literal");
        return;
    case S_DOT0:
        if (is_digit(c))
            return;
        if (c == 'e' || c == 'E')
            s->st = S_E;
        else
            end_value(s, c);
        return;
    case S_E:
        if (c == '+' || c == '-') {
            s->st = S_E_SIGN;
            return;
        }
        /* fall through */
    case S_E_SIGN:
        if (is_digit(c))
            s->st = S_E0;
        else
            fail(s, c, "in exponent of numeric literal");
        return;
    case S_E0:
        if (!is_digit(c))
            end_value(s, c);
        return;
    case S_LITERAL:
        in_literal(s, c);
        return;
    }
}

/* Go's checkValid: every byte, then end of input, which Go handles by
 * feeding one space (so "tru" fails on ' ', "[1" runs out). */
static int check_valid(scanner *s, const uint8_t *d, size_t len)
{
    for (size_t i = 0; i < len && !s->failed; i++)
        step(s, d[i]);
    if (s->failed)
        return -1;
    if (s->end_top)
        return 0;
    step(s, ' ');
    if (s->end_top && !s->failed)
        return 0;
    if (!s->failed)
        snprintf(s->msg, s->cap, "unexpected end of JSON input");
    return -1;
}

/* ---- the decoder's walk over input already known to be valid ---- */

static size_t skip_space(const uint8_t *d, size_t len, size_t i)
{
    while (i < len && is_space(d[i]))
        i++;
    return i;
}

/* i is at the opening quote; returns the index after the closing one. */
static size_t skip_string(const uint8_t *d, size_t len, size_t i)
{
    for (i++; i < len && d[i] != '"'; i++)
        if (d[i] == '\\')
            i++;
    return i + 1;
}

static size_t skip_value(const uint8_t *d, size_t len, size_t i)
{
    if (d[i] == '"')
        return skip_string(d, len, i);
    if (d[i] != '{' && d[i] != '[') {
        while (i < len && !is_space(d[i]) && d[i] != ',' && d[i] != ']' && d[i] != '}')
            i++;
        return i;
    }
    size_t depth = 0;
    while (i < len) {
        uint8_t c = d[i];
        if (c == '"') {
            i = skip_string(d, len, i);
            continue;
        }
        i++;
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            break;
    }
    return i;
}

static const char *kind_of(uint8_t c)
{
    switch (c) {
    case '{':
        return "object";
    case '[':
        return "array";
    case '"':
        return "string";
    case 't':
    case 'f':
        return "bool";
    case 'n':
        return "null";
    default:
        return "number";
    }
}

/* Go's utf8.DecodeRune: a rune and its size, or U+FFFD and 1 for any
 * malformed, overlong, surrogate or out-of-range sequence. */
static uint32_t decode_utf8(const uint8_t *s, size_t n, size_t *size)
{
    uint8_t b0 = s[0];
    *size = 1;
    if (b0 < 0x80)
        return b0;
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf;
    uint32_t r;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        need = 2;
        r = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        need = 3;
        r = b0 & 0x0f;
        if (b0 == 0xe0)
            lo = 0xa0;
        else if (b0 == 0xed)
            hi = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        need = 4;
        r = b0 & 0x07;
        if (b0 == 0xf0)
            lo = 0x90;
        else if (b0 == 0xf4)
            hi = 0x8f;
    } else {
        return 0xfffd;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0xfffd;
    r = (r << 6) | (s[1] & 0x3f);
    for (size_t k = 2; k < need; k++) {
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0xfffd;
        r = (r << 6) | (s[k] & 0x3f);
    }
    *size = need;
    return r;
}

/* Go's getu4: the value of \uXXXX at s, or -1. */
static long hex4(const uint8_t *s, size_t n)
{
    if (n < 6 || s[0] != '\\' || s[1] != 'u')
        return -1;
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        uint8_t c = s[k];
        if (!is_hex(c))
            return -1;
        v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Next rune of a string literal's content s[*pos..end), decoded as Go's
 * unquote does. */
static uint32_t next_rune(const uint8_t *s, size_t end, size_t *pos)
{
    size_t p = *pos, size;
    uint8_t c = s[p];
    if (c != '\\') {
        uint32_t r = decode_utf8(s + p, end - p, &size);
        *pos = p + size;
        return r;
    }
    if (p + 1 >= end) { /* cannot happen in scanned input */
        *pos = end;
        return 0xfffd;
    }
    switch (s[p + 1]) {
    case 'b':
        *pos = p + 2;
        return '\b';
    case 'f':
        *pos = p + 2;
        return '\f';
    case 'n':
        *pos = p + 2;
        return '\n';
    case 'r':
        *pos = p + 2;
        return '\r';
    case 't':
        *pos = p + 2;
        return '\t';
    case 'u':
        break;
    default:
        *pos = p + 2;
        return s[p + 1];
    }
    long r = hex4(s + p, end - p);
    if (r < 0) {
        *pos = end;
        return 0xfffd;
    }
    *pos = p + 6;
    if (r < 0xd800 || r > 0xdfff)
        return (uint32_t)r;
    /* A surrogate: only a high one followed by a low one makes a rune;
     * otherwise U+FFFD and the next escape is read on its own. */
    long r2 = hex4(s + p + 6, end - p - 6);
    if (r <= 0xdbff && r2 >= 0xdc00 && r2 <= 0xdfff) {
        *pos = p + 12;
        return 0x10000 + (((uint32_t)r - 0xd800) << 10) + ((uint32_t)r2 - 0xdc00);
    }
    return 0xfffd;
}

static size_t encode_utf8(uint32_t r, char *out)
{
    if (r < 0x80) {
        out[0] = (char)r;
        return 1;
    }
    if (r < 0x800) {
        out[0] = (char)(0xc0 | (r >> 6));
        out[1] = (char)(0x80 | (r & 0x3f));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (char)(0xe0 | (r >> 12));
        out[1] = (char)(0x80 | ((r >> 6) & 0x3f));
        out[2] = (char)(0x80 | (r & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (r >> 18));
    out[1] = (char)(0x80 | ((r >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((r >> 6) & 0x3f));
    out[3] = (char)(0x80 | (r & 0x3f));
    return 4;
}

size_t ssm_gojson_unquote(const char *lit, size_t len, char *out)
{
    const uint8_t *s = (const uint8_t *)lit;
    size_t w = 0;
    if (len < 2)
        return 0;
    for (size_t p = 1; p < len - 1;)
        w += encode_utf8(next_rune(s, len - 1, &p), out + w);
    return w;
}

/* Go's case-insensitive field match (equalFoldRight / foldName): ASCII
 * letters in any case, plus U+017F for s and U+212A (Kelvin) for k. */
static bool key_matches(const uint8_t *d, size_t off, size_t len, const char *name)
{
    size_t p = off + 1, end = off + len - 1;
    for (; *name; name++) {
        if (p >= end)
            return false;
        uint32_t r = next_rune(d, end, &p);
        uint8_t n = (uint8_t)*name;
        if (r < 0x80) {
            if ((r | 0x20) != (uint32_t)(n | 0x20) || !((r | 0x20) >= 'a' && (r | 0x20) <= 'z'))
                return false;
        } else if (!(r == 0x17f && (n | 0x20) == 's') && !(r == 0x212a && (n | 0x20) == 'k')) {
            return false;
        }
    }
    return p == end;
}

static const char *const field_names[SSM_GOJSON_NFIELDS] = {"SessionId", "StreamUrl", "TokenValue"};
#define RESULT_METADATA "ResultMetadata"
#define TYPE_ERR "json: cannot unmarshal %s into Go "

static int type_error(char *msg, size_t cap, uint8_t c, const char *field, const char *type)
{
    snprintf(msg, cap, TYPE_ERR "struct field StartSessionOutput.%s of type %s", kind_of(c), field,
             type);
    return -1;
}

/* The decoder's pass over the top-level object; the first type error is
 * the one Go returns. */
static int decode_object(const uint8_t *d, size_t len, size_t i, enum ssm_gojson_sdk sdk,
                         ssm_gojson_result *res, char *msg, size_t cap)
{
    i = skip_space(d, len, i + 1);
    while (i < len && d[i] == '"') {
        size_t key = i;
        i = skip_string(d, len, i);
        size_t key_len = i - key;
        i = skip_space(d, len, skip_space(d, len, i) + 1); /* past ':' */
        uint8_t c = d[i];
        size_t end = skip_value(d, len, i);
        int f;
        for (f = 0; f < SSM_GOJSON_NFIELDS; f++)
            if (key_matches(d, key, key_len, field_names[f]))
                break;
        if (f < SSM_GOJSON_NFIELDS) {
            if (c == '"')
                res->field[f] = (ssm_gojson_span){i, end - i};
            else if (c == 'n')
                res->field[f] = (ssm_gojson_span){0, 0};
            else
                return type_error(msg, cap, c, field_names[f], "string");
        } else if (sdk == SSM_GOJSON_SDK_V2 && c != '{' && c != 'n' &&
                   key_matches(d, key, key_len, RESULT_METADATA)) {
            return type_error(msg, cap, c, RESULT_METADATA, "middleware.Metadata");
        }
        i = skip_space(d, len, end);
        if (i < len && d[i] == ',')
            i = skip_space(d, len, i + 1);
    }
    return 0;
}

int ssm_gojson_start_session(const char *data, size_t len, enum ssm_gojson_sdk sdk,
                             ssm_gojson_result *res, char *msg, size_t cap)
{
    static const scanner fresh = {.st = S_BEGIN_VALUE};
    scanner s = fresh;
    char dummy[1];
    if (!msg || !cap) {
        msg = dummy;
        cap = sizeof dummy;
    }
    msg[0] = '\0';
    s.msg = msg;
    s.cap = cap;
    memset(res, 0, sizeof *res);
    const uint8_t *d = (const uint8_t *)data;
    if (check_valid(&s, d, len) != 0)
        return -1;

    size_t i = skip_space(d, len, 0);
    switch (d[i]) {
    case '{':
        return decode_object(d, len, i, sdk, res, msg, cap);
    case 'n':
        res->top_null = true;
        return 0;
    default:
        snprintf(msg, cap, TYPE_ERR "value of type ssm.StartSessionOutput", kind_of(d[i]));
        return -1;
    }
}
