"""Dead-peer detection (issue 7): a peer that stops answering (SIGSTOP: TCP
stays up, nothing is read or sent, pings go unanswered) is declared dead after
SSM_PLUGIN_DEAD_PEER_SECONDS; the plugin then resumes (ResumeSession, redial)
and, if the peer never comes back, ends with a clear message within the
reconnect budget instead of hanging."""
import os
import signal
import time

import ssmtest
from ssmtest import check

DEAD = 3  # seconds of silence that mean dead (default 60)


def test_frozen_peer_is_detected_and_resumed():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim, extra_env={
            "SSM_PLUGIN_DEAD_PEER_SECONDS": str(DEAD), "SSM_PLUGIN_RECONNECT_SECONDS": "60"})
        p = ssmtest.run_pty(argv, env=env)
        p.read_until(b"Sim-Echo ready")
        p.write(b"before\r")
        p.read_until(b"before")
        sim.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(DEAD + 3)  # detection, then a ResumeSession that hangs
        finally:
            sim.proc.send_signal(signal.SIGCONT)
        sim.wait_record(event="session_resumed", session=r["SessionId"], timeout=20)
        sim.wait_record(lambda x: x.get("connects", 0) >= 2, event="attach",
                        session=r["SessionId"], timeout=20)
        p.write(b"after\r")
        p.read_until(b"after", timeout=15)
        check(p.status is None, "still running after the resume")
        p.write(b"~.")
        check(p.wait(10) == 0, "exit 0")


def test_idle_but_alive_peer_is_not_dropped():
    # Pongs keep an idle session valid: no reconnect in 3x the dead time.
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim, extra_env={
            "SSM_PLUGIN_DEAD_PEER_SECONDS": str(DEAD)})
        p = ssmtest.run_pty(argv, env=env)
        p.read_until(b"Sim-Echo ready")
        time.sleep(3 * DEAD)
        check(not sim.records(event="session_resumed", session=r["SessionId"]),
              "an answering idle peer was declared dead")
        check(len(sim.records(event="open_data_channel", session=r["SessionId"])) == 1,
              "one connection only")
        p.write(b"\r~.")
        check(p.wait(10) == 0, "exit 0")


def test_frozen_for_good_ends_with_a_message():
    budget = 4
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim, extra_env={
            "SSM_PLUGIN_DEAD_PEER_SECONDS": str(DEAD),
            "SSM_PLUGIN_RECONNECT_SECONDS": str(budget)})
        p = ssmtest.run_pty(argv, env=env)
        p.read_until(b"Sim-Echo ready")
        sim.proc.send_signal(signal.SIGSTOP)
        t0 = time.time()
        try:
            p.read_until(b"could not reconnect", timeout=DEAD + budget + 10)
            code = p.wait(10)
        finally:
            sim.proc.send_signal(signal.SIGCONT)
        took = time.time() - t0
        check(code == 0, f"exit {code}")
        check(took < DEAD + budget + 5, f"ended after {took:.1f} s")
        # The terminal is restored: the pty is back in canonical mode (the
        # plugin is gone, so only its restore could have done this).
        out = bytes(p.out)
        check(b"Cannot perform start session: lost the connection" in out, out[-300:])


if __name__ == "__main__":
    ssmtest.main([test_frozen_peer_is_detected_and_resumed, test_idle_but_alive_peer_is_not_dropped,
                  test_frozen_for_good_ends_with_a_message])
