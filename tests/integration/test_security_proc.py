"""Security review (docs/security.md): the session token in the StartSession
response is not readable from /proc while the session runs. In argv hand-off
/proc/PID/cmdline is readable by every local user; in env hand-off
/proc/PID/environ shows the process's original environment block to its
owner (unsetenv alone leaves it there). Both are wiped in place."""

import os
import signal

import ssmtest as T
from test_port_mux import PF_DOC, EchoServer, PortPlugin


def run(mode):
    echo = EchoServer()
    with T.Sim() as sim:
        resp = sim.start_session(doc=PF_DOC, params={"portNumber": [str(echo.port)]})
        token = resp["TokenValue"].encode()
        T.check(len(token) > 16, f"token {token!r}")
        argv, env = T.plugin_invocation(resp, sim, mode=mode, doc=PF_DOC)
        pp = PortPlugin.__new__(PortPlugin)
        pp.sid, pp.out = resp["SessionId"], b""
        pp.p = T.run_pipes(argv, env)
        pp.p.stdin.close()
        pp.wait_listening()
        with open(f"/proc/{pp.p.pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pp.p.pid}/environ", "rb") as f:
            environ = f.read()
        # The session itself still works: it kept its own copy.
        T.check(resp["SessionId"].encode() in pp.out, f"stdout {pp.out!r}")
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
    echo.close()
    T.check(token not in cmdline, f"{mode}: token in /proc/PID/cmdline")
    T.check(token not in environ, f"{mode}: token in /proc/PID/environ")
    # The other arguments are untouched (ps still shows what runs).
    T.check(b"StartSession" in cmdline, f"{mode}: cmdline {cmdline[:200]!r}")


def test_argv_handoff_token_not_in_proc():
    run("argv")


def test_env_handoff_token_not_in_proc():
    run("env")


if __name__ == "__main__":
    T.main([test_argv_handoff_token_not_in_proc, test_env_handoff_token_not_in_proc])
