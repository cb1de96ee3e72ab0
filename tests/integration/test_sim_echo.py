"""agent-sim: Sim-Echo is binary-clean, keeps order, and applies backpressure
(withholds acks) instead of buffering without bound."""
import hashlib
import json
import os
import socket
import time

import ssmtest
from ssmtest import check

BANNER = b"Sim-Echo ready\r\n"


def test_echo_bulk_binary_integrity():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        c = ssmtest.Client(r)
        c.open()
        s = ssmtest.Stream(c)
        s.pump(lambda s: bytes(s.data[1]) == BANNER)
        blob = os.urandom(200 * 1024) + bytes(range(256)) * 4
        for off in range(0, len(blob), 1024):
            c.send_input(ssmtest.PT_OUTPUT, blob[off:off + 1024])
        s.pump(lambda s: len(s.data[1]) >= len(BANNER) + len(blob), timeout=60)
        got = bytes(s.data[1])[len(BANNER):]
        check(hashlib.sha256(got).digest() == hashlib.sha256(blob).digest(), "echo corrupted the data")

        def acked_all():
            acked = {json.loads(m["payload"])["AcknowledgedMessageSequenceNumber"]
                     for m in c.received if m["type"] == "acknowledge"}
            return acked >= set(range(c.seq))
        # The agent acks after processing, so the last acks trail the echoes.
        deadline = time.time() + 5
        while not acked_all() and time.time() < deadline:
            c.recv(timeout=deadline - time.time())
        check(acked_all(), "every input acked")


def test_echo_backpressure_withholds_acks():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": ["B"]})
        c = ssmtest.Client(r)
        c.open()
        first = c.recv(timeout=5)
        check(first["payload"] == b"B", first)
        # Never ack the echoes: the sender fills (256) and must stop acking input.
        for i in range(400):
            c.send_input(ssmtest.PT_OUTPUT, b"%04d" % i)
        acked, data_seqs = set(), set()
        deadline = time.time() + 3
        try:
            while time.time() < deadline:
                m = c.recv(timeout=deadline - time.time())
                if m["type"] == "acknowledge":
                    acked.add(json.loads(m["payload"])["AcknowledgedMessageSequenceNumber"])
                elif m["type"] == "output_stream_data":
                    data_seqs.add(m["seq"])
        except socket.timeout:
            pass
        check(max(data_seqs) == 255, f"sender stops at its window: {max(data_seqs)}")
        check(len(acked) < 400, "input beyond the window not acked")
        check(sim.records(event="not_ready"), "not-ready recorded")
        check(sim.records(event="retransmit"), "unacked head retransmitted")
        # Acking the echoes opens the window; held input is delivered in order.
        # Input behind the held message was not read (the agent's receive loop
        # blocks), so like a real client resend what is still unacked.
        s = ssmtest.Stream(c)
        s.expected = 0
        recv = c.recv

        def recv_counting(timeout=10.0):
            m = recv(timeout)
            if m["type"] == "acknowledge":
                acked.add(json.loads(m["payload"])["AcknowledgedMessageSequenceNumber"])
            return m
        c.recv = recv_counting
        deadline = time.time() + 60
        while len(s.data[1]) < 1 + 400 * 4 and time.time() < deadline:
            try:
                s.pump(lambda s: len(s.data[1]) >= 1 + 400 * 4, timeout=0.3)
            except (ssmtest.TestFailure, socket.timeout):
                for i in [i for i in range(400) if i not in acked][:64]:
                    c.send_input(ssmtest.PT_OUTPUT, b"%04d" % i, seq=i)
        check(bytes(s.data[1]) == b"B" + b"".join(b"%04d" % i for i in range(400)), "order kept")


if __name__ == "__main__":
    ssmtest.main([test_echo_bulk_binary_integrity, test_echo_backpressure_withholds_acks])
