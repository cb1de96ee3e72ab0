"""Mux port forwarding bulk data: SSM_PORT_TEST_MIB (default 64) MiB each way
through one stream, and the same total through 32 concurrent streams, each
verified by SHA-256 at both ends of an echo destination."""

import hashlib
import os
import signal
import socket
import threading
import time

import ssmtest as T
from test_port_mux import PF_DOC, EchoServer, PortPlugin

MIB = int(os.environ.get("SSM_PORT_TEST_MIB", "64"))


def pump_stream(port, nbytes, seed, results, idx):
    """Sends nbytes of seeded pseudo-random data and reads the echo; records
    (sent sha256, received sha256, received length)."""
    try:
        c = socket.create_connection(("127.0.0.1", port))
        c.settimeout(60)
        block = hashlib.sha256(seed).digest() * 2048  # 64 KiB, distinct per stream
        sent_h = hashlib.sha256()
        recv_h = hashlib.sha256()
        got = [0]

        def reader():
            try:
                while got[0] < nbytes:
                    d = c.recv(262144)
                    if not d:
                        break
                    recv_h.update(d)
                    got[0] += len(d)
            except OSError:
                pass

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        left = nbytes
        i = 0
        while left > 0:
            chunk = block[: min(len(block), left)]
            # vary the content between blocks so misordering is visible
            chunk = bytes([i & 0xFF]) + chunk[1:]
            c.sendall(chunk)
            sent_h.update(chunk)
            left -= len(chunk)
            i += 1
        t.join(120)
        c.close()
        results[idx] = (sent_h.hexdigest(), recv_h.hexdigest(), got[0])
    except Exception as e:  # reported by the caller
        results[idx] = e


def run_bulk(streams):
    total = MIB * 1024 * 1024
    per = total // streams
    echo = EchoServer()
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)]})
        port = pp.wait_listening()
        results = [None] * streams
        threads = [threading.Thread(target=pump_stream, args=(port, per, b"s%d" % i, results, i))
                   for i in range(streams)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        dt = time.time() - t0
        for i, r in enumerate(results):
            T.check(not isinstance(r, Exception), f"stream {i}: {r!r}")
            T.check(r is not None, f"stream {i} did not finish")
            sent, recv, n = r
            T.check(n == per, f"stream {i}: echoed {n} of {per} bytes")
            T.check(sent == recv, f"stream {i}: SHA-256 mismatch")
        print(f"{streams} stream(s): {MIB} MiB each way in {dt:.1f} s "
              f"({MIB / dt:.1f} MiB/s each way)")
        T.check(pp.p.poll() is None, "plugin exited")
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
    echo.close()


def test_slow_reader_bounded():
    """A local client that stops reading: the plugin withholds acks instead of
    buffering without limit, its memory stays bounded, and once the client
    reads again every byte arrives in order."""
    from test_port_mux import proc_rss_kib, sanitized_plugin
    total = min(MIB, 32) * 1024 * 1024
    src = socket.socket()
    src.bind(("127.0.0.1", 0))
    src.listen(1)
    data = hashlib.sha256(b"slow").digest() * (total // 32)

    def source():
        c, _ = src.accept()
        c.sendall(data)
        c.close()

    threading.Thread(target=source, daemon=True).start()
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(src.getsockname()[1])]})
        port = pp.wait_listening()
        rss0 = proc_rss_kib(pp.pid())
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.connect(("127.0.0.1", port))
        time.sleep(3)  # not reading: everything backs up
        rss1 = proc_rss_kib(pp.pid())
        if not sanitized_plugin():
            T.check(rss1 - rss0 < 8192, f"plugin RSS grew {rss0} -> {rss1} KiB with a stalled reader")
        c.settimeout(60)
        h = hashlib.sha256()
        got = 0
        while got < total:
            d = c.recv(1 << 18)
            T.check(d, f"closed after {got} of {total} bytes")
            h.update(d)
            got += len(d)
        T.check(h.digest() == hashlib.sha256(data).digest(), "data differs after the stall")
        c.close()
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
    src.close()


def test_late_reader_gets_the_tail():
    """Everything has reached the plugin and the local socket is full: the
    rest must still go out when the reader wakes up, with no further input to
    prod the plugin (re-arming POLLOUT from inside a writable callback is
    dropped by lws 4.1 raw-file fds)."""
    size = 200 * 1024  # fits the stream's receive ring
    data = os.urandom(size)
    src = socket.socket()
    src.bind(("127.0.0.1", 0))
    src.listen(1)

    def source():
        c, _ = src.accept()
        c.sendall(data)
        time.sleep(30)  # keep the destination open: no FIN to prod the plugin
        c.close()

    threading.Thread(target=source, daemon=True).start()
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(src.getsockname()[1])]})
        port = pp.wait_listening()
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", port))
        time.sleep(1.5)
        c.settimeout(5)
        got = b""
        while len(got) < size:
            try:
                d = c.recv(4096)
            except socket.timeout:
                break
            T.check(d, "closed early")
            got += d
            time.sleep(0.001)
        T.check(len(got) == size, f"stalled after {len(got)} of {size} bytes")
        T.check(got == data, "data differs")
        c.close()
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, "exit status")
    src.close()


def test_one_stream_bulk():
    run_bulk(1)


def test_32_streams_bulk():
    run_bulk(32)


if __name__ == "__main__":
    T.main([test_one_stream_bulk, test_32_streams_bulk, test_slow_reader_bounded,
            test_late_reader_gets_the_tail])
