"""10 MiB through the shell handler and the Sim-Echo document, byte for byte
(SHA-256): clean, under loss/duplication/reordering in both directions, and
under a storm of malformed frames (PROTOCOL.md §7, §4.3).

Under 10% loss each way both ends resend head-of-line only (every lost agent
frame costs the agent's ~100 ms resend tick), so the lossy case runs at about
0.1 MB/s (the real agent's resend policy, which the simulator models): the
full 10 MiB takes about two minutes. SSM_LOSSY_MIB sets another size (CI's
sanitizer stage uses 3)."""
import base64
import hashlib
import os
import signal
import time

import ssmtest
from ssmtest import check

SIZE = 10 * 1024 * 1024


def payload(size=SIZE):
    # Printable lines without '~' (the escape filter would act on "\n~").
    raw = hashlib.shake_256(b"ssm-bulk").digest(size * 3 // 4 + 3)
    text = base64.b64encode(raw)
    lines = [text[i:i + 99] + b"\n" for i in range(0, len(text), 99)]
    data = b"".join(lines)[:size]
    check(b"~" not in data, "no escapes in the payload")
    return data


def run_echo(sim_args, timeout=110, size=SIZE):
    data = payload(size)
    with ssmtest.Sim(*sim_args) as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        proc = ssmtest.run_pipes(argv, env)
        t0 = time.time()
        out, err = proc.communicate(data, timeout=timeout)
        took = time.time() - t0
        check(proc.returncode == 0, f"exit {proc.returncode}; stderr {err[-300:]!r}")
        head = f"\nStarting session with SessionId: {r['SessionId']}\nSim-Echo ready\r\n".encode()
        tail = b"Cannot perform start session: EOF\n"
        check(out.startswith(head), f"head: {out[:120]!r}")
        check(out.endswith(tail), f"tail: {out[-120:]!r}")
        body = out[len(head):len(out) - len(tail)]
        check(len(body) == len(data), f"{len(body)} bytes echoed of {len(data)}")
        check(hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), "SHA-256 matches")
        print(f"  {sim_args or 'clean'}: {len(data) / took / 1e6:.1f} MB/s")
        return sim


def test_10mib_clean():
    run_echo([])


def test_10mib_lossy_both_ways():
    mib = int(os.environ.get("SSM_LOSSY_MIB", "10"))
    sim = run_echo(["--drop", "0.1", "--dup", "0.05", "--reorder", "0.1", "--drop-in", "0.1",
                    "--seed", "7"], timeout=110 if mib <= 8 else 400, size=mib * 1024 * 1024)
    # The faults really happened.
    for ev in ("fault_drop", "fault_dup", "fault_drop_in"):
        check(sim.records(event=ev), f"sim recorded {ev}")


def test_malformed_storm_keeps_stream_intact():
    sim = run_echo(["--malformed", "0.2", "--seed", "3"])
    check(len(sim.records(event="fault_malformed")) > 100, "malformed frames were injected")


if __name__ == "__main__":
    if int(os.environ.get("SSM_LOSSY_MIB", "10")) > 8:
        signal.alarm = lambda n: None  # the long run: no per-test alarm
    ssmtest.main([test_10mib_clean, test_10mib_lossy_both_ways, test_malformed_storm_keeps_stream_intact])
