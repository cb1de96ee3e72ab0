"""When the plugin calls the TerminateSession API (PROTOCOL.md §13.4 plus our
SIGTERM/SIGHUP addition, issue 6): on `~.`, SIGTERM, SIGHUP, the resend
give-up and the basic port mode's signal path with an old agent; and NOT on
normal ends (channel_closed from the agent, stdin EOF, mux port Ctrl-C).
The simulator records every TerminateSession call (`session_terminated`)."""
import os
import signal
import time

import ssmtest as T
from ssmtest import check
from test_port_mux import PF_DOC, EchoServer, PortPlugin


def shell(sim, extra_env=None, doc="Sim-Echo"):
    r = sim.start_session(doc=doc)
    argv, env = T.plugin_invocation(r, sim, extra_env=extra_env)
    p = T.run_pty(argv, env=env)
    p.read_until(b"Sim-Echo ready")
    return r, p


def terminated(sim, sid, timeout=5.0):
    try:
        sim.wait_record(event="session_terminated", session=sid, timeout=timeout)
        return True
    except T.TestFailure:
        return False


def test_tilde_dot():
    with T.Sim() as sim:
        r, p = shell(sim)
        p.write(b"\r~.")
        check(p.wait(10) == 0, "exit 0")
        check(terminated(sim, r["SessionId"]), "TerminateSession on ~.")


def by_signal(signo):
    with T.Sim() as sim:
        r, p = shell(sim)
        os.kill(p.pid, signo)
        check(p.wait(10) == 0, f"exit 0 after signal {signo}")
        check(terminated(sim, r["SessionId"]), f"TerminateSession on signal {signo}")


def test_sigterm():
    by_signal(signal.SIGTERM)


def test_sighup():
    by_signal(signal.SIGHUP)


def test_sigterm_at_startup_is_caught():
    # A SIGTERM sent the moment the plugin catches it (main() installs the
    # handler first thing; the websocket is not open yet) is queued in the
    # self-pipe and ends the session cleanly: exit 0, never 143. (The early
    # installation itself is not observable from outside without a race.)
    with T.Sim("--start-delay-ms", "0") as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = T.plugin_invocation(r, sim)
        p = T.run_pipes(argv, env)
        deadline = time.time() + 10
        while True:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    cgt = [l for l in f if l.startswith("SigCgt:")]
                if cgt and int(cgt[0].split()[1], 16) & (1 << (signal.SIGTERM - 1)):
                    break
            except OSError:
                pass
            check(time.time() < deadline, "SIGTERM never caught")
            time.sleep(0.0005)
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=15)
        check(p.returncode == 0, f"exit {p.returncode}: {out[-300:]!r}")


def test_resend_give_up():
    with T.Sim("--withhold-acks-ms", "60000") as sim:
        r, p = shell(sim, {"SSM_PLUGIN_GIVE_UP_SECONDS": "2"})
        p.write(b"x")
        p.read_until(b"the agent stopped acknowledging data", timeout=15)
        check(p.wait(10) == 0, "exit 0")
        check(terminated(sim, r["SessionId"]), "TerminateSession on the resend give-up")


def test_basic_port_old_agent_signal():
    echo = EchoServer()
    with T.Sim("--agent-version", "2.3.722.0") as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)]})
        pp.read_until(f"opened for sessionId {pp.sid}.\n".encode())
        pp.p.send_signal(signal.SIGINT)
        pp.read_until(b"Terminate signal received, exiting.\n")
        check(pp.finish(timeout=15) == 0, "exit 0")
        check(terminated(sim, pp.sid), "TerminateSession for a basic-mode agent <= 2.3.722.0")
    echo.close()


def test_not_on_channel_closed():
    with T.Sim("--close-after-ms", "300", "--close-output", "bye") as sim:
        r, p = shell(sim)
        p.read_until(f"SessionId: {r['SessionId']} : bye".encode(), timeout=10)
        check(p.wait(10) == 0, "exit 0")
        check(not terminated(sim, r["SessionId"], 1.5), "no TerminateSession on channel_closed")


def test_not_on_stdin_eof():
    with T.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = T.plugin_invocation(r, sim)
        p = T.run_pipes(argv, env)
        out, _ = p.communicate(b"hello\n", timeout=20)
        check(p.returncode == 0, "exit 0")
        check(out.endswith(b"Cannot perform start session: EOF\n"), out[-200:])
        check(not terminated(sim, r["SessionId"], 1.5), "no TerminateSession on stdin EOF")


def test_not_on_mux_port_ctrl_c():
    echo = EchoServer()
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)]})
        pp.read_until(b"Waiting for connections...\n")
        pp.p.send_signal(signal.SIGINT)
        check(pp.finish(timeout=15) == 0, "exit 0")
        check(not terminated(sim, pp.sid, 1.5), "no TerminateSession API on mux Ctrl-C")
    echo.close()


if __name__ == "__main__":
    T.main([test_tilde_dot, test_sigterm, test_sighup, test_sigterm_at_startup_is_caught,
            test_resend_give_up, test_basic_port_old_agent_signal, test_not_on_channel_closed,
            test_not_on_stdin_eof, test_not_on_mux_port_ctrl_c])
