"""Websocket drops after open: the plugin calls ResumeSession (signed, with
the fresh token), redials, and the channel replays: every byte arrives
exactly once (PROTOCOL.md §13.2, PROTOCOL-NEWEST.md §3)."""
import hashlib
import time

import ssmtest
from ssmtest import check


def test_cuts_resume_and_stream_intact():
    data = b"".join(hashlib.sha256(str(i).encode()).hexdigest().encode() + b"\n"
                    for i in range(32000))  # ~2 MiB of lines without '~'
    with ssmtest.Sim("--cut-after-msgs", "400", "--cut-count", "3") as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        p = ssmtest.run_pipes(argv, env)
        t0 = time.time()
        out, err = p.communicate(data, timeout=100)
        check(p.returncode == 0, f"exit {p.returncode}")
        head = f"\nStarting session with SessionId: {r['SessionId']}\nSim-Echo ready\r\n".encode()
        tail = b"Cannot perform start session: EOF\n"
        check(out.startswith(head) and out.endswith(tail), f"{out[:100]!r} ... {out[-100:]!r}")
        body = out[len(head):len(out) - len(tail)]
        check(len(body) == len(data), f"{len(body)} of {len(data)} bytes, no loss or duplication")
        check(hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), "SHA-256 matches")
        cuts = sim.records(event="fault_cut", session=r["SessionId"])
        resumes = sim.records(event="session_resumed", session=r["SessionId"])
        opens = sim.records(event="open_data_channel", session=r["SessionId"])
        check(len(cuts) == 3, f"3 cuts happened: {len(cuts)}")
        check(len(resumes) >= 3, f"ResumeSession per reconnect: {len(resumes)}")
        check(len(opens) >= 4, f"OpenDataChannel per connection: {len(opens)}")
        print(f"  {len(data) / (time.time() - t0) / 1e6:.1f} MB/s with 3 cuts")


def test_terminated_elsewhere_ends_cleanly():
    with ssmtest.Sim("--cut-after-msgs", "3") as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        p = ssmtest.run_pty(argv, env=env)
        p.read_until(b"Sim-Echo ready")
        # End the session service-side: channel_closed, or (if the socket is
        # already gone) a resume without token: "timed out".
        status, _ = sim.terminate_session(r["SessionId"])
        check(status == 200, "TerminateSession")
        p.write(b"a" * 10)
        out = p.read_until(b"\n", timeout=15)
        deadline = time.time() + 15
        while b"timed out." not in bytes(p.out) and b"Exiting session" not in bytes(p.out):
            check(time.time() < deadline, f"no end text: {bytes(p.out)[-300:]!r}")
            p._read_some(0.2)
        text = bytes(p.out).replace(b"\r\n", b"\n")
        check(f"Session: {r['SessionId']} timed out.\n".encode() in text
              or f"Exiting session with sessionId: {r['SessionId']}.".encode() in text, text[-200:])
        check(p.wait(10) == 0, "exit 0")


def test_give_up_terminates_the_session():
    # The agent ignores all input; with the resend give-up shortened to 2 s
    # the plugin calls TerminateSession, says why, and exits 0.
    with ssmtest.Sim("--withhold-acks-ms", "60000") as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim, extra_env={"SSM_PLUGIN_GIVE_UP_SECONDS": "2"})
        p = ssmtest.run_pty(argv, env=env)
        p.read_until(b"Sim-Echo ready")
        t0 = time.time()
        p.read_until(b"the agent stopped acknowledging data", timeout=15)
        check(p.wait(10) == 0, "exit 0")
        check(time.time() - t0 < 8, "gave up after about 2 s")
        sim.wait_record(event="session_terminated", session=r["SessionId"], timeout=5)


if __name__ == "__main__":
    ssmtest.main([test_cuts_resume_and_stream_intact, test_terminated_elsewhere_ends_cleanly,
                  test_give_up_terminates_the_session])
