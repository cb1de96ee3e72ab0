"""agent-sim fault injection: each fault is observable in the record and a
correct client (ssmtest.Stream) still gets the exact byte stream."""
import json
import os
import socket
import time

import ssmtest
import wsclient
from ssmtest import check


def echo_roundtrip(sim, chunks, timeout=60, banner="B"):
    r = sim.start_session(doc="Sim-Echo", params={"banner": [banner]})
    c = ssmtest.Client(r)
    c.open()
    s = ssmtest.Stream(c)
    s.pump(lambda s: bytes(s.data[1]) == banner.encode(), timeout=timeout)
    want = b"".join(chunks)
    for ch in chunks:
        c.send_input(ssmtest.PT_OUTPUT, ch)
    s.pump(lambda s: len(s.data[1]) >= len(banner) + len(want), timeout=timeout)
    check(bytes(s.data[1]) == banner.encode() + want, "stream corrupted under faults")
    return r, c, s


def chunks(n, size=300):
    return [os.urandom(size) for _ in range(n)]


def test_drop_dup_reorder_recover():
    with ssmtest.Sim("--drop", "0.2", "--dup", "0.2", "--reorder", "0.2", "--seed", "7") as sim:
        echo_roundtrip(sim, chunks(60))
        for ev in ("fault_drop", "fault_dup", "fault_reorder_hold", "retransmit"):
            check(sim.records(event=ev), f"{ev} recorded")
        holds = sim.records(event="fault_reorder_hold")
        check(all("seq" in h for h in holds), holds)


def test_malformed_frames_are_dropped_by_a_correct_client():
    with ssmtest.Sim("--malformed", "0.5", "--seed", "3") as sim:
        r, c, s = echo_roundtrip(sim, chunks(60))
        kinds = {x["kind"] for x in sim.records(event="fault_malformed")}
        check(len(kinds) >= 4, f"mixed kinds: {kinds}")
        rejected = len([x for x in sim.records(event="fault_malformed") if x["kind"] != "payload_length_lie"])
        check(c.invalid >= rejected - 2, f"client saw {c.invalid} invalid frames of {rejected}")


def test_drop_in_makes_the_client_retransmit():
    with ssmtest.Sim("--drop-in", "1.0") as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": ["B"]})
        c = ssmtest.Client(r)
        c.open()
        first = c.recv(timeout=5)
        c.send_input(ssmtest.PT_OUTPUT, b"lost")
        end = time.time() + 1
        while time.time() < end:
            try:
                m = c.recv(timeout=end - time.time())
            except socket.timeout:
                break
            check(m["type"] != "acknowledge", "nothing acked with --drop-in 1")
        check(sim.records(event="fault_drop_in"), "drop_in recorded")
        check(first["seq"] == 0, first)


def test_withhold_acks_for_a_while():
    with ssmtest.Sim("--withhold-acks-ms", "800") as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": ["B"]})
        c = ssmtest.Client(r)
        c.open()
        c.recv(timeout=5)
        t0 = time.time()
        raw = c.send_input(ssmtest.PT_OUTPUT, b"x")
        acked = None
        while time.time() - t0 < 5 and acked is None:
            try:
                m = c.recv(timeout=0.2)
                if m["type"] == "acknowledge":
                    acked = time.time() - t0
            except socket.timeout:
                c.ws.send_binary(raw)  # what a client's retransmission does
        check(acked is not None and acked >= 0.5, f"ack withheld, then given: {acked}")
        check(sim.records(event="fault_withhold_ack"), "recorded")


def test_pause_and_start_publication():
    with ssmtest.Sim("--pause-publication-ms", "300") as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": ["B"]})
        c = ssmtest.Client(r)
        c.open()
        m = c.recv_until(lambda m: m["type"] == "start_publication", timeout=5)
        types = [x["type"] for x in c.received]
        check(types.index("pause_publication") < types.index("start_publication"), types)
        check(m["flags"] == 0, m)
        check(sim.records(event="fault_pause_publication") and sim.records(event="fault_start_publication"), "rec")


def test_cut_then_resume_continues_the_session():
    with ssmtest.Sim("--cut-after-msgs", "4", "--cut-count", "2") as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": ["B"]})
        c = ssmtest.Client(r)
        c.open()
        s = ssmtest.Stream(c)
        payloads = [b"p%02d" % i for i in range(12)]
        sent = 0
        token = r["TokenValue"]
        cuts = 0
        deadline = time.time() + 60
        while len(s.data[1]) < 1 + 3 * len(payloads) and time.time() < deadline:
            try:
                while sent < len(payloads):
                    c.send_input(ssmtest.PT_OUTPUT, payloads[sent])
                    sent += 1
                s.pump(lambda s: len(s.data[1]) >= 1 + 3 * len(payloads), timeout=10)
            except (wsclient.ConnectionClosed, ConnectionError, OSError):
                cuts += 1
                st, res = sim.resume_session(r["SessionId"])
                check(st == 200 and res["TokenValue"] != token, res)
                token = res["TokenValue"]
                c2 = ssmtest.Client(dict(r, TokenValue=token))
                c2.client_id, c2.seq = c.client_id, c.seq
                c2.open()
                c, s.c = c2, c2
                # Input the agent never acked is resent (a client's retransmission).
                for i, p in enumerate(payloads[:sent]):
                    c.send_input(ssmtest.PT_OUTPUT, p, seq=i)
        check(bytes(s.data[1]) == b"B" + b"".join(payloads), bytes(s.data[1]))
        check(cuts == 2 and len(sim.records(event="fault_cut")) == 2, f"cuts {cuts}")
        check(len(sim.records(event="attach")) == 3, "reconnected twice")


def test_close_after_ms_with_output():
    with ssmtest.Sim("--close-after-ms", "300", "--close-output", "agent says bye") as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": ["B"]})
        c = ssmtest.Client(r)
        c.open()
        m = c.recv_until(lambda m: m["type"] == "channel_closed", timeout=5)
        check(json.loads(m["payload"])["Output"] == "agent says bye", m)
        check(sim.records(event="fault_close_after"), "recorded")


if __name__ == "__main__":
    ssmtest.main([test_drop_dup_reorder_recover, test_malformed_frames_are_dropped_by_a_correct_client,
                  test_drop_in_makes_the_client_retransmit, test_withhold_acks_for_a_while,
                  test_pause_and_start_publication, test_cut_then_resume_continues_the_session,
                  test_close_after_ms_with_output])
