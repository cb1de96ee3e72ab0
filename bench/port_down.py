#!/usr/bin/env python3
"""Download-only port-forward benchmark (not a test): CPU s/GiB of one or
more plugins moving N MiB agent -> plugin -> local TCP client, repeated, in
the same run (so ratios share the machine's load). Reuses bench/run.

    bench/port_down.py AGENT_SIM PLUGIN[=label] [PLUGIN...] [--mib N]
        [--scheme ws|wss] [--reps N] [--perf DIR]

--perf DIR records `perf record -g` of each plugin during the transfer into
DIR/<label>-<scheme>-<rep>.data. With BENCH_ATTACH set, that command runs
instead, with the output path and "-p PID" appended, e.g.
BENCH_ATTACH="perf stat -e syscalls:sys_enter_poll -o" counts poll() calls."""

import argparse
import importlib.machinery
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_run():
    loader = importlib.machinery.SourceFileLoader("bench_run", os.path.join(ROOT, "bench", "run"))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def down_once(R, binary, sim_factory, mib, perf_out):
    n = mib << 20
    src = R.Dest("source", n)
    fw = R.start_plugin(binary, sim_factory, src.port)
    perf = None
    if perf_out:
        perf = subprocess.Popen((os.environ["BENCH_ATTACH"].split() + [perf_out] if os.environ.get("BENCH_ATTACH") else ["perf", "record", "--call-graph", os.environ.get("PERF_CALLGRAPH", "fp"), "-q", "-o", perf_out]) + ["-p", str(fw.pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    c0 = R.cpu_s(fw.pid)
    t0 = time.monotonic()
    c = socket.create_connection(("127.0.0.1", fw.port))
    got = 0
    while got < n:
        d = c.recv(1 << 18)
        if not d:
            break
        got += len(d)
    dt = time.monotonic() - t0
    cpu = R.cpu_s(fw.pid) - c0
    if perf:
        perf.send_signal(2)
        perf.wait()
    c.close()
    fw.stop()
    src.close()
    if got < n:
        raise SystemExit(f"{binary}: short download ({got} of {n} bytes)")
    return cpu / (mib / 1024), mib / dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("agent_sim")
    ap.add_argument("plugins", nargs="+")
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--official-mib", type=int, default=8,
                    help="MiB for a plugin labelled 'official'")
    ap.add_argument("--scheme", choices=("ws", "wss"), default="ws")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--perf")
    a = ap.parse_args()
    R = load_run()
    os.environ["SSM_AGENT_SIM"] = os.path.abspath(a.agent_sim)
    os.environ.setdefault("SSM_PLUGIN", os.path.abspath(a.plugins[0].partition("=")[0]))
    os.environ.setdefault("SSM_SOURCE_DIR", ROOT)
    for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(k, None)
    sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
    import ssmtest as T
    R.T = T
    ca = T.make_test_ca() if a.scheme == "wss" else None

    def sim_factory():
        return T.Sim(tls=ca) if ca else T.Sim()
    plugins = []
    for p in a.plugins:
        path, _, label = p.partition("=")
        plugins.append((os.path.abspath(path), label or os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))))
    res = {label: [] for _, label in plugins}
    for rep in range(a.reps):
        for path, label in plugins:
            mib = a.official_mib if label == "official" else a.mib
            out = os.path.join(a.perf, f"{label}-{a.scheme}-{rep}.data") if a.perf else None
            cpu, rate = down_once(R, path, sim_factory, mib, out)
            res[label].append(cpu)
            print(f"{label} {a.scheme} rep {rep}: {cpu:.2f} CPU s/GiB, {rate:.1f} MiB/s", flush=True)
    for label, v in res.items():
        print(f"{label} {a.scheme}: median {statistics.median(v):.2f} CPU s/GiB (min {min(v):.2f}, max {max(v):.2f})")
    if "official" in res:
        off = statistics.median(res["official"])
        for label, v in res.items():
            if label != "official":
                print(f"{label}/official {a.scheme}: {statistics.median(v) / off:.2f}")


if __name__ == "__main__":
    main()
