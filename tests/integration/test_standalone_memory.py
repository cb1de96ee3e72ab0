"""Memory of the whole process tree for one port forward: standalone mode
(`session-manager-plugin start-session`) vs `aws ssm start-session` running
this plugin (Python CLI + plugin). Sums Rss and Private_Dirty from
/proc/<pid>/smaps_rollup over the tree once the listener is up and one
connection has carried 1 MiB each way.

By default only standalone mode is measured and bounded (fast). Set
SSM_STANDALONE_MEMORY_COMPARE=1 to also run the AWS CLI (`aws` on PATH, or
SSM_STANDALONE_MEMORY_AWS=/path/to/aws) and
print both rows (the numbers in docs/standalone.md come from that)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import ssmtest as T
from test_port_mux import PF_DOC, EchoServer, roundtrip
from test_standalone import sa_env

PRIVATE_DIRTY_LIMIT_KB = 16 * 1024  # standalone tree; measured ~2-3 MiB


tree = T.proc_tree
rollup = T.smaps_rollup


def measure(argv, env, ready):
    """Starts argv, waits for the ready file, forwards 1 MiB, returns the
    per-process rows of the tree."""
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not os.path.exists(ready):
            T.check(time.time() < deadline and p.poll() is None, f"no ready file from {argv[0]}")
            time.sleep(0.02)
        info = json.load(open(ready))
        with socket.create_connection((info["address"], info["port"]), timeout=10) as c:
            roundtrip(c, os.urandom(1 << 20))
        time.sleep(0.2)
        pids = tree(p.pid)
        rows = [rollup(pid) for pid in pids]
        for pid in reversed(pids):  # the AWS CLI ignores SIGINT while its plugin runs
            os.kill(pid, signal.SIGINT)
        p.wait(10)
        return rows
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def show(label, rows):
    rss = sum(r.get("Rss", 0) for r in rows)
    dirty = sum(r.get("Private_Dirty", 0) for r in rows)
    procs = ", ".join(f"{r['comm']} {r.get('Rss', 0)}/{r.get('Private_Dirty', 0)}" for r in rows)
    print(f"MEMORY {label}: {len(rows)} processes, Rss {rss} kB, Private_Dirty {dirty} kB ({procs})")
    return rss, dirty


def test_standalone_port_forward_memory():
    d = tempfile.mkdtemp(prefix="sa-mem-")
    echo = EchoServer()  # the destination the sim dials
    port = echo.port
    with T.Sim() as sim:
        ready = os.path.join(d, "ready-standalone")
        argv = [T.plugin_path(), "start-session", "--target", "i-0123456789abcdef0",
                "--endpoint-url", sim.endpoint, "--document-name", PF_DOC,
                "--parameters", f"portNumber={port},localPortNumber=0"]
        rows = measure(argv, sa_env({"SSM_PLUGIN_READY_FILE": ready}), ready)
        rss, dirty = show("standalone", rows)
        T.check(len(rows) == 1, f"standalone mode started {len(rows)} processes")
        with open(T.plugin_path(), "rb") as f:
            sanitized = b"__asan_init" in f.read()  # ASan shadow memory inflates everything
        T.check(0 < dirty and (sanitized or dirty < PRIVATE_DIRTY_LIMIT_KB), f"Private_Dirty {dirty} kB")
        aws = os.environ.get("SSM_STANDALONE_MEMORY_AWS") or shutil.which("aws")
        if os.environ.get("SSM_STANDALONE_MEMORY_COMPARE") == "1" and aws:
            bindir = os.path.join(d, "bin")
            os.mkdir(bindir)
            os.symlink(os.path.abspath(T.plugin_path()), os.path.join(bindir, "session-manager-plugin"))
            ready = os.path.join(d, "ready-aws")
            env = sa_env({"SSM_PLUGIN_READY_FILE": ready, "AWS_DEFAULT_REGION": "us-east-1",
                          "PATH": bindir + os.pathsep + os.environ.get("PATH", "")})
            argv = [aws, "ssm", "start-session", "--target", "i-0123456789abcdef0",
                    "--endpoint-url", sim.endpoint.rstrip("/"), "--document-name", PF_DOC,
                    "--parameters", f"portNumber={port},localPortNumber=0"]
            rows = measure(argv, env, ready)
            show(f"{aws} ssm start-session + plugin", rows)
    echo.close()


if __name__ == "__main__":
    T.main([test_standalone_port_forward_memory])
