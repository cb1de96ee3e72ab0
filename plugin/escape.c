/* OpenSSH-style escapes: only right after CR/LF, '~' is held back and the
 * next byte decides. See PROTOCOL-NEWEST.md §4.1 for the state table. */
#include "escape.h"

/* The official plugin's bytes (exact compatibility). */
const char ssm_escape_help_text[] =
    "\r\nSupported escape sequence commands:\r\n"
    "  ~? - this help message\r\n"
    "  ~~ - send the ~ character to the remote target\r\n"
    "  ~- - disable escape sequences for the rest of this session\r\n"
    "  ~. - disconnect and terminate session\r\n"
    "(Note that escapes are only recognized immediately after newline.)\r\n";

const char ssm_escape_disabled_text[] = "\r\nEscape sequences disabled for this session.\r\n";

void ssm_escape_init(ssm_escape *e)
{
    e->enabled = true;
    e->newline = false;
    e->escaped = false;
}

int ssm_escape_filter(ssm_escape *e, const uint8_t *in, size_t n, uint8_t *out, size_t *out_len,
                      size_t *consumed)
{
    size_t o = *out_len;
    size_t i = 0;
    int action = SSM_ESC_NONE;

    while (i < n && action == SSM_ESC_NONE) {
        uint8_t b = in[i++];
        if (!e->enabled) {
            out[o++] = b;
            continue;
        }
        if (e->escaped) {
            e->escaped = false;
            e->newline = false;
            switch (b) {
            case '?':
                action = SSM_ESC_HELP;
                break;
            case '.':
                action = SSM_ESC_TERMINATE;
                break;
            case '-':
                e->enabled = false;
                action = SSM_ESC_DISABLED;
                break;
            case '~':
                out[o++] = '~';
                break;
            default:
                /* Not an escape after all: the held '~' goes out with it,
                 * and even CR/LF here does not re-arm the newline state. */
                out[o++] = '~';
                out[o++] = b;
                break;
            }
            continue;
        }
        if (e->newline && b == '~') {
            e->escaped = true;
            continue;
        }
        out[o++] = b;
        e->newline = (b == '\r' || b == '\n');
    }
    *out_len = o;
    *consumed = i;
    return action;
}
