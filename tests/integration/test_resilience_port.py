"""Websocket cuts in the middle of mux port-forward transfers (issue 6).
The channel keeps unacknowledged frames across reconnects and drops
duplicates by sequence number, so after ResumeSession + redial:
 * upload: the frames of the failed send are resent, the destination gets
   every byte exactly once (SHA-256 at the destination);
 * download: a TCP reset mid-stream delivers no frame twice to smux (a
   duplicate would corrupt the smux stream) and loses none;
 * bulk both ways with three cuts in a row: SHA-256 intact.
SSM_RESILIENCE_MIB (default 8) sizes the bulk test; 64 for the full run."""
import hashlib
import os
import signal
import socket
import threading
import time

import ssmtest as T
from test_port_mux import PF_DOC, EchoServer, PortPlugin

MIB = int(os.environ.get("SSM_RESILIENCE_MIB", "8"))


def pattern(n, seed):
    """n bytes that differ block to block (misordering is visible)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + i.to_bytes(4, "big")).digest() * 64
        i += 1
    return bytes(out[:n])


class SinkServer:
    """Destination that hashes everything it receives on one connection."""

    def __init__(self, expect):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.expect = expect
        self.got = 0
        self.h = hashlib.sha256()
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        c, _ = self.ls.accept()
        c.settimeout(90)
        try:
            while self.got < self.expect:
                d = c.recv(262144)
                if not d:
                    break
                self.h.update(d)
                self.got += len(d)
            # one more read: anything beyond the expected length is a duplicate
            c.settimeout(1.0)
            try:
                extra = c.recv(65536)
                self.got += len(extra)
                self.h.update(extra)
            except OSError:
                pass
        except OSError:
            pass
        finally:
            self.done.set()
            c.close()


class SourceServer:
    """Destination that sends data on connect (a download for the client)."""

    def __init__(self, data):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.data = data
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        c, _ = self.ls.accept()
        try:
            c.sendall(self.data)
            time.sleep(30)  # keep it open: the client stops reading by length
        except OSError:
            pass
        finally:
            c.close()


class EnvPortPlugin(PortPlugin):
    """PortPlugin with extra environment for the plugin."""

    def __init__(self, sim, params, extra_env):
        resp = sim.start_session(doc=PF_DOC, params=params)
        self.sid = resp["SessionId"]
        argv, env = T.plugin_invocation(resp, sim, doc=PF_DOC, extra_env=extra_env)
        self.p = T.run_pipes(argv, env)
        self.p.stdin.close()
        self.out = b""


def end(pp):
    pp.p.send_signal(signal.SIGTERM)
    rc = pp.finish(timeout=15)
    T.check(rc == 0, f"exit status {rc}")


def check_cuts(sim, sid, want):
    cuts = sim.records(event="fault_cut", session=sid)
    T.check(len(cuts) >= want, f"{want} cut(s) happened: {len(cuts)}")
    T.check(len(sim.records(event="session_resumed", session=sid)) >= want,
            "a ResumeSession per reconnect")


def upload(mode):
    n = 3 * 1024 * 1024
    data = pattern(n, b"up" + mode.encode())
    sink = SinkServer(n)
    with T.Sim("--cut-after-client-msgs", "500", "--cut-mode", mode, "--resume-fail-count", "1") as sim:
        pp = EnvPortPlugin(sim, {"portNumber": [str(sink.port)]}, {})
        port = pp.wait_listening()
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(data)
            T.check(sink.done.wait(90), f"destination got {sink.got} of {n} bytes")
        T.check(sink.got == n, f"destination got {sink.got} bytes, sent {n}")
        T.check(sink.h.digest() == hashlib.sha256(data).digest(), "SHA-256 at the destination")
        check_cuts(sim, pp.sid, 1)
        T.check(sim.records(event="fault_resume_fail", session=pp.sid), "a ResumeSession failed first")
        end(pp)


def test_cut_during_upload_reset():
    upload("reset")


def test_cut_during_upload_close():
    upload("close")


def test_reset_during_download_no_duplicates():
    n = 3 * 1024 * 1024
    data = pattern(n, b"down")
    src = SourceServer(data)
    with T.Sim("--cut-after-msgs", "600", "--cut-mode", "reset") as sim:
        pp = EnvPortPlugin(sim, {"portNumber": [str(src.port)]}, {})
        port = pp.wait_listening()
        h = hashlib.sha256()
        got = 0
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"")
            c.settimeout(60)
            while got < n:
                d = c.recv(262144)
                T.check(d, f"connection closed after {got} of {n} bytes")
                h.update(d)
                got += len(d)
            c.settimeout(1.0)
            try:
                extra = c.recv(65536)
            except socket.timeout:
                extra = b""
            T.check(not extra, f"{len(extra)} bytes beyond the data: a duplicated frame")
        T.check(h.digest() == hashlib.sha256(data).digest(), "SHA-256 of the download")
        check_cuts(sim, pp.sid, 1)
        end(pp)


def test_bulk_three_cuts_in_a_row():
    n = MIB * 1024 * 1024
    data = pattern(n, b"bulk")
    echo = EchoServer()
    # ~1 KiB per agent message: the three cuts land at about 1/4, 1/2, 3/4.
    per_cut = max(1000, MIB * 1024 // 4)
    with T.Sim("--cut-after-msgs", str(per_cut), "--cut-count", "3", "--cut-mode", "reset") as sim:
        pp = EnvPortPlugin(sim, {"portNumber": [str(echo.port)]}, {})
        port = pp.wait_listening()
        h = hashlib.sha256()
        got = [0]
        c = socket.create_connection(("127.0.0.1", port))
        c.settimeout(120)

        def reader():
            try:
                while got[0] < n:
                    d = c.recv(262144)
                    if not d:
                        break
                    h.update(d)
                    got[0] += len(d)
            except OSError:
                pass

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t0 = time.time()
        c.sendall(data)
        t.join(240)
        c.close()
        T.check(got[0] == n, f"echoed {got[0]} of {n} bytes")
        T.check(h.digest() == hashlib.sha256(data).digest(), "SHA-256 of the echo")
        check_cuts(sim, pp.sid, 3)
        print(f"  {MIB} MiB each way with 3 cuts in {time.time() - t0:.1f} s")
        end(pp)
    echo.close()


if __name__ == "__main__":
    T.main([test_cut_during_upload_reset, test_cut_during_upload_close,
            test_reset_during_download_no_duplicates, test_bulk_three_cuts_in_a_row])
