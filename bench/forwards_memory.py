#!/usr/bin/env python3
"""Memory of N port forwards, whole process trees, against agent-sim:

  * standalone: one `session-manager-plugin start-session --forward ...` with
    N --forward options (one process, one event loop, N SSM sessions);
  * aws CLI: N `aws ssm start-session` processes, each with its plugin child
    (this plugin, and the official one when OFFICIAL_PLUGIN is set).

Rss and Private_Dirty (/proc/PID/smaps_rollup) are summed over every process
involved once all listeners are up (idle), and again after every forward has
carried 1 MiB each way, and 3 s after that. Not a test.

usage: bench/forwards_memory.py PLUGIN AGENT_SIM [--counts 1,5] [--aws aws,/usr/bin/aws]
Prints a markdown table to stdout, progress to stderr."""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import ssmtest as T  # noqa: E402

PF_DOC = "AWS-StartPortForwardingSession"


def clean_env(extra):
    env = dict(os.environ)
    for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "SSM_PLUGIN_READY_FILE", "SSM_PLUGIN_READY_FD"):
        env.pop(k, None)
    env.update({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secretsecretsecret",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"})
    env.update(extra)
    return env


tree = T.proc_tree
rollup = T.smaps_rollup


def wait_lines(path, n, procs, timeout=60):
    deadline = time.time() + timeout
    while True:
        if os.path.exists(path):
            with open(path) as f:
                lines = [json.loads(x) for x in f.read().splitlines()]
            if len(lines) >= n:
                return lines
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"listeners not ready ({path})")
        time.sleep(0.02)


def sample(procs):
    pids = [q for p in procs for q in tree(p.pid)]
    rows = [rollup(q) for q in pids]
    return len(pids), sum(r.get("Rss", 0) for r in rows), sum(r.get("Private_Dirty", 0) for r in rows)


def exercise_and_measure(procs, listeners):
    time.sleep(0.3)
    n, idle_rss, idle_dirty = sample(procs)
    payload = os.urandom(1 << 20)
    for ln in listeners:
        with socket.create_connection((ln["address"], ln["port"]), timeout=20) as c:
            c.sendall(payload)
            got = 0
            while got < len(payload):
                d = c.recv(65536)
                if not d:
                    raise RuntimeError("forward closed early")
                got += len(d)
    time.sleep(0.3)
    n, rss, dirty = sample(procs)
    time.sleep(3)  # an idle session gives its buffer pages back after 2 s
    n, settled_rss, settled_dirty = sample(procs)
    return n, idle_rss, idle_dirty, rss, dirty, settled_rss, settled_dirty


def stop(procs):
    for p in procs:
        for q in reversed(tree(p.pid)):  # the AWS CLI ignores SIGINT while its plugin runs
            try:
                os.kill(q, signal.SIGTERM)
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_standalone(plugin, sim, echo, n, d):
    ready = os.path.join(d, f"sa-{n}")
    argv = [plugin, "start-session", "--target", "i-0123456789abcdef0", "--endpoint-url", sim.endpoint]
    for _ in range(n):
        argv += ["--forward", f"0:{echo.port}"]
    p = subprocess.Popen(argv, env=clean_env({"SSM_PLUGIN_READY_FILE": ready}),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return exercise_and_measure([p], wait_lines(ready, n, [p]))
    finally:
        stop([p])


def run_cli(aws, plugin, sim, echo, n, d):
    bindir = tempfile.mkdtemp(dir=d)
    os.symlink(os.path.abspath(plugin), os.path.join(bindir, "session-manager-plugin"))
    procs, listeners = [], []
    try:
        for i in range(n):
            env = clean_env({"PATH": bindir + os.pathsep + os.environ.get("PATH", "")})
            ready = os.path.join(bindir, f"ready-{i}")
            env["SSM_PLUGIN_READY_FILE"] = ready  # ours publishes it; for the official see below
            argv = [aws, "ssm", "start-session", "--target", "i-0123456789abcdef0",
                    "--endpoint-url", sim.endpoint.rstrip("/"), "--document-name", PF_DOC,
                    "--parameters", f"portNumber={echo.port},localPortNumber=0"]
            p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
            procs.append(p)
            listeners.append(wait_port(p, ready))
        return exercise_and_measure(procs, listeners)
    finally:
        stop(procs)


def wait_port(p, ready, timeout=60):
    """The ready file (ours) or the "Port N opened" line (the official one)."""
    deadline = time.time() + timeout
    buf = b""
    os.set_blocking(p.stdout.fileno(), False)
    while time.time() < deadline and p.poll() is None:
        if os.path.exists(ready):
            return json.load(open(ready))
        try:
            chunk = p.stdout.read()
        except (BlockingIOError, TypeError):
            chunk = None
        if chunk:
            buf += chunk
            i = buf.find(b"Port ")
            j = buf.find(b" opened", i)
            if i >= 0 and j > i:
                return {"address": "127.0.0.1", "port": int(buf[i + 5:j])}
        time.sleep(0.02)
    raise RuntimeError("aws ssm start-session did not open its port")


def cli_label(aws):
    out = subprocess.run([aws, "--version"], capture_output=True, text=True).stdout.split()
    return out[0] if out else aws


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("plugin")
    ap.add_argument("sim")
    ap.add_argument("--counts", default="1,5")
    ap.add_argument("--aws", default=",".join(x for x in (shutil.which("aws"), "/usr/bin/aws")
                                              if x and os.path.exists(x)))
    a = ap.parse_args()
    os.sync()  # fresh binaries' dirty page-cache pages count as Private_Dirty
    os.environ["SSM_AGENT_SIM"] = a.sim
    counts = [int(x) for x in a.counts.split(",")]
    official = os.environ.get("OFFICIAL_PLUGIN")
    d = tempfile.mkdtemp(prefix="fwd-mem-")
    echo = T.EchoServer()
    rows = []
    with T.Sim() as sim:
        for n in counts:
            print(f"standalone x{n}", file=sys.stderr)
            rows.append(("standalone `start-session`", n, *run_standalone(a.plugin, sim, echo, n, d)))
        seen = set()
        for aws in [x for x in a.aws.split(",") if x]:
            label = cli_label(aws)
            if label in seen:
                continue
            seen.add(label)
            for name, plugin in (("this plugin", a.plugin), ("official plugin", official)):
                if not plugin:
                    continue
                for n in counts:
                    print(f"{label} + {name} x{n}", file=sys.stderr)
                    rows.append((f"{label} `ssm start-session` + {name}", n,
                                 *run_cli(aws, plugin, sim, echo, n, d)))
    print("| Setup | forwards | processes | Rss idle | Private_Dirty idle "
          "| Rss after 1 MiB each way per forward | Private_Dirty after | Rss 3 s later "
          "| Private_Dirty 3 s later |")
    print("|---|---|---|---|---|---|---|---|---|")
    for setup, n, procs, *mem in rows:
        print(f"| {setup} | {n} | {procs} | " + " | ".join(f"{v / 1024:.1f}" for v in mem) + " |")
    print("\n(MiB)")


if __name__ == "__main__":
    main()
