"""Upload pacing (issue 5): by default the plugin sends at most ~1000
data messages a second (a token bucket, burst 16), the official plugin's
ceiling and the rate the service is reported to tolerate; it never sleeps.
SSM_PLUGIN_PACE_MSGS sets another rate, 0 turns pacing off.

The assertion is the cap itself, read from the simulator's receive
timestamps: no one-second window holds more messages than rate + burst
(each sequence number counted once)."""
import base64
import hashlib
import os

import ssmtest
from ssmtest import check

BURST = 16


def upload(pace, n_msgs):
    data = base64.b64encode(hashlib.shake_256(b"pace").digest(n_msgs * 768))[: n_msgs * 1024]
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        if pace is None:
            env.pop("SSM_PLUGIN_PACE_MSGS", None)  # the built-in default
        else:
            env["SSM_PLUGIN_PACE_MSGS"] = str(pace)
        proc = ssmtest.run_pipes(argv, env)
        out, err = proc.communicate(data, timeout=100)
        check(proc.returncode == 0, f"exit {proc.returncode}: {err[-300:]!r}")
        check(data in out, "the upload came back intact")
        # First arrivals only: pacing applies to first transmissions; a
        # retransmission after an RTO expired on a loaded machine (as the
        # official plugin's, not paced) is not a second message of the rate.
        first = {}
        for e in sim.records(event="recv"):
            if e.get("type") == "input_stream_data" and e.get("payload_type") == 1:
                first.setdefault(e["seq"], e["t_ms"])
        times = sorted(first.values())
    check(len(times) >= n_msgs * 0.9, f"{len(times)} data messages seen")
    return times


def max_per_second(times):
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 1000:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_default_rate_is_capped():
    times = upload(None, 2500)
    peak = max_per_second(times)
    print(f"  default: peak {peak} msgs in 1 s over {len(times)} messages")
    check(peak <= 1000 + BURST + 20, f"peak {peak} messages/s exceeds the default cap")


def test_configured_rate_is_capped():
    times = upload(300, 900)
    peak = max_per_second(times)
    print(f"  300/s: peak {peak} msgs in 1 s")
    check(peak <= 300 + BURST + 10, f"peak {peak} messages/s exceeds 300 + burst")


if __name__ == "__main__":
    ssmtest.main([test_default_rate_is_capped, test_configured_rate_is_capped])
