"""ResumeSession outcomes after a websocket drop (issue 6, PROTOCOL.md §13.2,
PROTOCOL-NEWEST.md §3): failing for longer than SSM_PLUGIN_RECONNECT_SECONDS
ends with a clear message, the terminal restored and exit 0 (the official
plugin sits silently with a dead session); an empty token is "timed out";
a new StreamUrl (changed cell-number) is used for the redial."""
import os
import termios
import time

import ssmtest
from ssmtest import check


def shell_plugin(sim, extra_env=None):
    r = sim.start_session(doc="Sim-Echo")
    argv, env = ssmtest.plugin_invocation(r, sim, extra_env=extra_env)
    p = ssmtest.run_pty(argv, env=env)
    p.read_until(b"Sim-Echo ready")
    return r, p


def lflag(fd):
    return termios.tcgetattr(fd)[3]


def wait_exit_keep_pty(p, timeout):
    """Waits for the child but keeps the pty master open (termios check)."""
    deadline = time.time() + timeout
    while True:
        pid, st = os.waitpid(p.pid, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(st)
        check(time.time() < deadline, f"plugin still running: {bytes(p.out)[-300:]!r}")
        p._read_some(0.05)


def test_resume_failing_past_the_budget_ends_cleanly():
    budget = 3
    with ssmtest.Sim("--cut-after-client-msgs", "1", "--resume-fail-ms", "600000") as sim:
        r, p = shell_plugin(sim, {"SSM_PLUGIN_RECONNECT_SECONDS": str(budget)})
        check(not lflag(p.fd) & termios.ICANON, "raw mode while the session runs")
        t0 = time.time()
        p.write(b"x")  # the first upload message cuts the connection
        p.read_until(b"could not reconnect", timeout=budget + 15)
        code = wait_exit_keep_pty(p, 10)
        took = time.time() - t0
        while p._read_some(0.1):
            pass
        out = bytes(p.out)
        check(code == 0, f"exit {code}")
        check(budget - 0.5 <= took < budget + 8, f"ended after {took:.1f} s (budget {budget} s)")
        check(b"Cannot perform start session: lost the connection to the service and could not "
              b"reconnect" in out, out[-300:])
        check(b"ResumeSession failed" in out, f"the reason is named: {out[-300:]!r}")
        lf = lflag(p.fd)
        check(lf & termios.ICANON and lf & termios.ECHO, "terminal restored (ICANON, ECHO)")
        fails = sim.records(event="fault_resume_fail", session=r["SessionId"])
        check(len(fails) >= 2, f"ResumeSession retried with backoff: {len(fails)} calls")
        check(len(sim.records(event="open_data_channel", session=r["SessionId"])) == 1,
              "never redialled with the old token")
        check(not sim.records(event="session_terminated", session=r["SessionId"]),
              "no TerminateSession when the service cannot be reached")


def test_resume_recovers_after_failures():
    with ssmtest.Sim("--cut-after-client-msgs", "1", "--resume-fail-count", "3") as sim:
        r, p = shell_plugin(sim, {"SSM_PLUGIN_RECONNECT_SECONDS": "30"})
        p.write(b"a")
        sim.wait_record(event="session_resumed", session=r["SessionId"], timeout=20)
        p.write(b"bc\r")
        p.read_until(b"abc", timeout=15)
        check(len(sim.records(event="fault_resume_fail", session=r["SessionId"])) == 3,
              "three failed ResumeSession calls first")
        p.write(b"~.")
        check(p.wait(10) == 0, "exit 0")


def test_empty_token_is_timed_out():
    with ssmtest.Sim("--cut-after-client-msgs", "1", "--resume-empty-token") as sim:
        r, p = shell_plugin(sim)
        p.write(b"x")
        p.read_until(f"Session: {r['SessionId']} timed out.".encode(), timeout=15)
        check(p.wait(10) == 0, "exit 0")


def test_new_stream_url_is_used():
    with ssmtest.Sim("--cut-after-client-msgs", "1", "--resume-new-cell") as sim:
        r, p = shell_plugin(sim)
        p.write(b"q")
        sim.wait_record(event="session_resumed", session=r["SessionId"], timeout=15)
        p.write(b"rs\r")
        p.read_until(b"qrs", timeout=15)
        conns = [c for c in sim.records(event="ws_connect")
                 if c.get("path_session") == r["SessionId"]]
        check(len(conns) >= 2, f"redialled: {conns}")
        check(conns[-1].get("query") != conns[0].get("query"),
              "the redial used the new StreamUrl's cell-number")
        p.write(b"~.")
        check(p.wait(10) == 0, "exit 0")


if __name__ == "__main__":
    ssmtest.main([test_resume_failing_past_the_budget_ends_cleanly,
                  test_resume_recovers_after_failures, test_empty_token_is_timed_out,
                  test_new_stream_url_is_used])
