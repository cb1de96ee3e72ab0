"""agent-sim reliable layer: acks honoured, retransmission of the unacked
head, duplicates re-acked, out-of-order input buffered and acked."""
import json
import time

import ssmtest
from ssmtest import check


def acks_of(c):
    return [json.loads(m["payload"]) for m in c.received if m["type"] == "acknowledge"]


def drain(c, seconds):
    end = time.time() + seconds
    out = []
    while time.time() < end:
        try:
            out.append(c.recv(timeout=max(0.01, end - time.time())))
        except Exception:
            break
    return out


def echo_session(sim, banner="B"):
    r = sim.start_session(doc="Sim-Echo", params={"banner": [banner]})
    c = ssmtest.Client(r)
    c.open()
    first = c.recv(timeout=5)
    check(first["type"] == "output_stream_data" and first["seq"] == 0 and first["flags"] == 1, first)
    return r, c, first


def test_acked_message_is_not_retransmitted():
    with ssmtest.Sim() as sim:
        r, c, first = echo_session(sim)
        c.ack(first)
        rec = sim.wait_record(event="ack_received")
        check(rec["seq"] == 0 and rec["known"] is True, rec)
        drain(c, 0.2)  # a resend may have crossed the ack on a loaded machine
        later = drain(c, 1.0)
        check(not [m for m in later if m["type"] == "output_stream_data"], "acked message came again")
        after = [x for x in sim.records(event="retransmit") if x["t_ms"] > rec["t_ms"]]
        check(not after, f"no retransmission after the ack: {after}")


def test_unacked_head_is_retransmitted_same_bytes():
    with ssmtest.Sim() as sim:
        r, c, first = echo_session(sim)
        again = [m for m in drain(c, 1.5) if m["type"] == "output_stream_data"]
        check(len(again) >= 2, f"retransmitted while unacked: {len(again)}")
        check(all(m["seq"] == 0 and m["id"] == first["id"] and m["payload"] == first["payload"] for m in again),
              "retransmission keeps seq, id and bytes")
        c.ack(first)
        drain(c, 0.5)
        n = len(sim.records(event="retransmit"))
        drain(c, 0.7)
        check(len(sim.records(event="retransmit")) == n, "retransmission stops once acked")


def test_duplicate_input_is_reacked_and_not_redelivered():
    with ssmtest.Sim() as sim:
        r, c, first = echo_session(sim)
        c.ack(first)
        raw = c.send_input(ssmtest.PT_OUTPUT, b"dup!")
        echo = c.recv_until(lambda m: m["type"] == "output_stream_data" and m["payload"] == b"dup!")
        c.ws.send_binary(raw)  # the very same message again
        drain(c, 0.8)
        acks = [a for a in acks_of(c) if a["AcknowledgedMessageSequenceNumber"] == 0]
        check(len(acks) == 2, f"duplicate re-acked: {acks}")
        check(acks[0] == acks[1] and acks[0]["AcknowledgedMessageType"] == "input_stream_data", acks)
        check(acks[0]["IsSequentialMessage"] is True, acks)
        echoes = [m for m in c.received if m["type"] == "output_stream_data" and m["payload"] == b"dup!"]
        check(len({m["seq"] for m in echoes}) == 1, "duplicate not delivered twice")
        sent = [x for x in sim.records(event="ack_sent") if x["seq"] == 0]
        check([x["why"] for x in sent] == ["in_order", "duplicate"], sent)
        ack_msgs = [m for m in c.received if m["type"] == "acknowledge"]
        check(all(m["flags"] == 3 and m["seq"] == 0 and m["payload_type"] == 0 for m in ack_msgs), "ack shape")
        check(echo["flags"] == 0, echo)


def test_out_of_order_input_buffered_acked_then_delivered_in_order():
    with ssmtest.Sim() as sim:
        r, c, first = echo_session(sim)
        c.ack(first)
        c.send_input(ssmtest.PT_OUTPUT, b"third", seq=2)
        c.send_input(ssmtest.PT_OUTPUT, b"second", seq=1)
        drain(c, 0.5)
        check(not [m for m in c.received if m["type"] == "output_stream_data" and m["seq"] > 0],
              "nothing delivered before seq 0")
        check({a["AcknowledgedMessageSequenceNumber"] for a in acks_of(c)} == {1, 2}, "future input acked")
        c.send_input(ssmtest.PT_OUTPUT, b"first", seq=0)
        s = ssmtest.Stream(c)
        s.expected = 1
        s.pump(lambda s: len(s.messages) >= 3)
        check([m["payload"] for m in s.messages] == [b"first", b"second", b"third"], s.messages)
        whys = {x["seq"]: x["why"] for x in sim.records(event="ack_sent")}
        check(whys == {0: "in_order", 1: "buffered", 2: "buffered"}, whys)


def test_rtt_estimator_and_record():
    with ssmtest.Sim() as sim:
        r, c, first = echo_session(sim)
        time.sleep(0.05)
        c.ack(first)
        rec = sim.wait_record(event="ack_received")
        # RTT 100, RTTVAR 0 initially; R ~ 50 ms => RTO = 0.875*100+R/8 + max(10, 4*R/4...)
        check(rec["rtt_sample_ms"] >= 50, rec)
        check(10 < rec["rto_ms"] <= 1000, rec)


def test_input_not_acked_until_the_behaviour_is_ready():
    with ssmtest.Sim("--handshake-shell", "--start-delay-ms", "700") as sim:
        r = sim.start_session(doc="Sim-Echo")
        c = ssmtest.Client(r)
        c.open()
        hreq = c.recv(timeout=5)
        c.ack(hreq)
        req = json.loads(hreq["payload"])
        resp = {"ClientVersion": "1.2.896.0", "ProcessedClientActions": [
            {"ActionType": "SessionType", "ActionStatus": 1, "ActionResult": None, "Error": ""}], "Errors": None}
        c.send_input(ssmtest.PT_HS_RESPONSE, json.dumps(resp).encode())
        c.recv_until(lambda m: m["payload_type"] == ssmtest.PT_HS_COMPLETE)
        t0 = time.time()
        raw = c.send_input(ssmtest.PT_OUTPUT, b"early")
        acked_at = None
        while acked_at is None and time.time() - t0 < 5:
            try:
                m = c.recv(timeout=0.2)
            except Exception:
                c.ws.send_binary(raw)  # the client's retransmission
                continue
            if m["type"] == "acknowledge" and json.loads(m["payload"])["AcknowledgedMessageSequenceNumber"] == 1:
                acked_at = time.time() - t0
        check(acked_at is not None and acked_at >= 0.5, f"acked only once ready: {acked_at}")
        m = c.recv_until(lambda m: m["type"] == "output_stream_data" and m["payload_type"] == 1)
        check(m["payload"] == b"early", m)
        check(sim.records(event="not_ready"), "not_ready recorded")
        check(req["RequestedClientActions"][0]["ActionParameters"]["Properties"] is None, req)


def test_output_finished_while_disconnected_is_delivered_after_resume():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="AWS-StartNonInteractiveCommand",
                              params={"command": ["sleep 0.4; echo tail-out; exit 4"]})
        c = ssmtest.Client(r)
        c.open()
        hreq = c.recv(timeout=5)
        c.ack(hreq)
        resp = {"ClientVersion": "1.2.896.0", "ProcessedClientActions": [
            {"ActionType": "SessionType", "ActionStatus": 1, "ActionResult": None, "Error": ""}], "Errors": None}
        c.send_input(ssmtest.PT_HS_RESPONSE, json.dumps(resp).encode())
        done = c.recv_until(lambda m: m["payload_type"] == ssmtest.PT_HS_COMPLETE)
        c.ws.close()
        sim.wait_record(event="process_exit", timeout=5)  # the command ends while nobody listens
        st, res = sim.resume_session(r["SessionId"])
        check(st == 200 and res.get("TokenValue"), f"still draining, so resumable: {res}")
        c2 = ssmtest.Client(dict(r, TokenValue=res["TokenValue"]))
        c2.open()
        s = ssmtest.Stream(c2)
        s.expected = done["seq"] + 1
        s.pump(lambda s: s.closed is not None, timeout=10)
        check(bytes(s.data[ssmtest.PT_OUTPUT]) == b"tail-out\n", bytes(s.data[1]))
        check(bytes(s.data[ssmtest.PT_EXIT_CODE]) == b"EXIT_CODE: 4", bytes(s.data[12]))
        check(sim.wait_record(event="session_end")["unacked"] == 0, "drained after the resume")


if __name__ == "__main__":
    ssmtest.main([test_acked_message_is_not_retransmitted, test_unacked_head_is_retransmitted_same_bytes,
                  test_duplicate_input_is_reacked_and_not_redelivered,
                  test_out_of_order_input_buffered_acked_then_delivered_in_order, test_rtt_estimator_and_record,
                  test_input_not_acked_until_the_behaviour_is_ready,
                  test_output_finished_while_disconnected_is_delivered_after_resume])
