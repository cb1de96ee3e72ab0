/* Version gates (PROTOCOL.md §8.8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ssm_version.h"

static void test_gt_strict_gates(void **state)
{
    (void)state;
    /* smux gate: strictly greater. */
    assert_false(ssm_version_gt_strict("3.0.196.0", SSM_AGENT_GATE_SMUX));
    assert_true(ssm_version_gt_strict("3.0.197.0", SSM_AGENT_GATE_SMUX));
    assert_true(ssm_version_gt_strict("3.0.196.1", SSM_AGENT_GATE_SMUX));
    assert_false(ssm_version_gt_strict("3.0.195.9", SSM_AGENT_GATE_SMUX));
    assert_true(ssm_version_gt_strict("3.3.1142.0", SSM_AGENT_GATE_SMUX));
    assert_false(ssm_version_gt_strict("2.99.999.999", SSM_AGENT_GATE_SMUX));
    /* Numeric, not lexical: 10 > 9, 1000 > 196. */
    assert_true(ssm_version_gt_strict("10.0.0.0", "9.0.0.0"));
    assert_true(ssm_version_gt_strict("3.0.1000.0", SSM_AGENT_GATE_SMUX));
    assert_true(ssm_version_gt_strict("3.0.0196.1", SSM_AGENT_GATE_SMUX)); /* leading zero */
    /* The other two gates. */
    assert_false(ssm_version_gt_strict("2.3.722.0", SSM_AGENT_GATE_TERMINATE_FLAG));
    assert_true(ssm_version_gt_strict("2.3.723.0", SSM_AGENT_GATE_TERMINATE_FLAG));
    assert_false(ssm_version_gt_strict("3.1.1511.0", SSM_AGENT_GATE_SMUX_NO_KEEPALIVE));
    assert_true(ssm_version_gt_strict("3.1.1512.0", SSM_AGENT_GATE_SMUX_NO_KEEPALIVE));
    assert_true(ssm_version_gt_strict("3.2.0.0", SSM_AGENT_GATE_SMUX_NO_KEEPALIVE));
}

static void test_gt_strict_unsupported(void **state)
{
    (void)state;
    /* Component-count mismatch: unsupported even when numerically greater. */
    assert_false(ssm_version_gt_strict("3.1.0", SSM_AGENT_GATE_SMUX));
    assert_false(ssm_version_gt_strict("4.0.0.0.0", SSM_AGENT_GATE_SMUX));
    assert_false(ssm_version_gt_strict("4", SSM_AGENT_GATE_SMUX));
    /* Non-numeric anywhere: unsupported. */
    static const char *const bad[] = {
        "",
        ".",
        "3.0.197.",
        ".3.0.197",
        "3..0.197",
        "3.0.197.0-beta",
        "3.0.197.x",
        "v3.0.197.0",
        " 3.0.197.0",
        "3.0.197.0 ",
        "+3.0.197.0",
        "-3.0.197.0",
        "3.0.197.0\n",
        "3.0.1970000000000000000000.0", /* overflow */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ssm_version_gt_strict(bad[i], SSM_AGENT_GATE_SMUX))
            fail_msg("accepted %s", bad[i]);
    }
    assert_false(ssm_version_gt_strict(NULL, SSM_AGENT_GATE_SMUX));
    assert_false(ssm_version_gt_strict("3.0.197.0", NULL));
    assert_false(ssm_version_gt_strict("3.0.197.0", "x.0.0.0"));
    /* Equal is not greater. */
    assert_false(ssm_version_gt_strict("1", "1"));
    assert_true(ssm_version_gt_strict("2", "1"));
}

static void test_cmp(void **state)
{
    (void)state;
    assert_int_equal(ssm_version_cmp("1.2.3", "1.2.3"), 0);
    assert_true(ssm_version_cmp("1.2.4", "1.2.3") > 0);
    assert_true(ssm_version_cmp("1.2.3", "1.2.4") < 0);
    assert_true(ssm_version_cmp("1.10", "1.9") > 0);
    /* Missing components are 0. */
    assert_int_equal(ssm_version_cmp("1.2", "1.2.0.0"), 0);
    assert_true(ssm_version_cmp("1.2.0.1", "1.2") > 0);
    assert_true(ssm_version_cmp("1.2", "1.2.0.1") < 0);
    assert_true(ssm_version_cmp("1.2.677.0", "1.2.331.0") > 0);
    assert_true(ssm_version_cmp("1.1.70", "1.2.0.0") < 0);
    /* Non-numeric input has no components, i.e. equals "0". */
    assert_int_equal(ssm_version_cmp("abc", "0"), 0);
    assert_int_equal(ssm_version_cmp("abc", ""), 0);
    assert_int_equal(ssm_version_cmp(NULL, "0.0"), 0);
    assert_true(ssm_version_cmp("abc", "0.0.1") < 0);
    assert_true(ssm_version_cmp("0.0.1", "1.x") > 0);
    assert_true(ssm_version_cmp("18446744073.0", "18446744072.9") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gt_strict_gates),
        cmocka_unit_test(test_gt_strict_unsupported),
        cmocka_unit_test(test_cmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
