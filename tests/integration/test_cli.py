"""The built plugin binary against the command-line contract (PROTOCOL.md §1.1,
§1.4, PROTOCOL-NEWEST.md §8): exact stdout bytes, empty stderr, exit codes,
and the version check the AWS CLI applies before choosing the env-var form.
Only paths that end before a session starts are exercised here."""

import os
import random
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

    def assert_cannot_start_exact(self, out, err, rc, problem):
        self.assert_cannot_start(out, err, rc, problem)
        self.assertEqual(out, b"Cannot perform start session: " + problem + b"\n")

    def test_broken_response_json(self):
        # Go's encoding/json texts, as the official plugin prints them.
        bad = '{"SessionId": "s", "TokenValue": "%s", "StreamUrl": ' % TOKEN
        cases = [(bad, b"unexpected end of JSON input"),
                 (bad + '"u"} x', b"invalid character 'x' after top-level value"),
                 (bad + '"u\x01"}', b"invalid character '\\x01' in string literal"),
                 (bad + '"\\q"}', b"invalid character 'q' in string escape code"),
                 ('{"a" 1}', b"invalid character '1' after object key"),
                 ("tru", b"invalid character ' ' in literal true (expecting 'e')"),
                 ("[1 2]", b"invalid character '2' after array element"),
                 ("\u00e9", b"invalid character '\xc3\x83' looking for beginning of value"),
                 ("[" * 10001, b"invalid character '[' exceeded max depth")]
        for resp, problem in cases:
            out, err, rc = run(resp, "us-east-1", "StartSession", "", '{"Target": "i-1"}', "")
            self.assert_cannot_start_exact(out, err, rc, problem)

    def test_wrong_types_are_go_type_errors(self):
        cases = [("[]", b"json: cannot unmarshal array into Go value of type ssm.StartSessionOutput"),
                 ('"%s"' % TOKEN,
                  b"json: cannot unmarshal string into Go value of type ssm.StartSessionOutput"),
                 ('{"SessionId": 1, "TokenValue": "%s"}' % TOKEN,
                  b"json: cannot unmarshal number into Go struct field StartSessionOutput.SessionId "
                  b"of type string"),
                 ('{"tokenVALUE": {"x": "%s"}}' % TOKEN,
                  b"json: cannot unmarshal object into Go struct field StartSessionOutput.TokenValue "
                  b"of type string"),
                 ('{"resultMetadata": []}',
                  b"json: cannot unmarshal array into Go struct field StartSessionOutput.ResultMetadata "
                  b"of type middleware.Metadata")]
        for resp, problem in cases:
            out, err, rc = run(resp, "us-east-1", "StartSession", "", '{"Target": "i-1"}', "")
            self.assert_cannot_start_exact(out, err, rc, problem)

    def test_missing_field_is_a_clear_line_not_a_crash(self):
        resp = '{"SessionId": "s", "TokenValue": "%s"}' % TOKEN
        out, err, rc = run(resp, "us-east-1", "StartSession", "", '{"Target": "i-1"}', "")
        self.assert_cannot_start_exact(out, err, rc, b"StartSession response has no StreamUrl")
        out, err, rc = run("null", "us-east-1", "StartSession", "", '{"Target": "i-1"}', "")
        self.assert_cannot_start_exact(out, err, rc, b"StartSession response is not a JSON object")

    def test_env_var_form_errors_do_not_leak(self):
        resp = '{"sessionId": 5, "tokenValue": "%s", "streamUrl": "wss://x"}' % TOKEN
        out, err, rc = run(RESPONSE_NAME, "us-east-1", "StartSession", "", "{}", "",
                           env={RESPONSE_NAME: resp})
        self.assert_cannot_start_exact(
            out, err, rc, b"json: cannot unmarshal number into Go struct field "
                          b"StartSessionOutput.SessionId of type string")

    def test_env_var_missing(self):
        out, err, rc = run(RESPONSE_NAME, "us-east-1", "StartSession", "", "{}", "")
        self.assert_cannot_start_exact(out, err, rc, b"unexpected end of JSON input")
        out, err, rc = run(RESPONSE_NAME, "us-east-1", "StartSession", "", "{}", "",
                           env={RESPONSE_NAME: ""})
        self.assert_cannot_start_exact(out, err, rc, b"unexpected end of JSON input")


OFFICIAL = os.environ.get("OFFICIAL_PLUGIN", "")


def error_inputs(seed, n):
    """Deterministic malformed or mistyped responses, none with all three
    fields as strings (so neither plugin starts a session)."""
    rnd = random.Random(seed)
    keys = ["SessionId", "streamurl", "TOKENVALUE", "\u017fessionId", "To\u212aenValue",
            "\\u0053essionId", "x", "", "SessionIdx"]
    values = ['"s"', '""', "1", "-0.5e3", "true", "null", "[]", "{}", '[1,{"a":"b"}]',
              '"\\ud800"', '"\\u00e9"']
    alphabet = list(b'{}[]":,\\ \t\n0123456789-+.eEtrufalsn\'x') + [1, 0x7f, 0x80, 0xa0, 0xad, 0xc3,
                                                                   0xff]
    for _ in range(n):
        members = ['"%s": %s' % (rnd.choice(keys), rnd.choice(values))
                   for _ in range(rnd.randint(0, 3))]
        doc = bytearray(("{" + ", ".join(members) + "}").encode())
        if rnd.random() < 0.6:
            pos = rnd.randint(0, len(doc))
            op = rnd.random()
            if op < 0.4:
                doc[pos:pos] = bytes([rnd.choice(alphabet)])
            elif op < 0.7 and pos < len(doc):
                del doc[pos]
            else:
                del doc[pos:]
        yield bytes(doc)


class OfficialTexts(unittest.TestCase):
    """Same argv to both plugins, same stdout and exit code; only where the
    official plugin panics (a nil field) do we print our own line instead."""

    @unittest.skipUnless(OFFICIAL and os.access(OFFICIAL, os.X_OK),
                         "OFFICIAL_PLUGIN is not set to an official session-manager-plugin")
    def test_same_error_texts_as_official(self):
        compared = 0
        for resp in error_inputs(7, 400):
            args = (resp, b"us-east-1", b"StartSession", b"", b'{"Target": "i-1"}', b"")
            ours, our_err, our_rc = run(*args)
            if not ours.startswith(b"Cannot perform start session: "):
                continue  # would start a session; not this test's business
            p = subprocess.run([OFFICIAL, *args], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=20, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
            if p.returncode == 2 and b"nil pointer dereference" in p.stderr:
                self.assertTrue(b"has no " in ours or b"not a JSON object" in ours, (resp, ours))
                continue
            self.assertEqual((ours, our_rc), (p.stdout, p.returncode), resp)
            compared += 1
        self.assertGreater(compared, 200)


if __name__ == "__main__":
    if not PLUGIN or not os.access(PLUGIN, os.X_OK):
        print("SSM_PLUGIN is not set to an executable", file=sys.stderr)
        sys.exit(1)
    unittest.main(verbosity=2)
