#!/usr/bin/env python3
"""Throughput/cost benchmark (not a test): pushes N MiB through the plugin's
shell handler and the agent-sim "Sim-Echo" document, and reports the
plugin's CPU seconds per GiB moved (from wait4 rusage of the child), peak
RSS (VmHWM) and peak Private_Dirty (smaps_rollup, sampled every 50 ms).

Usage: bench/bench_channel.py [MiB] [extra agent-sim args...]
Env: SSM_PLUGIN, SSM_AGENT_SIM (default: build-bench/ paths), SSM_SOURCE_DIR."""
import hashlib
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
os.environ.setdefault("SSM_SOURCE_DIR", os.path.join(HERE, ".."))
for var, rel in (("SSM_PLUGIN", "plugin/session-manager-plugin"),
                 ("SSM_AGENT_SIM", "tests/agent-sim/agent-sim")):
    os.environ.setdefault(var, os.path.join(HERE, "..", "build-bench", rel))

import ssmtest  # noqa: E402


def proc_kb(pid, path, key):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    sim_args = sys.argv[2:]
    line = b"0123456789abcdef" * 6 + b"\n"
    data = (line * (mib * 1024 * 1024 // len(line) + 1))[:mib * 1024 * 1024]
    with ssmtest.Sim(*sim_args) as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        p = ssmtest.run_pipes(argv, env)
        peak = {"hwm": 0, "dirty": 0}
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak["hwm"] = max(peak["hwm"], proc_kb(p.pid, "status", "VmHWM"))
                peak["dirty"] = max(peak["dirty"], proc_kb(p.pid, "smaps_rollup", "Private_Dirty"))
                time.sleep(0.05)

        def feed():
            try:
                p.stdin.write(data)
                p.stdin.close()
            except BrokenPipeError:
                pass

        threading.Thread(target=sample, daemon=True).start()
        threading.Thread(target=feed, daemon=True).start()
        t0 = time.time()
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.time() - t0
        done.set()
        p.returncode = os.waitstatus_to_exitcode(status)
        ok = hashlib.sha256(data).digest() == hashlib.sha256(
            out[out.find(b"Sim-Echo ready\r\n") + 16:len(out) - len(b"Cannot perform start session: EOF\n")]).digest()
    cpu = ru.ru_utime + ru.ru_stime
    gib = 2 * mib / 1024  # every byte goes up and comes back
    print(f"moved {mib} MiB each way in {wall:.2f} s ({mib / wall:.1f} MiB/s), intact={ok}, exit={p.returncode}")
    print(f"plugin CPU {cpu:.2f} s (user {ru.ru_utime:.2f}, sys {ru.ru_stime:.2f}) = {cpu / gib:.2f} CPU s/GiB")
    print(f"peak RSS (VmHWM) {peak['hwm']} KiB (ru_maxrss {ru.ru_maxrss} KiB), peak Private_Dirty {peak['dirty']} KiB")


if __name__ == "__main__":
    main()
