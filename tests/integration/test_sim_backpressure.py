"""agent-sim write-ring backpressure: a client that sends much and reads
nothing must not make the sim drop frames. The sim stops reading (rx_paused)
instead; once the client reads again (and, like a real client, resends what
was never acked) every ack and every echoed byte arrives."""
import json
import socket
import threading
import time

import ssmtest
from ssmtest import check

N = 2000


def test_slow_reader_gets_every_ack_and_byte():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": [""]})
        c = ssmtest.Client(r)
        # A small receive window makes the sim's socket fill quickly.
        c.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.open()
        payloads = [b"%05d" % i for i in range(N)]
        # Two threads send (inputs, acks): whole frames only.
        lock = threading.Lock()
        send_binary = c.ws.send_binary

        def locked_send(data):
            with lock:
                send_binary(data)
        c.ws.send_binary = locked_send
        c.ws.sock.settimeout(60)
        sender = threading.Thread(target=lambda: [c.send_input(ssmtest.PT_OUTPUT, p) for p in payloads])
        sender.start()
        sim.wait_record(event="rx_paused", timeout=20)

        acks = set()
        recv = c.recv

        def recv_counting(timeout=10.0):
            m = recv(timeout)
            if m["type"] == "acknowledge":
                acks.add(json.loads(m["payload"])["AcknowledgedMessageSequenceNumber"])
            return m
        c.recv = recv_counting
        s = ssmtest.Stream(c)
        want = b"".join(payloads)
        deadline = time.time() + 60
        while len(s.data[1]) < len(want) and time.time() < deadline:
            try:
                s.pump(lambda s: len(s.data[1]) >= len(want), timeout=0.2)
            except (ssmtest.TestFailure, socket.timeout):
                pass  # a pump slice ended: resend the oldest unacked, like a client
            if not sender.is_alive():
                missing = [i for i in range(N) if i not in acks][:256]
                for i in missing:
                    c.send_input(ssmtest.PT_OUTPUT, payloads[i], seq=i)
        sender.join(30)
        check(bytes(s.data[1]) == want, f"echo stream incomplete: {len(s.data[1])} of {len(want)}")
        check(len(acks) == N, f"{N - len(acks)} input messages never acked")
        check(not sim.records(event="tx_overflow"), "the sim dropped frames")
        check(sim.records(event="rx_resumed"), "reading resumed")


if __name__ == "__main__":
    ssmtest.main([test_slow_reader_gets_every_ack_and_byte])
