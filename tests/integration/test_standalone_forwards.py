"""Standalone mode with several --forward LOCAL:REMOTE[:HOST] (docs/standalone.md):
one process, one event loop, one SSM session per forward. Checks the
StartSession bodies, one ready file listing every listener, data through all
forwards at once, one session ending without disturbing the others, SIGTERM
ending them all (TerminateSession for each), all-or-nothing start, and the
usage errors."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import ssmtest as T
from test_port_mux import EchoServer, roundtrip
from test_standalone import run_sa, sa_env

PF = "AWS-StartPortForwardingSession"
PF_HOST = "AWS-StartPortForwardingSessionToRemoteHost"


def start_calls(sim):
    return [r for r in sim.records("api_call") if r["target"] == "AmazonSSM.StartSession"]


def wait_ready(path, p, timeout=10):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        T.check(time.time() < deadline and p.poll() is None, "no ready file")
        time.sleep(0.02)
    with open(path) as f:
        return [json.loads(line) for line in f.read().splitlines()]


def test_three_forwards_one_process():
    a, b = EchoServer(), EchoServer()
    d = tempfile.mkdtemp(prefix="sa-fwd-")
    ready = os.path.join(d, "ready.json")
    with T.Sim() as sim:
        p = subprocess.Popen([T.plugin_path(), "start-session", "--target", "i-4",
                              "--endpoint-url", sim.endpoint, "--reason", "three",
                              "--forward", f"0:{a.port}",
                              "--forward", f"0:{b.port}:localhost",
                              f"--forward=0:{a.port}:127.0.0.1"],
                             env=sa_env({"SSM_PLUGIN_READY_FILE": ready}),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            lines = wait_ready(ready, p)
            T.check(len(lines) == 3, f"ready lines {lines}")
            sids = [ln["session_id"] for ln in lines]
            T.check(len(set(sids)) == 3, f"session ids {sids}")
            T.check(len({ln["port"] for ln in lines}) == 3, f"ports {lines}")
            T.check(os.listdir(f"/proc/{p.pid}/task") == [str(p.pid)], "more than one thread")
            bodies = sorted((c["body"] for c in start_calls(sim)), key=json.dumps)
            want = sorted([
                {"Target": "i-4", "DocumentName": PF, "Reason": "three",
                 "Parameters": {"portNumber": [str(a.port)], "localPortNumber": ["0"]}},
                {"Target": "i-4", "DocumentName": PF_HOST, "Reason": "three",
                 "Parameters": {"host": ["localhost"], "portNumber": [str(b.port)],
                                "localPortNumber": ["0"]}},
                {"Target": "i-4", "DocumentName": PF_HOST, "Reason": "three",
                 "Parameters": {"host": ["127.0.0.1"], "portNumber": [str(a.port)],
                                "localPortNumber": ["0"]}},
            ], key=json.dumps)
            T.check(bodies == want, f"StartSession bodies {bodies}")

            # All three carry data at the same time.
            socks = [socket.create_connection(("127.0.0.1", ln["port"])) for ln in lines]
            for i, c in enumerate(socks):
                c.sendall(f"fwd{i}-".encode() * 20000)
            for i, c in enumerate(socks):
                want_b = f"fwd{i}-".encode() * 20000
                got = b""
                c.settimeout(10)
                while len(got) < len(want_b):
                    chunk = c.recv(65536)
                    T.check(chunk, f"forward {i} closed after {len(got)} bytes")
                    got += chunk
                T.check(got == want_b, f"forward {i}: bytes differ")
                c.close()

            # One session ends (terminated elsewhere): the others go on.
            sim.terminate_session(sids[0])  # as the console's Terminate button
            deadline = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", lines[0]["port"]), timeout=1).close()
                except OSError:
                    break
                T.check(time.time() < deadline, "ended forward still listening")
                time.sleep(0.05)
            T.check(p.poll() is None, "process ended with one of three sessions")
            with socket.create_connection(("127.0.0.1", lines[1]["port"])) as c:
                roundtrip(c, b"still here\n" * 100)

            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=15)
            T.check(p.returncode == 0, f"exit {p.returncode}; err {err!r}")
            for sid, ln in zip(sids, lines):
                T.check(f"\nStarting session with SessionId: {sid}\n".encode() in out, f"stdout {out!r}")
                T.check(f"Port {ln['port']} opened for sessionId {sid}.".encode() in out,
                        f"stdout {out!r}")
            T.check(f"Exiting session with sessionId: {sids[0]}".encode() in out, f"stdout {out!r}")
            ended = {r["session"] for r in sim.records("session_terminated")}
            T.check(set(sids) <= ended, f"terminated {ended}, want {sids}")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    a.close()
    b.close()


def test_two_forwards_over_wss():
    """Real sessions are TLS: each forward's websocket verifies the simulator's
    certificate through its own vhost, on the one loop."""
    ca = T.make_test_ca()
    echo = EchoServer()
    d = tempfile.mkdtemp(prefix="sa-fwd-tls-")
    ready = os.path.join(d, "ready.json")
    with T.Sim(tls=ca) as sim:
        T.check(sim.endpoint.startswith("https://"), sim.endpoint)
        p = subprocess.Popen([T.plugin_path(), "start-session", "--target", "i-6",
                              "--endpoint-url", sim.endpoint,
                              "--forward", f"0:{echo.port}", "--forward", f"0:{echo.port}"],
                             env=sa_env({"SSM_PLUGIN_READY_FILE": ready,
                                         "AWS_CA_BUNDLE": ca["ca_cert"]}),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            lines = wait_ready(ready, p)
            T.check(len(lines) == 2, f"ready lines {lines}")
            for ln in lines:
                with socket.create_connection(("127.0.0.1", ln["port"])) as c:
                    roundtrip(c, os.urandom(200000))
            opened = [r for r in sim.records("open_data_channel")]
            T.check(len(opened) == 2, f"{len(opened)} data channels opened")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=15)
            T.check(p.returncode == 0, f"exit {p.returncode}; err {err!r}")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    echo.close()


def test_one_port_taken_others_run():
    """A forward whose local port is taken ends at once with its own message;
    the ready file then lists the listener that did come up."""
    echo = EchoServer()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    d = tempfile.mkdtemp(prefix="sa-fwd-taken-")
    ready = os.path.join(d, "ready.json")
    with T.Sim() as sim:
        p = subprocess.Popen([T.plugin_path(), "start-session", "--target", "i-7",
                              "--endpoint-url", sim.endpoint,
                              "--forward", f"{taken.getsockname()[1]}:{echo.port}",
                              "--forward", f"0:{echo.port}"],
                             env=sa_env({"SSM_PLUGIN_READY_FILE": ready}),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            lines = wait_ready(ready, p)
            T.check(len(lines) == 1, f"ready lines {lines}")
            with socket.create_connection(("127.0.0.1", lines[0]["port"])) as c:
                roundtrip(c, b"the other one\n" * 1000)
            T.check(p.poll() is None, "process ended with one session left")
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=15)
            T.check(p.returncode == 0, f"exit {p.returncode}; err {err!r}")
            T.check(b"address already in use" in out, f"stdout {out!r}")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    taken.close()
    echo.close()


def test_all_or_nothing_start():
    echo = EchoServer()
    with T.Sim("--start-fail-after", "1") as sim:
        rc, out, err = run_sa(["--target", "i-5", "--endpoint-url", sim.endpoint,
                               "--forward", f"0:{echo.port}", "--forward", f"0:{echo.port}"])
        T.check(rc == 254, f"exit {rc}; err {err!r}")
        T.check(b"An error occurred (ThrottlingException) when calling the StartSession operation: "
                b"Rate exceeded" in err, f"stderr {err!r}")
        T.check(f"--forward 0:{echo.port}: ".encode() in err, f"stderr {err!r}")
        T.check(b"Starting session" not in out, f"stdout {out!r}")
        created = [r["session"] for r in sim.records("session_created")]
        ended = [r["session"] for r in sim.records("session_terminated")]
        T.check(len(created) == 1 and created == ended,
                f"started {created}, terminated {ended}: the one that started must be terminated")
    echo.close()


def test_forward_usage_errors():
    cases = [(["--target", "i-1", "--forward", "80"], b"--forward: expected LOCAL:REMOTE[:HOST]"),
             (["--target", "i-1", "--forward", "x:80"], b"--forward: expected"),
             (["--target", "i-1", "--forward", "80:0"], b"--forward: expected"),
             (["--target", "i-1", "--forward", "80:70000"], b"--forward: expected"),
             (["--target", "i-1", "--forward", "80:22:"], b"--forward: expected"),
             (["--target", "i-1", "--forward"], b"--forward: expected"),
             (["--target", "i-1", "--forward", "1:2", "--document-name", PF],
              b"--forward cannot be combined with --document-name or --parameters"),
             (["--target", "i-1"] + ["--forward=0:22"] * 17, b"at most 16 --forward options")]
    for args, want in cases:
        rc, out, err = run_sa(args, env=sa_env())
        T.check(rc == 252, f"{args}: exit {rc}")
        T.check(want in err, f"{args}: stderr {err!r}")
        T.check(out == b"", f"{args}: stdout {out!r}")


if __name__ == "__main__":
    T.main([test_three_forwards_one_process, test_two_forwards_over_wss,
            test_one_port_taken_others_run, test_all_or_nothing_start, test_forward_usage_errors])
