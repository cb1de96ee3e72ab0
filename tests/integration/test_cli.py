"""The built plugin binary against the command-line contract (PROTOCOL.md §1.1,
§1.4, PROTOCOL-NEWEST.md §8): exact stdout bytes, empty stderr, exit codes,
and the version check the AWS CLI applies before choosing the env-var form.
Only paths that end before a session starts are exercised here."""

import os
import re
import subprocess
import sys
import unittest

PLUGIN = os.environ.get("SSM_PLUGIN")
TOKEN = "tok-INTEGRATION-SECRET-51c0"
RESPONSE_NAME = "AWS_SSM_START_SESSION_RESPONSE"


def run(*args, env=None):
    """Runs the plugin with a clean environment plus env; returns (out, err, rc)."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    full_env.update(env or {})
    p = subprocess.run([PLUGIN, *args], stdin=subprocess.DEVNULL, capture_output=True,
                       env=full_env, timeout=20)
    return p.stdout, p.stderr, p.returncode


def unknown_op(arg):
    return (b"\nUnknown operation " + arg.encode() +
            b". \nUse session-manager-plugin --version to check the version.\n\n")


# The AWS CLI's own logic (awscli/customizations/sessionmanager.py), restated.
def cli_version_tuple(text):
    stripped = re.sub(r"\s", "", text)
    if not re.fullmatch(r"\d+(\.\d+){0,3}", stripped):
        return None
    return [int(x) for x in stripped.split(".")]


def cli_compare(a, b):
    n = max(len(a), len(b))
    a, b = a + [0] * (n - len(a)), b + [0] * (n - len(b))
    return (a > b) - (a < b)


class CliContract(unittest.TestCase):
    def test_no_arguments(self):
        out, err, rc = run()
        self.assertEqual(out, b"\nThe Session Manager plugin was installed successfully. "
                              b"Use the AWS CLI to start a session.\n\n")
        self.assertEqual(err, b"")
        self.assertEqual(rc, 0)

    def test_version(self):
        out, err, rc = run("--version")
        self.assertEqual(rc, 0)
        self.assertEqual(err, b"")
        self.assertTrue(out.endswith(b"\n"))
        self.assertEqual(out.count(b"\n"), 1)
        text = out.decode("ascii")
        self.assertRegex(text.strip(), r"^\d+(\.\d+){0,3}$")
        self.assertEqual(len(text.strip().split(".")), 4)  # §8.8: 4-part numeric
        v = cli_version_tuple(text)
        self.assertIsNotNone(v)
        # > 1.2.497.0: the CLI hands over the response through the env var.
        self.assertGreater(cli_compare(v, [1, 2, 497, 0]), 0)
        # >= 1.2.764.0: AWS's documented minimum (PROTOCOL-NEWEST.md §6.3).
        self.assertGreaterEqual(cli_compare(v, [1, 2, 764, 0]), 0)
        # > 1.2.331.0: the agent then disables smux keep-alive (§8.8).
        self.assertGreater(cli_compare(v, [1, 2, 331, 0]), 0)

    def test_unknown_operation_argc2(self):
        for arg in ["--help", "version", "-v", "", "StartSession"]:
            out, err, rc = run(arg)
            self.assertEqual(out, unknown_op(arg), arg)
            self.assertEqual(err, b"")
            self.assertEqual(rc, 0)

    def test_unknown_operation_argc3(self):
        for args in [("--version", "x"), ("a", "b"), (RESPONSE_NAME, "us-east-1")]:
            out, err, rc = run(*args)
            self.assertEqual(out, unknown_op(args[0]), args)
            self.assertEqual(err, b"")
            self.assertEqual(rc, 0)

    def test_invalid_operation(self):
        good = ('{"SessionId": "s", "TokenValue": "%s", "StreamUrl": "wss://x"}' % TOKEN)
        for args in [(good, "us-east-1", "StopSession"),
                     (good, "us-east-1", "startsession", "", '{"Target": "i-1"}', "https://e")]:
            out, err, rc = run(*args)
            self.assertEqual(out, b"Invalid Operation")
            self.assertEqual(err, b"")
            self.assertEqual(rc, 0)

    def assert_cannot_start(self, out, err, rc, fragment):
        self.assertTrue(out.startswith(b"Cannot perform start session: "), out)
        self.assertTrue(out.endswith(b"\n"))
        self.assertEqual(out.count(b"\n"), 1)
        self.assertIn(fragment, out)
        self.assertNotIn(TOKEN.encode(), out + err)
        self.assertEqual(err, b"")
        self.assertEqual(rc, 0)

    def test_broken_response_json(self):
        bad = '{"SessionId": "s", "TokenValue": "%s", "StreamUrl": ' % TOKEN
        out, err, rc = run(bad, "us-east-1", "StartSession", "", '{"Target": "i-1"}', "")
        self.assert_cannot_start(out, err, rc, b"not valid JSON")

    def test_missing_field_is_a_clear_line_not_a_crash(self):
        resp = '{"SessionId": "s", "TokenValue": "%s"}' % TOKEN
        out, err, rc = run(resp, "us-east-1", "StartSession", "", '{"Target": "i-1"}', "")
        self.assert_cannot_start(out, err, rc, b"has no StreamUrl")

    def test_env_var_form_errors_do_not_leak(self):
        resp = '{"sessionId": 5, "tokenValue": "%s", "streamUrl": "wss://x"}' % TOKEN
        out, err, rc = run(RESPONSE_NAME, "us-east-1", "StartSession", "", "{}", "",
                           env={RESPONSE_NAME: resp})
        self.assert_cannot_start(out, err, rc, b"SessionId is not a string")

    def test_env_var_missing(self):
        out, err, rc = run(RESPONSE_NAME, "us-east-1", "StartSession", "", "{}", "")
        self.assert_cannot_start(out, err, rc, RESPONSE_NAME.encode())


if __name__ == "__main__":
    if not PLUGIN or not os.access(PLUGIN, os.X_OK):
        print("SSM_PLUGIN is not set to an executable", file=sys.stderr)
        sys.exit(1)
    unittest.main(verbosity=2)
