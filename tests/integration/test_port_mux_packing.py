"""Output payloads are packed to the full 1024 bytes while data is waiting
(issue: "payloads packed to the full 1024 bytes the agent expects"): under
the default pacing (1000 messages a second) every short payload is lost
throughput. A paced 1 MiB upload through one mux stream must arrive intact
in nearly all-full messages; a 16 KiB local read used to leave an 8-byte
tail message every 17 (64 of them per MiB)."""

import os
import socket
import threading

import ssmtest as T
from test_port_mux import PF_DOC, PortPlugin

os.environ.pop("SSM_PLUGIN_PACE_MSGS", None)  # the default pacing
N = 1 << 20


class Sink:
    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.port = self.ls.getsockname()[1]
        self.got = bytearray()
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        c, _ = self.ls.accept()
        while len(self.got) < N:
            d = c.recv(65536)
            if not d:
                break
            self.got += d
        c.close()
        self.done.set()


def test_paced_upload_uses_full_payloads():
    sink = Sink()
    data = bytes(range(256)) * (N // 256)
    with T.Sim() as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(sink.port)]})
        port = pp.wait_listening()
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(data)
        T.check(sink.done.wait(60), "the upload did not arrive")
        c.close()
        T.check(bytes(sink.got) == data, "the upload arrived altered")
        lens = [r["len"] for r in sim.records("recv")
                if r.get("type") == "input_stream_data" and r.get("payload_type") == 1]
    full = sum(1 for n in lens if n == 1024)
    short = len(lens) - full
    # 1 MiB of data plus smux headers is 1025 full payloads; a handful of
    # short ones (SYN, the last bytes, FIN) is all there may be.
    T.check(full >= 1000, f"only {full} full payloads of {len(lens)}")
    T.check(short <= 4, f"{short} short payloads of {len(lens)}: {[n for n in lens if n != 1024]}")


if __name__ == "__main__":
    T.main([test_paced_upload_uses_full_payloads])
