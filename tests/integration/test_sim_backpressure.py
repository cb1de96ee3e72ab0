"""agent-sim write-ring backpressure: a client that sends much and reads
nothing must not make the sim drop frames. Every duplicate input is re-acked,
so a flood of duplicates from a client that does not read fills the sim's
write ring; the sim then stops reading (rx_paused) instead of dropping, and
once the client reads again every single ack arrives."""
import socket
import threading
import time

import ssmtest
from ssmtest import check

N = 3000


def test_slow_reader_gets_every_ack():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": [""]})
        c = ssmtest.Client(r)
        # A small receive window makes the sim's socket fill quickly.
        c.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.open()
        c.ws.sock.settimeout(60)
        frames = [ssmtest.encode_msg("input_stream_data", i % 10, ssmtest.PT_OUTPUT, b"d%02d" % (i % 10))
                  for i in range(N)]
        sender = threading.Thread(target=lambda: [c.ws.send_binary(f) for f in frames])
        sender.start()
        sim.wait_record(event="rx_paused", timeout=20)
        acks = 0
        echoed = {}
        deadline = time.time() + 30
        while acks < N and time.time() < deadline:
            try:
                m = c.recv(timeout=1)
            except socket.timeout:
                continue
            if m["type"] == "acknowledge":
                acks += 1
            elif m["type"] == "output_stream_data":
                echoed[m["seq"]] = m["payload"]  # (retransmissions of unacked output repeat it)
        sender.join(10)
        check(acks == N, f"{N - acks} of {N} acks missing")
        got = b"".join(echoed[k] for k in sorted(echoed))
        check(got == b"".join(b"d%02d" % i for i in range(10)), f"each input echoed once, in order: {got!r}")
        check(not sim.records(event="tx_overflow"), "the sim dropped frames")
        check(sim.records(event="rx_resumed"), "reading resumed")
        dup = [x for x in sim.records(event="ack_sent") if x["why"] == "duplicate"]
        check(len(dup) == N - 10 and all(x["queued"] for x in dup), "every duplicate re-acked and queued")


if __name__ == "__main__":
    ssmtest.main([test_slow_reader_gets_every_ack])
