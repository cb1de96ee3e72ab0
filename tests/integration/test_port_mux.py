"""Mux port forwarding (PROTOCOL.md §10.5, §1.4, §12.2) against agent-sim:
exact stdout texts, echo through streams, many connections without fd/RSS
growth, ConnectToPortError, Ctrl-C, port in use, unix socket, remote host.

The helpers here are shared by the other test_port_*.py files."""

import os
import re
import select
import signal
import socket
import tempfile
import time

import ssmtest as T

PF_DOC = "AWS-StartPortForwardingSession"
REMOTE_DOC = "AWS-StartPortForwardingSessionToRemoteHost"


# ---- local destination servers ----------------------------------------------

EchoServer = T.EchoServer  # shared with bench/ (tests/lib/ssmtest.py)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- the plugin in a port session -------------------------------------------

class PortPlugin:
    """Starts a port session on sim and runs the plugin with stdout piped."""

    def __init__(self, sim, doc, params, stdin_pipe=False):
        resp = sim.start_session(doc=doc, params=params)
        self.sid = resp["SessionId"]
        argv, env = T.plugin_invocation(resp, sim, doc=doc)
        self.p = T.run_pipes(argv, env)
        if not stdin_pipe:
            self.p.stdin.close()
        self.out = b""

    def _read(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            return False
        d = os.read(self.p.stdout.fileno(), 65536)
        if not d:
            return None
        self.out += d
        return True

    def read_until(self, needle, timeout=10.0):
        deadline = time.time() + timeout
        while needle not in self.out:
            left = deadline - time.time()
            T.check(left > 0, f"timeout waiting for {needle!r}; stdout so far {self.out!r}")
            T.check(self._read(left) is not None, f"EOF waiting for {needle!r}; stdout {self.out!r}")
        return self.out

    def wait_listening(self):
        self.read_until(b"Waiting for connections...\n")
        m = re.search(rb"Port (\d+) opened for sessionId ", self.out)
        return int(m.group(1)) if m else None

    def finish(self, timeout=10.0):
        """Reads stdout to EOF and waits for exit; returns the exit status."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            T.check(left > 0, f"plugin did not exit; stdout {self.out!r}")
            if self._read(left) is None:
                break
        return self.p.wait(max(0.1, deadline - time.time()))

    def pid(self):
        return self.p.pid


def starting_text(sid):
    return f"\nStarting session with SessionId: {sid}\n".encode()


def opened_text(port, sid):
    return f"Port {port} opened for sessionId {sid}.\nWaiting for connections...\n".encode()


def accepted_text(sid):
    return f"\nConnection accepted for session [{sid}]\n".encode()


def exit_texts(sid):
    return (b"Terminate signal received, exiting.\n"
            + f"\n\nExiting session with sessionId: {sid}.\n\n".encode())


def roundtrip(sock, data, timeout=10.0):
    sock.settimeout(timeout)
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        d = sock.recv(65536)
        T.check(d, f"connection closed after {len(got)} of {len(data)} echoed bytes")
        got += d
    T.check(got == data, "echoed bytes differ")


def sanitized_plugin():
    """True for an ASan build: its quarantine holds freed memory, so RSS
    growth says nothing there."""
    with open(T.plugin_path(), "rb") as f:
        return b"__asan_init" in f.read()


def proc_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- tests ------------------------------------------------------------------

def test_texts_echo_and_ctrl_c():
    """Byte-exact stdout across a whole session; SIGINT sends the flag, exit 0."""
    echo = EchoServer()
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)], "localPortNumber": ["0"]})
        port = pp.wait_listening()
        T.check(port and port > 0, "no port printed")
        for i in range(3):  # "accepted" is printed for the first connection only
            with socket.create_connection(("127.0.0.1", port)) as c:
                roundtrip(c, f"hello {i}\n".encode() * 100)
        pp.read_until(accepted_text(pp.sid))
        time.sleep(0.2)
        pp.p.send_signal(signal.SIGINT)
        rc = pp.finish()
        want = (starting_text(pp.sid) + opened_text(port, pp.sid) + accepted_text(pp.sid)
                + exit_texts(pp.sid))
        T.check(pp.out == want, f"stdout differs:\n got {pp.out!r}\nwant {want!r}")
        T.check(rc == 0, f"exit status {rc}")
        sim.wait_record(lambda r: r.get("flag") == 2, event="port_flag", session=pp.sid)
        T.check(sim.records("port_mode", pp.sid)[0]["mode"] == "mux", "sim did not choose mux")
    echo.close()


def test_fixed_local_port_and_sigquit():
    echo = EchoServer()
    lp = free_port()
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)], "localPortNumber": [str(lp)]})
        T.check(pp.wait_listening() == lp, f"not listening on the requested port {lp}")
        with socket.create_connection(("127.0.0.1", lp)) as c:
            roundtrip(c, b"x" * 5000)
        pp.p.send_signal(signal.SIGQUIT)
        T.check(pp.finish() == 0, "exit status")
        T.check(pp.out.endswith(exit_texts(pp.sid)), f"exit texts: {pp.out[-200:]!r}")
        sim.wait_record(lambda r: r.get("flag") == 2, event="port_flag", session=pp.sid)
    echo.close()


def test_connect_to_port_error():
    """The agent cannot dial: the flag's text, the stream closes, the session lives on."""
    dead = free_port()
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(dead)]})
        port = pp.wait_listening()
        c = socket.create_connection(("127.0.0.1", port))
        c.settimeout(10)
        c.sendall(b"anyone there?")
        T.check(c.recv(100) == b"", "local connection was not closed after ConnectToPortError")
        c.close()
        pp.read_until(b"\nConnection to destination port failed, check SSM Agent logs.\n")
        # a second connection gets the same treatment: the session is still up
        c = socket.create_connection(("127.0.0.1", port))
        c.settimeout(10)
        T.check(c.recv(100) == b"", "second connection not closed")
        c.close()
        T.check(pp.p.poll() is None, "plugin exited after ConnectToPortError")
        T.check(len(sim.records("port_dial_failed", pp.sid)) == 2, "expected two failed dials")
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
        want_tail = (accepted_text(pp.sid)
                     + b"\nConnection to destination port failed, check SSM Agent logs.\n" * 2
                     + exit_texts(pp.sid))
        T.check(pp.out.endswith(want_tail), f"stdout tail {pp.out!r}")


def test_port_in_use_fails_fast():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    with T.Sim() as sim:
        t0 = time.time()
        pp = PortPlugin(sim, PF_DOC, {"portNumber": ["80"], "localPortNumber": [str(busy)]})
        rc = pp.finish(timeout=10)
        T.check(time.time() - t0 < 5, "took too long to fail")
        T.check(rc == 0, f"exit status {rc}")
        want = starting_text(pp.sid) + (
            f"Cannot perform start session: listen tcp 127.0.0.1:{busy}: bind: address already in use\n"
        ).encode()
        T.check(pp.out == want, f"stdout {pp.out!r}")
    blocker.close()


def test_unix_socket_mode():
    echo = EchoServer()
    d = tempfile.mkdtemp(prefix="port-unix-")
    path = os.path.join(d, "fwd.sock")
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)], "localConnectionType": ["unix"],
                                      "localUnixSocket": [path]})
        pp.read_until(b"Waiting for connections...\n")
        want = (starting_text(pp.sid) + f"Unix socket {path} opened for sessionId {pp.sid}.".encode()
                + b"\nWaiting for connections...\n")
        T.check(pp.out == want, f"stdout {pp.out!r}")
        for _ in range(2):
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            roundtrip(c, bytes(range(256)) * 64)
            c.close()
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
        T.check(not os.path.exists(path), "unix socket file left behind")
        T.check(pp.out.endswith(accepted_text(pp.sid) + exit_texts(pp.sid)), f"stdout {pp.out!r}")
    echo.close()


def test_remote_host_document():
    echo = EchoServer()
    with T.Sim() as sim:
        pp = PortPlugin(sim, REMOTE_DOC, {"host": ["127.0.0.1"], "portNumber": [str(echo.port)],
                                          "localPortNumber": ["0"]})
        port = pp.wait_listening()
        with socket.create_connection(("127.0.0.1", port)) as c:
            roundtrip(c, os.urandom(100000))
        T.check(echo.accepted == 1, "the destination was not dialled")
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
    echo.close()


def test_many_connections_no_leak():
    """200 connections opened and closed: no fd or RSS growth in the plugin."""
    n = int(os.environ.get("SSM_PORT_TEST_CONNS", "200"))
    echo = EchoServer()
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)]})
        port = pp.wait_listening()
        pid = pp.pid()

        def one(i):
            with socket.create_connection(("127.0.0.1", port)) as c:
                roundtrip(c, f"conn {i} ".encode() * 50)

        for i in range(20):  # warm-up: allocator, stdout ring, channel buffers
            one(i)
        time.sleep(0.5)
        fds0, rss0 = proc_fds(pid), proc_rss_kib(pid)
        for i in range(n):
            one(i)
        deadline = time.time() + 5
        while proc_fds(pid) > fds0 and time.time() < deadline:
            time.sleep(0.05)
        fds1, rss1 = proc_fds(pid), proc_rss_kib(pid)
        T.check(fds1 <= fds0, f"fd count grew {fds0} -> {fds1}")
        if not sanitized_plugin():
            T.check(rss1 - rss0 < 2048, f"RSS grew {rss0} -> {rss1} KiB over {n} connections")
        T.check(len(sim.records("port_stream_open", pp.sid)) == n + 20, "stream count at the agent")
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
    echo.close()


def test_accept_emfile_no_spin():
    """Out of fds: the pending connection waits without a busy loop and is
    served once an fd frees up."""
    import resource
    echo = EchoServer()
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)]})
        port = pp.wait_listening()
        pid = pp.pid()
        a = socket.create_connection(("127.0.0.1", port))
        roundtrip(a, b"a")
        time.sleep(0.2)
        n = proc_fds(pid)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (n + 1, n + 1))
        b = socket.create_connection(("127.0.0.1", port))
        roundtrip(b, b"b")  # uses the last fd
        c = socket.create_connection(("127.0.0.1", port))  # accept fails: EMFILE
        c.sendall(b"c")
        with open(f"/proc/{pid}/stat") as f:
            t0 = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
        time.sleep(1.0)
        with open(f"/proc/{pid}/stat") as f:
            t1 = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
        cpu = (t1 - t0) / os.sysconf("SC_CLK_TCK")
        T.check(cpu < 0.3, f"plugin burnt {cpu:.2f} s CPU in 1 s while out of fds")
        a.close()
        c.settimeout(10)
        T.check(c.recv(10) == b"c", "pending connection not served after an fd freed up")
        roundtrip(c, b"more")
        b.close()
        c.close()
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
    echo.close()


if __name__ == "__main__":
    T.main([test_texts_echo_and_ctrl_c, test_fixed_local_port_and_sigquit, test_connect_to_port_error,
            test_port_in_use_fails_fast, test_unix_socket_mode, test_remote_host_document,
            test_many_connections_no_leak, test_accept_emfile_no_spin])
