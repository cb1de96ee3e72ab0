"""Security review (docs/security.md): what the credential helpers we spawn
can see, the plugin's own descriptors, and a source credential with an
oversized access key id signing STS AssumeRole (a heap overflow before
the fix in aws_creds_fetch.c)."""
import json
import os
import socket
import sys
import time

import ssmtest
from ssmtest import check

AK, SK, TOK = "ASIASECTEST000000001", "secTestSecret/abcdefghijklmnopqrstuvwxyz0", "IQoJsecTestToken/abc=="

# Run as the helper: lists its descriptors (bar the one listing them), writes
# them to FD_REPORT, and answers with credentials only if it saw 0, 1, 2 alone.
FD_CHECK = r'''
import json, os, sys
d = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
seen = {}
for name in os.listdir(d):
    if int(name) == d:
        continue
    try:
        seen[int(name)] = os.readlink("/proc/self/fd/" + name)
    except OSError:
        pass
os.close(d)
with open(os.environ["FD_REPORT"], "w") as f:
    json.dump({"fds": seen, "argv": sys.argv, "env": dict(os.environ)}, f)
if sorted(seen) != [0, 1, 2] or not seen[1].startswith("pipe:"):
    sys.exit(7)
sys.stdout.write(json.dumps({"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s",
                             "SessionToken": "%s"}))
''' % (AK, SK, TOK)


def sim():
    return ssmtest.Sim("--require-sigv4", "--access-key", AK, "--secret-key", SK, "--session-token", TOK,
                       sign=(AK, SK, TOK))


def helper_sees_only_stdio(setup):
    with sim() as s:
        h = ssmtest.CredsHome(s)
        report = os.path.join(h.home, "fds.json")
        h.env["FD_REPORT"] = report
        setup(h, h.write("bin/fdcheck.py", FD_CHECK))
        tokens = []
        real_start = s.start_session

        def start_session(*a, **kw):  # the session token the plugin is given
            r = real_start(*a, **kw)
            tokens.append(r["TokenValue"])
            return r
        s.start_session = start_session
        ok, status, out = h.run(s)
        check(os.path.exists(report), f"the helper did not run: {out[-300:]!r}")
        with open(report) as f:
            seen = json.load(f)
        check(ok and status == 0, f"session failed ({status}); the helper saw {seen['fds']}: {out[-300:]!r}")
        # The hand-off variable is unset before any child runs (docs/security.md).
        check(tokens and not any(tokens[0] in v for v in list(seen["env"].values()) + seen["argv"]),
              "the session token reached the helper's environment or arguments")
        check(not any(k.startswith("AWS_SSM_START_SESSION_RESPONSE") for k in seen["env"]), seen["env"].keys())
        h.cleanup()


def test_credential_process_sees_only_stdio():
    def setup(h, script):
        h.write(".aws/config", f"[default]\ncredential_process = {sys.executable} {script}\n")
    helper_sees_only_stdio(setup)


def test_cli_export_fallback_sees_only_stdio():
    def setup(h, script):
        h.write("bin/aws", f"#!/bin/sh\nexec {sys.executable} {script}\n", 0o700)
        h.env["PATH"] = os.path.join(h.home, "bin")
    helper_sees_only_stdio(setup)


def open_fds_without_cloexec(pid):
    """The plugin's descriptors above 2 without O_CLOEXEC, with their targets."""
    bad = []
    for name in os.listdir(f"/proc/{pid}/fdinfo"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            with open(f"/proc/{pid}/fdinfo/{name}") as f:
                flags = int(next(ln for ln in f if ln.startswith("flags:")).split()[1], 8)
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except (OSError, StopIteration):
            continue  # closed meanwhile
        if not flags & os.O_CLOEXEC:
            bad.append((fd, target))
    return bad


def test_plugin_descriptors_are_close_on_exec():
    """Every descriptor the running plugin holds (websocket, timers, signal
    pipe, log, listener and an accepted connection) is close-on-exec."""
    echo = ssmtest.EchoServer()
    with ssmtest.Sim() as s:
        r = s.start_session(doc="AWS-StartPortForwardingSession",
                            params={"portNumber": [str(echo.port)], "localPortNumber": ["0"]})
        ready = os.path.join(s.dir, "ready.json")
        argv, env = ssmtest.plugin_invocation(r, s, doc="AWS-StartPortForwardingSession",
                                              extra_env={"SSM_PLUGIN_READY_FILE": ready,
                                                         "SSM_PLUGIN_LOG": os.path.join(s.dir, "plugin.log")})
        p = ssmtest.run_pipes(argv, env)
        try:
            deadline = time.time() + 15
            while not os.path.exists(ready) and time.time() < deadline:
                time.sleep(0.05)
            check(os.path.exists(ready), "no ready file")
            with open(ready) as f:
                port = json.loads(f.readline())["port"]
            c = socket.create_connection(("127.0.0.1", port), timeout=10)
            c.sendall(b"ping")
            check(c.recv(4) == b"ping", "echo through the forward")
            bad = open_fds_without_cloexec(p.pid)
            check(not bad, f"descriptors without close-on-exec: {bad}")
            c.close()
        finally:
            s.terminate_session(r["SessionId"])
            p.communicate(timeout=15)
            echo.close()


def test_oversized_source_access_key_signing_assume_role():
    """A credential_process (or IMDS/ECS answer) may hand back any length of
    access key id; signing AssumeRole with it must not overrun the header
    buffer. STS refuses the key; the plugin must fail cleanly."""
    with sim() as s:
        h = ssmtest.CredsHome(s)
        long_ak = "AKID" + "X" * 206  # the simulator parses up to 255 bytes of Credential=
        script = h.write("bin/creds.sh", "#!/bin/sh\nprintf '%s' '{\"Version\":1,\"AccessKeyId\":\"" + long_ak +
                         "\",\"SecretAccessKey\":\"" + SK + "\",\"SessionToken\":\"" + "T" * 12 + "\"}'\n", 0o700)
        h.write(".aws/config", f"[profile src]\ncredential_process = {script}\n"
                               "[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/Ops\nsource_profile = src\n")
        h.env["AWS_PROFILE"] = "ops"
        ok, status, out = h.run(s)
        check(not ok, "an unknown key was accepted")
        check(status is not None and status >= 0, f"the plugin died: status {status} {out[-500:]!r}")
        for bad in (b"Sanitizer", b"runtime error", b"corrupted", b"free()", b"malloc()"):
            check(bad not in out, f"{bad!r} in output: {out[-1500:]!r}")
        sts = [r for r in s.records(event="sigv4") if r["kind"] == "api" and r["service"] == "sts"]
        # the simulator records a prefix of the key; a whole, parseable header reached it
        check(sts and len(sts[-1]["access_key"]) > 20 and long_ak.startswith(sts[-1]["access_key"])
              and sts[-1].get("error") == "unknown access key", f"AssumeRole header: {sts[-1:]}")
        h.cleanup()


if __name__ == "__main__":
    ssmtest.main([test_credential_process_sees_only_stdio, test_cli_export_fallback_sees_only_stdio,
                  test_plugin_descriptors_are_close_on_exec, test_oversized_source_access_key_signing_assume_role])
