"""Our own websocket framing on the established connection (plugin/ws_direct.c)
under load, over ws:// and wss://: a port-forward upload to a sink, then a
download from a source, of SSM_WS_DIRECT_TEST_MIB (default 16) MiB each,
verified by SHA-256, then small echoes. Over wss the upload once hung: the
simulator (lws 4.1) paused reading inside a TLS record bigger than its 4 KiB
read buffer and never resumed. The download drives bulk-mode read
coalescing (SO_RCVLOWAT and the tail timer) in and out; the small echoes
afterwards must come back promptly."""

import hashlib
import os
import socket
import threading
import time

import ssmtest as T
from test_port_mux import PF_DOC, PortPlugin

MIB = int(os.environ.get("SSM_WS_DIRECT_TEST_MIB", "16"))
# Unpaced: the hang needed the simulator's write ring nearly full of acks.
os.environ["SSM_PLUGIN_PACE_MSGS"] = "0"
BLOCK = hashlib.sha256(b"ws-direct").digest() * 2048  # 64 KiB


def data(n):
    """n bytes of a fixed pattern that shifts every block (misordering shows)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += bytes([i & 0xFF]) + BLOCK[1:]
        i += 1
    return bytes(out[:n])


class Dest:
    """Destination: the first byte a connection sends picks its mode: 'u'
    (sink: hash what follows), 'd' (source: send the bulk data) or 'e' (echo)."""

    def __init__(self, n):
        self.n = n
        self.sink_hash = None
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.sunk = threading.Event()
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
            mode = c.recv(1)
            if mode == b"u":
                h, got = hashlib.sha256(), 0
                while got < self.n:
                    d = c.recv(262144)
                    if not d:
                        break
                    h.update(d)
                    got += len(d)
                self.sink_hash = (got, h.hexdigest())
                self.sunk.set()
            elif mode == b"d":
                c.sendall(data(self.n))
            elif mode == b"e":
                T.EchoServer._echo(c)
        except OSError:
            pass
        finally:
            c.close()


def connect(port, mode):
    c = socket.create_connection(("127.0.0.1", port))
    c.settimeout(60)
    c.sendall(mode)
    return c


def run(tls):
    n = MIB << 20
    want = hashlib.sha256(data(n)).hexdigest()
    ca = T.make_test_ca() if tls else None
    dest = Dest(n)
    with T.Sim(tls=ca) as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(dest.port)]})
        port = pp.wait_listening()
        # Upload only: the simulator's writes are acknowledgements.
        c = connect(port, b"u")
        c.sendall(data(n))
        T.check(dest.sunk.wait(120), "upload did not reach the destination")
        c.close()
        T.check(dest.sink_hash == (n, want), f"upload arrived as {dest.sink_hash}")
        # Download only.
        c = connect(port, b"d")
        h, got = hashlib.sha256(), 0
        while got < n:
            d = c.recv(262144)
            T.check(d, f"download ended after {got} of {n} bytes")
            h.update(d)
            got += len(d)
        c.close()
        T.check(h.hexdigest() == want, "download SHA-256 mismatch")
        # After the bulk stretch: small round trips are not held back.
        c = connect(port, b"e")
        c.settimeout(5)
        worst = 0.0
        for i in range(20):
            msg = b"ping %d\n" % i
            t0 = time.monotonic()
            c.sendall(msg)
            got = b""
            while len(got) < len(msg):
                d = c.recv(100)
                T.check(d, "echo connection closed")
                got += d
            worst = max(worst, time.monotonic() - t0)
            T.check(got == msg, f"echo {got!r}")
        c.close()
        # Generous for a loaded machine; a stuck coalescing wait would take
        # seconds (or forever).
        T.check(worst < 1.0, f"slowest small echo took {worst:.3f} s")


def test_ws_bulk_up_then_down():
    run(tls=False)


def test_wss_bulk_up_then_down():
    run(tls=True)


if __name__ == "__main__":
    T.main([test_ws_bulk_up_then_down, test_wss_bulk_up_then_down])
