/* The shell's `~` escape filter (PROTOCOL-NEWEST.md §4.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"

/* Runs one chunk through the filter collecting output and actions in order
 * ("H" help, "T" terminate, "D" disabled). Stops at a terminate. */
static void run(ssm_escape *e, const char *in, char *out, size_t *out_len, char *acts)
{
    size_t n = strlen(in), pos = 0, ol = 0, na = 0;
    uint8_t buf[256];
    assert_true(n + 1 <= sizeof buf);
    while (pos < n) {
        size_t used = 0;
        int a = ssm_escape_filter(e, (const uint8_t *)in + pos, n - pos, buf, &ol, &used);
        assert_true(used > 0);
        pos += used;
        if (a == SSM_ESC_HELP)
            acts[na++] = 'H';
        else if (a == SSM_ESC_TERMINATE) {
            acts[na++] = 'T';
            break;
        } else if (a == SSM_ESC_DISABLED)
            acts[na++] = 'D';
    }
    acts[na] = 0;
    memcpy(out, buf, ol);
    out[ol] = 0;
    *out_len = ol;
}

static void check(ssm_escape *e, const char *in, const char *want_out, const char *want_acts)
{
    char out[300], acts[32];
    size_t ol;
    run(e, in, out, &ol, acts);
    assert_string_equal(out, want_out);
    assert_int_equal(ol, strlen(want_out));
    assert_string_equal(acts, want_acts);
}

static void first_tilde_is_not_escape(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "~.", "~.", "");
}

static void tilde_dot_after_cr_terminates(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "ls\r~.", "ls\r", "T");
}

static void tilde_dot_after_lf_terminates(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "x\n~.more", "x\n", "T");
}

static void help_sends_nothing_and_clears_newline(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "\r~?~.", "\r~.", "H");
    assert_false(e.newline);
    assert_false(e.escaped);
}

static void double_tilde_sends_one(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "\r~~x", "\r~x", "");
    /* And the newline state is cleared by ~~: a following ~. is literal. */
    ssm_escape_init(&e);
    check(&e, "\r~~~.", "\r~~.", "");
}

static void other_byte_sends_tilde_and_byte(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "\r~a", "\r~a", "");
    /* CR right after the held ~ does not re-arm newline. */
    ssm_escape_init(&e);
    check(&e, "\r~\r~.", "\r~\r~.", "");
}

static void disable_forwards_rest(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "\r~-\r~.\r~?", "\r\r~.\r~?", "D");
    assert_false(e.enabled);
    check(&e, "\r~.", "\r~.", "");
}

static void held_tilde_spans_chunks(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "abc\r~", "abc\r", "");
    assert_true(e.escaped);
    check(&e, "x", "~x", "");
    check(&e, "\n~", "\n", "");
    check(&e, ".", "", "T");
}

static void newline_state_survives_chunks(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "echo hi\n", "echo hi\n", "");
    check(&e, "~?", "", "H");
    check(&e, "~?", "~?", "");
}

static void crlf_then_escape(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    check(&e, "a\r\n~.", "a\r\n", "T");
}

static void output_bound_is_n_plus_one(void **st)
{
    (void)st;
    ssm_escape e;
    ssm_escape_init(&e);
    uint8_t out[3];
    size_t ol = 0, used = 0;
    ssm_escape_filter(&e, (const uint8_t *)"\r~", 2, out, &ol, &used);
    assert_int_equal(ol, 1);
    ol = 0;
    /* One input byte may produce two output bytes (held '~' + byte). */
    int a = ssm_escape_filter(&e, (const uint8_t *)"z", 1, out, &ol, &used);
    assert_int_equal(a, SSM_ESC_NONE);
    assert_int_equal(ol, 2);
    assert_memory_equal(out, "~z", 2);
}

static void help_text_uses_crlf(void **st)
{
    (void)st;
    const char *t = ssm_escape_help_text;
    assert_non_null(strstr(t, "~."));
    assert_non_null(strstr(t, "~?"));
    assert_non_null(strstr(t, "~~"));
    assert_non_null(strstr(t, "~-"));
    for (const char *p = t; *p; p++)
        if (*p == '\n')
            assert_true(p > t && p[-1] == '\r');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_tilde_is_not_escape),
        cmocka_unit_test(tilde_dot_after_cr_terminates),
        cmocka_unit_test(tilde_dot_after_lf_terminates),
        cmocka_unit_test(help_sends_nothing_and_clears_newline),
        cmocka_unit_test(double_tilde_sends_one),
        cmocka_unit_test(other_byte_sends_tilde_and_byte),
        cmocka_unit_test(disable_forwards_rest),
        cmocka_unit_test(held_tilde_spans_chunks),
        cmocka_unit_test(newline_state_survives_chunks),
        cmocka_unit_test(crlf_then_escape),
        cmocka_unit_test(output_bound_is_n_plus_one),
        cmocka_unit_test(help_text_uses_crlf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
