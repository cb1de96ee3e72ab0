"""The ready signal (docs/port-forwarding.md): SSM_PLUGIN_READY_FILE gets one
JSON line, written atomically, once the listener is up; SSM_PLUGIN_READY_FD
gets the same line and is closed; unix socket mode names the socket."""

import json
import os
import select
import signal
import socket
import tempfile
import time

import ssmtest as T
from test_listen_address import port_plugin
from test_port_mux import PF_DOC, EchoServer, roundtrip  # noqa: F401 (PF_DOC documents the doc)


def wait_file(path, pp, timeout=10.0):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        T.check(time.time() < deadline and pp.p.poll() is None, f"no ready file; stdout {pp.out!r}")
        time.sleep(0.01)
    with open(path) as f:
        text = f.read()
    T.check(text.endswith("\n") and text.count("\n") == 1, f"ready file {text!r}")
    return json.loads(text)


def test_ready_file_tcp():
    echo = EchoServer()
    d = tempfile.mkdtemp(prefix="ready-")
    path = os.path.join(d, "ready.json")
    with T.Sim() as sim:
        pp = port_plugin(sim, {"portNumber": [str(echo.port)]},
                         {"SSM_PLUGIN_READY_FILE": path, "SSM_PLUGIN_LISTEN_ADDRESS": "127.0.0.2"})
        info = wait_file(path, pp)
        T.check(set(info) == {"port", "address", "session_id"}, f"keys {info}")
        T.check(info["address"] == "127.0.0.2" and info["session_id"] == pp.sid, f"ready {info}")
        # the port in the file is live at once (no need to parse stdout)
        with socket.create_connection(("127.0.0.2", info["port"]), timeout=10) as c:
            roundtrip(c, b"ready\n" * 100)
        T.check(os.listdir(d) == ["ready.json"], f"temporary files left: {os.listdir(d)}")
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
        T.check(f"Port {info['port']} opened for sessionId {pp.sid}.".encode() in pp.out,
                f"stdout {pp.out!r}")
    echo.close()


def test_ready_fd_and_unix_socket():
    echo = EchoServer()
    d = tempfile.mkdtemp(prefix="ready-unix-")
    sock_path = os.path.join(d, "fwd.sock")
    r, w = os.pipe()
    with T.Sim() as sim:
        pp = port_plugin(sim, {"portNumber": [str(echo.port)], "localConnectionType": ["unix"],
                               "localUnixSocket": [sock_path]},
                         {"SSM_PLUGIN_READY_FD": str(w), "SSM_PLUGIN_READY_FILE": os.path.join(d, "r")},
                         pass_fds=(w,))
        os.close(w)
        data = b""
        deadline = time.time() + 10
        while True:  # the plugin closes its end after the line: read to EOF
            left = deadline - time.time()
            T.check(left > 0, f"no EOF on the ready fd; got {data!r}")
            if not select.select([r], [], [], left)[0]:
                continue
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
        os.close(r)
        info = json.loads(data)
        T.check(data.endswith(b"\n") and info == {"unix_socket": sock_path, "session_id": pp.sid},
                f"ready line {data!r}")
        T.check(wait_file(os.path.join(d, "r"), pp) == info, "file and fd differ")
        c = socket.socket(socket.AF_UNIX)
        c.connect(sock_path)
        roundtrip(c, b"unix\n" * 100)
        c.close()
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
    echo.close()


def test_bad_ready_targets_do_not_break_the_session():
    echo = EchoServer()
    with T.Sim() as sim:
        pp = port_plugin(sim, {"portNumber": [str(echo.port)]},
                         {"SSM_PLUGIN_READY_FD": "1", "SSM_PLUGIN_READY_FILE": "/nonexistent/dir/r"})
        pp.read_until(b"Waiting for connections...\n")
        T.check(b"session_id" not in pp.out, f"ready line went to stdout: {pp.out!r}")
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
    echo.close()


if __name__ == "__main__":
    T.main([test_ready_file_tcp, test_ready_fd_and_unix_socket,
            test_bad_ready_targets_do_not_break_the_session])
