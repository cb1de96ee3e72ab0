"""End to end through the real AWS CLI: `aws ssm start-session` against agent-sim's
fake SSM endpoint, with our plugin first on PATH as `session-manager-plugin`.

A wrapper named session-manager-plugin records the argv and environment the CLI
hands over, then execs the real plugin, so the test can check the hand-off form
(environment variable vs inline JSON) and that the token never shows in argv.
Runs once per CLI found: AWS CLI v1 (pip) and v2 (Debian's awscli)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

PLUGIN = os.environ.get("SSM_PLUGIN")
SIM = os.environ.get("SSM_AGENT_SIM")


def find_clis():
    """Distinct `aws` executables on this machine with their major version."""
    seen, out = set(), []
    cands = [shutil.which("aws"), "/usr/bin/aws", "/usr/local/bin/aws"]
    for c in cands:
        if not c or not os.path.exists(c):
            continue
        try:
            v = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=60)
        except Exception:
            continue
        text = (v.stdout + v.stderr).strip()
        if not text.startswith("aws-cli/"):
            continue
        ver = text.split()[0].split("/")[1]
        if ver in seen:
            continue
        seen.add(ver)
        out.append((c, ver))
    return out


class Sim:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="e2e-sim-")
        self.record = os.path.join(self.dir, "record.jsonl")
        self.proc = subprocess.Popen([SIM, "--record", self.record, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.port = json.loads(line)["port"]

    def events(self):
        with open(self.record) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


WRAPPER = """#!/bin/sh
# test wrapper: log the hand-off, then run the real plugin
printf '%s\\n' "$@" > "{log}.argv.$$"
env > "{log}.env.$$"
exec "{plugin}" "$@"
"""


class AwsCliE2E(unittest.TestCase):
    def setUp(self):
        if not PLUGIN or not SIM:
            self.skipTest("SSM_PLUGIN / SSM_AGENT_SIM not set")
        self.clis = find_clis()
        if not self.clis:
            self.skipTest("no aws CLI installed")
        self.sim = Sim()
        self.bindir = tempfile.mkdtemp(prefix="e2e-bin-")
        self.log = os.path.join(self.bindir, "handoff")
        w = os.path.join(self.bindir, "session-manager-plugin")
        with open(w, "w") as f:
            f.write(WRAPPER.format(log=self.log, plugin=os.path.abspath(PLUGIN)))
        os.chmod(w, 0o755)

    def tearDown(self):
        self.sim.stop()
        shutil.rmtree(self.bindir, ignore_errors=True)

    def env(self):
        e = dict(os.environ)
        e.update({
            "PATH": self.bindir + os.pathsep + e.get("PATH", ""),
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_PAGER": "",
            "AWS_CONFIG_FILE": os.path.join(self.bindir, "noconfig"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.bindir, "nocreds"),
        })
        return e

    def handoffs(self):
        out = []
        for name in sorted(os.listdir(self.bindir)):
            if ".argv." in name:
                pid = name.rsplit(".", 1)[1]
                with open(os.path.join(self.bindir, name)) as f:
                    argv = f.read().split("\n")[:-1]
                with open(os.path.join(self.bindir, "handoff.env." + pid)) as f:
                    env = f.read()
                out.append((argv, env))
                os.unlink(os.path.join(self.bindir, name))
                os.unlink(os.path.join(self.bindir, "handoff.env." + pid))
        return out

    def run_cli(self, cli, extra, timeout=60):
        cmd = [cli, "ssm", "start-session", "--endpoint-url", f"http://127.0.0.1:{self.sim.port}",
               "--region", "us-east-1", "--target", "i-0123456789abcdef0", *extra]
        return subprocess.run(cmd, env=self.env(), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def test_noninteractive_command_through_cli(self):
        for cli, ver in self.clis:
            with self.subTest(cli=ver):
                r = self.run_cli(cli, ["--document-name", "AWS-StartNonInteractiveCommand",
                                       "--parameters", "command=echo e2e-says-hello"])
                out = r.stdout.decode(errors="replace")
                self.assertEqual(r.returncode, 0, out + r.stderr.decode(errors="replace"))
                self.assertIn("Starting session with SessionId:", out)
                self.assertIn("e2e-says-hello", out)
                self.assertIn("Exiting session with sessionId:", out)
                hand = [h for h in self.handoffs() if h[0] and h[0][0] != "--version"]
                self.assertEqual(len(hand), 1, hand)
                argv, env = hand[0]
                self.assertEqual(argv[2], "StartSession")
                self.assertEqual(argv[1], "us-east-1")
                self.assertEqual(json.loads(argv[4])["Target"], "i-0123456789abcdef0")
                calls = [e for e in self.sim.events() if e.get("event") == "api_call"]
                self.assertTrue(calls, "sim recorded no API call")
                if ver.startswith("1."):
                    # v1 >= 1.29 hands the response over in the environment: the token
                    # must not be in argv.
                    self.assertTrue(argv[0].startswith("AWS_SSM_START_SESSION_RESPONSE"), argv[0])
                    self.assertNotIn("TokenValue", " ".join(argv))
                    self.assertIn("AWS_SSM_START_SESSION_RESPONSE=", env)
                else:
                    self.assertTrue(argv[0].startswith("AWS_SSM_START_SESSION_RESPONSE")
                                    or json.loads(argv[0])["TokenValue"], argv[0])

    def test_interactive_shell_on_a_pty(self):
        """The default document (Standard_Stream shell) driven like a person would:
        a command typed at the prompt, its output, a resize, then `exit`."""
        import pty
        import select
        import struct
        import fcntl
        import termios
        for cli, ver in self.clis:
            with self.subTest(cli=ver):
                env = self.env()
                env["SIM_SHELL"] = "/bin/sh"
                argv = [cli, "ssm", "start-session", "--endpoint-url",
                        f"http://127.0.0.1:{self.sim.port}", "--region", "us-east-1",
                        "--target", "i-0123456789abcdef0"]
                pid, fd = pty.fork()
                if pid == 0:
                    try:
                        os.execve(cli, argv, env)
                    finally:
                        os._exit(127)
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
                out = bytearray()

                def read_until(needle, timeout=30):
                    deadline = time.time() + timeout
                    while needle not in out:
                        left = deadline - time.time()
                        if left <= 0:
                            raise AssertionError(f"no {needle!r} in {bytes(out)[-600:]!r}")
                        r, _, _ = select.select([fd], [], [], left)
                        if r:
                            try:
                                data = os.read(fd, 65536)
                            except OSError:
                                data = b""
                            if not data:
                                raise AssertionError(f"EOF before {needle!r}: {bytes(out)[-600:]!r}")
                            out.extend(data)

                try:
                    read_until(b"Starting session with SessionId:")
                    time.sleep(0.5)
                    os.write(fd, b"echo answer=$((6*7))\n")
                    read_until(b"answer=42")
                    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 133, 0, 0))
                    os.kill(pid, signal.SIGWINCH)
                    time.sleep(0.5)
                    os.write(fd, b"stty size\n")
                    read_until(b"41 133")
                    os.write(fd, b"exit\n")
                    read_until(b"Exiting session with sessionId:")
                    _, st = os.waitpid(pid, 0)
                    self.assertEqual(os.waitstatus_to_exitcode(st), 0, bytes(out)[-600:])
                finally:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                    except (ProcessLookupError, ChildProcessError):
                        pass
                    os.close(fd)
                self.handoffs()

    def test_version_probe_and_no_args(self):
        r = subprocess.run([PLUGIN, "--version"], capture_output=True, text=True)
        self.assertRegex(r.stdout, r"^\d+\.\d+\.\d+\.\d+\n$")
        parts = [int(x) for x in r.stdout.strip().split(".")]
        self.assertGreater(parts, [1, 2, 497, 0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
