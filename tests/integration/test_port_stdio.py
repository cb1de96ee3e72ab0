"""Standard-stream port mode (PROTOCOL.md §10.3, AWS-StartSSHSession as an
SSH ProxyCommand): a binary stream relayed through stdin/stdout unchanged,
nothing else on stdout, exit 0 on stdin EOF, and the session end when the
destination closes."""

import hashlib
import os
import select
import signal
import socket
import threading
import time

import ssmtest as T
from test_port_mux import EchoServer, starting_text

SSH_DOC = "AWS-StartSSHSession"


def start(sim, port):
    resp = sim.start_session(doc=SSH_DOC, params={"portNumber": [str(port)]})
    argv, env = T.plugin_invocation(resp, sim, doc=SSH_DOC)
    return resp["SessionId"], T.run_pipes(argv, env)


def read_exactly(p, n, out, timeout=60.0):
    deadline = time.time() + timeout
    while len(out) < n:
        left = deadline - time.time()
        T.check(left > 0, f"timeout: {len(out)} of {n} bytes on stdout")
        r, _, _ = select.select([p.stdout], [], [], left)
        if r:
            d = os.read(p.stdout.fileno(), 262144)
            T.check(d, f"stdout EOF after {len(out)} of {n} bytes")
            out += d
    return out


def test_binary_relay_both_ways_and_stdin_eof():
    echo = EchoServer()
    size = int(os.environ.get("SSM_PORT_TEST_STDIO_MIB", "4")) * 1024 * 1024
    # every byte value, CR/LF pairs, NULs, terminal escapes: nothing may be rewritten
    pattern = bytes(range(256)) + b"\r\n\n\r\x00\x1b[2J\x03\x04\x1a~." * 16
    data = (pattern * (size // len(pattern) + 1))[:size]
    with T.Sim() as sim:
        sid, p = start(sim, echo.port)
        head = starting_text(sid)
        writer_err = []

        def writer():
            try:
                for i in range(0, len(data), 65536):
                    p.stdin.write(data[i:i + 65536])
                p.stdin.flush()
            except OSError as e:
                writer_err.append(e)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        out = read_exactly(p, len(head) + size, b"")
        t.join(30)
        T.check(not writer_err, f"stdin write failed: {writer_err}")
        T.check(out[:len(head)] == head, f"stdout does not start with the session text: {out[:80]!r}")
        body = out[len(head):]
        T.check(len(body) == size, f"{len(body)} bytes relayed, want {size}")
        T.check(hashlib.sha256(body).digest() == hashlib.sha256(data).digest(),
                "relayed bytes differ (binary-unclean?)")
        T.check(sim.records("port_mode", sid)[0]["mode"] == "stdio", "sim did not choose stdio")
        # SIGINT is not handled in this mode: with SIGINT ignored (as under the
        # AWS CLI) nothing happens; here we only check stdin EOF ends it cleanly.
        p.stdin.close()
        rc = p.wait(10)
        rest = p.stdout.read()
        T.check(rc == 0, f"exit status {rc}")
        T.check(rest == b"", f"unexpected text on stdout after EOF: {rest!r}")
    echo.close()


def test_destination_close_ends_session():
    """sshd goes away: the agent ends the session; channel_closed text, exit 0."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]

    def one_shot():
        c, _ = ls.accept()
        c.sendall(b"SSH-2.0-OpenSSH_9.6 fake\r\n")
        c.recv(100)
        c.close()

    threading.Thread(target=one_shot, daemon=True).start()
    with T.Sim() as sim:
        sid, p = start(sim, port)
        head = starting_text(sid)
        banner = b"SSH-2.0-OpenSSH_9.6 fake\r\n"
        out = read_exactly(p, len(head) + len(banner), b"")
        T.check(out == head + banner, f"stdout {out!r}")
        p.stdin.write(b"SSH-2.0-client\r\n")
        p.stdin.flush()
        rc = p.wait(15)
        out += p.stdout.read()
        T.check(rc == 0, f"exit status {rc}")
        want = head + banner + f"\n\nExiting session with sessionId: {sid}.\n\n".encode()
        T.check(out == want, f"stdout {out!r}")
    ls.close()


def test_sigint_ignored_when_inherited():
    """Launched with SIGINT ignored (as by the AWS CLI), SIGINT changes nothing."""
    echo = EchoServer()
    with T.Sim() as sim:
        resp = sim.start_session(doc=SSH_DOC, params={"portNumber": [str(echo.port)]})
        argv, env = T.plugin_invocation(resp, sim, doc=SSH_DOC)
        import subprocess
        p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        sid = resp["SessionId"]
        head = starting_text(sid)
        p.stdin.write(b"ping")
        p.stdin.flush()
        out = read_exactly(p, len(head) + 4, b"")
        p.send_signal(signal.SIGINT)
        p.stdin.write(b"pong")
        p.stdin.flush()
        out = read_exactly(p, len(head) + 8, out)
        T.check(out == head + b"pingpong", f"stdout {out!r}")
        T.check(p.poll() is None, "plugin exited on an ignored SIGINT")
        p.stdin.close()
        T.check(p.wait(10) == 0, "exit status")
        T.check(p.stdout.read() == b"", "text after EOF")
    echo.close()


if __name__ == "__main__":
    T.main([test_binary_relay_both_ways_and_stdin_eof, test_destination_close_ends_session,
            test_sigint_ignored_when_inherited])
