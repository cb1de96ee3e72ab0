#!/usr/bin/env python3
"""Port-forwarding benchmark (not a test): the plugin in mux mode against
agent-sim on loopback, with a socat TCP relay as the floor.

Reports: launch-to-listening ms, throughput MiB/s up / down / echo (both ways
at once), plugin CPU seconds per GiB, plugin RSS idle / peak during bulk /
with 100 open connections.

Usage: SSM_PLUGIN=... SSM_AGENT_SIM=... bench/bench_port.py [MiB]
(defaults: build-port-rel binaries next to this script's repository, 256 MiB)."""

import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for var, rel in (("SSM_PLUGIN", "build-port-rel/plugin/session-manager-plugin"),
                 ("SSM_AGENT_SIM", "build-port-rel/tests/agent-sim/agent-sim")):
    os.environ.setdefault(var, os.path.join(ROOT, rel))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import ssmtest as T  # noqa: E402

MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 256
CLK = os.sysconf("SC_CLK_TCK")
BLOCK = os.urandom(1 << 20)


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Proc:
    """CPU seconds and memory of a forwarder; with tree=True also of its
    children (socat relays in a forked child per connection)."""

    def __init__(self, pid, tree=False):
        self.pid, self.tree = pid, tree

    def cpu(self):
        f = _stat_fields(self.pid)
        total = (int(f[11]) + int(f[12])) / CLK
        if self.tree:
            total += (int(f[13]) + int(f[14])) / CLK  # reaped children
            for ch in _children(self.pid):
                try:
                    g = _stat_fields(ch)
                    total += (int(g[11]) + int(g[12])) / CLK
                except OSError:
                    pass
        return total

    def kib(self, key):
        vals = [_status_kib(self.pid, key)]
        if self.tree:
            for ch in _children(self.pid):
                try:
                    vals.append(_status_kib(ch, key))
                except OSError:
                    pass
        return max(vals)


class Dest:
    """Destination server: mode 'sink' (counts), 'source' (sends n bytes), 'echo'."""

    def __init__(self, mode, nbytes=0):
        self.mode, self.n = mode, nbytes
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(512)
        self.port = self.ls.getsockname()[1]
        self.received = 0
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            if self.mode == "source":
                left = self.n
                while left > 0:
                    k = min(left, len(BLOCK))
                    c.sendall(BLOCK[:k])
                    left -= k
                c.shutdown(socket.SHUT_WR)
                c.recv(1)
            else:
                while True:
                    d = c.recv(1 << 18)
                    if not d:
                        break
                    if self.mode == "echo":
                        c.sendall(d)
                    else:
                        self.received += len(d)
                        if self.received >= self.n:
                            self.done.set()
        except OSError:
            pass
        finally:
            c.close()


def transfer(port, mode, nbytes):
    """Client side through the forwarder; returns seconds."""
    c = socket.create_connection(("127.0.0.1", port))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.time()
    if mode == "up":
        left = nbytes
        while left > 0:
            k = min(left, len(BLOCK))
            c.sendall(BLOCK[:k])
            left -= k
        return c, t0
    got = 0
    want = nbytes
    if mode == "echo":
        def writer():
            left = nbytes
            while left > 0:
                k = min(left, len(BLOCK))
                c.sendall(BLOCK[:k])
                left -= k
        threading.Thread(target=writer, daemon=True).start()
    while got < want:
        d = c.recv(1 << 18)
        if not d:
            break
        got += len(d)
    dt = time.time() - t0
    c.close()
    return dt


def measure(port, proc, mode, nbytes):
    cpu0 = proc.cpu()
    if mode == "up":
        dest_sink = DESTS["up"]
        dest_sink.received = 0
        dest_sink.done.clear()
        c, t0 = transfer(port, "up", nbytes)
        dest_sink.done.wait(600)
        dt = time.time() - t0
        c.close()
    else:
        dt = transfer(port, mode, nbytes)
    cpu = proc.cpu() - cpu0
    return dt, cpu


DESTS = {}


def run_forwarder(name, start):
    """start(dest_port) -> (listen_port, Proc, stop). Returns a result dict."""
    res = {}
    n = MIB << 20
    DESTS["up"] = Dest("sink", n)
    for mode, dest in (("up", DESTS["up"]), ("down", Dest("source", n)), ("echo", Dest("echo"))):
        port, proc, stop = start(dest.port)
        if mode == "up":
            res["rss_idle_kib"] = proc.kib("VmRSS")
        dt, cpu = measure(port, proc, mode, n)
        res[f"{mode}_mib_s"] = MIB / dt
        res[f"{mode}_cpu_s_per_gib"] = cpu / (MIB / 1024) / (2 if mode == "echo" else 1)
        res[f"{mode}_peak_rss_kib"] = proc.kib("VmHWM")
        if mode == "echo":
            conns = []
            for _ in range(100):
                c = socket.create_connection(("127.0.0.1", port))
                c.sendall(b"x" * 100)
                conns.append(c)
            for c in conns:
                got = b""
                while len(got) < 100:
                    got += c.recv(100)
            time.sleep(0.3)
            res["rss_100_conns_kib"] = proc.kib("VmRSS")
            for c in conns:
                c.close()
        stop()
    print(f"\n== {name} ({MIB} MiB per direction) ==")
    for k, v in res.items():
        print(f"  {k:24s} {v:10.2f}" if isinstance(v, float) else f"  {k:24s} {v:10d}")
    return res


def start_plugin(dest_port):
    sim = T.Sim()
    resp = sim.start_session(doc="AWS-StartPortForwardingSession",
                             params={"portNumber": [str(dest_port)]})
    argv, env = T.plugin_invocation(resp, sim, doc="AWS-StartPortForwardingSession")
    t0 = time.time()
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    out = b""
    while b"Waiting for connections...\n" not in out:
        r, _, _ = select.select([p.stdout], [], [], 10)
        if not r:
            raise SystemExit(f"plugin did not start: {out!r}")
        out += os.read(p.stdout.fileno(), 4096)
    LAUNCH_MS.append((time.time() - t0) * 1000)
    port = int(re.search(rb"Port (\d+) opened", out).group(1))

    def stop():
        p.send_signal(2)
        p.wait(10)
        sim.stop()
    return port, Proc(p.pid), stop


def start_socat(dest_port):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                          f"TCP:127.0.0.1:{dest_port}"])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.02)
    time.sleep(0.1)
    return port, Proc(p.pid, tree=True), lambda: (p.terminate(), p.wait(5))


LAUNCH_MS = []

if __name__ == "__main__":
    for tool in (os.environ["SSM_PLUGIN"], os.environ["SSM_AGENT_SIM"]):
        if not os.path.exists(tool):
            raise SystemExit(f"missing {tool}: build it (cmake -B build-port-rel -DCMAKE_BUILD_TYPE=Release)")
    run_forwarder("session-manager-plugin (mux, via agent-sim)", start_plugin)
    print(f"  launch_to_listening_ms   {statistics.median(LAUNCH_MS):10.1f} (median of {len(LAUNCH_MS)})")
    if shutil.which("socat"):
        run_forwarder("socat TCP relay (floor)", start_socat)
    else:
        print("socat not installed: no floor")
