"""The agent acknowledges a client message before anything processing it
produced (PROTOCOL.md §7.2; the official plugin's mux mode depends on it):
checked on the wire, as the scripted client receives the frames."""
import json

import ssmtest
from ssmtest import check


def next_two_after(c, pred_first):
    """The first frame matching pred_first and the one after it."""
    a = c.recv_until(pred_first, auto_ack=False)
    return a, c.recv(timeout=5)


def test_echo_ack_precedes_echo():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": ["B"]})
        c = ssmtest.Client(r)
        c.open()
        c.recv_until(lambda m: m["type"] == "output_stream_data")
        for i in range(20):
            c.send_input(ssmtest.PT_OUTPUT, b"e%02d" % i)
            first = c.recv(timeout=5)
            check(first["type"] == "acknowledge", f"message {i}: {first['type']} before the ack")
            check(json.loads(first["payload"])["AcknowledgedMessageSequenceNumber"] == i, first)
            echo = c.recv_until(lambda m: m["type"] == "output_stream_data", timeout=5)
            check(echo["payload"] == b"e%02d" % i, echo)


def test_handshake_response_ack_precedes_complete():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="AWS-StartNonInteractiveCommand", params={"command": ["sleep 1"]})
        c = ssmtest.Client(r)
        c.open()
        req = c.recv_until(lambda m: m["payload_type"] == ssmtest.PT_HS_REQUEST)
        body = json.loads(req["payload"])
        resp = {"ClientVersion": "1.2.896.0", "ProcessedClientActions": [
            {"ActionType": a["ActionType"], "ActionStatus": 1} for a in body["RequestedClientActions"]],
            "Errors": []}
        c.send_input(ssmtest.PT_HS_RESPONSE, json.dumps(resp).encode())
        first = c.recv(timeout=5)
        check(first["type"] == "acknowledge", f"{first['type']} pt {first['payload_type']} before the ack")
        done = c.recv_until(lambda m: m["type"] == "output_stream_data", timeout=5)
        check(done["payload_type"] == ssmtest.PT_HS_COMPLETE, done)


if __name__ == "__main__":
    ssmtest.main([test_echo_ack_precedes_echo, test_handshake_response_ack_precedes_complete])
