"""agent-sim: the fake SSM JSON-1.1 API and OpenDataChannel validation."""
import json
import urllib.parse

import ssmtest
import wsclient
from ssmtest import check


def test_start_session_shape():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": ["hello\r\n"]}, reason="test")
        check(set(r) == {"SessionId", "TokenValue", "StreamUrl"}, f"keys: {r}")
        u = urllib.parse.urlsplit(r["StreamUrl"])
        check(u.scheme == "ws" and u.hostname == "127.0.0.1" and u.port == sim.port, r["StreamUrl"])
        check(u.path == "/v1/data-channel/" + r["SessionId"], u.path)
        check(u.query.startswith("role=publish_subscribe&cell-number="), u.query)
        check("+" in u.query, "cell-number must carry a raw '+'")
        call = sim.wait_record(event="api_call")
        check(call["target"] == "AmazonSSM.StartSession", call)
        check(call["has_authorization"] is True, call)
        check(call["body"]["DocumentName"] == "Sim-Echo" and call["body"]["Reason"] == "test", call)
        created = sim.wait_record(event="session_created")
        check(created["session"] == r["SessionId"] and created["document"] == "Sim-Echo", created)
        check(r["TokenValue"] not in open(sim.record_path).read(), "token leaked into the record")


def test_errors():
    with ssmtest.Sim() as sim:
        st, body = sim.api("StartSession", {"DocumentName": "Sim-Echo"})
        check(st == 400 and body.get("__type") == "ValidationException", (st, body))
        st, body = sim.api("StartSession", {"Target": "i-1", "DocumentName": "No-Such-Doc"})
        check(st == 400 and body.get("__type") == "InvalidDocument", (st, body))
        st, body = sim.api("StartSession", {"Target": "i-1", "Parameters": {"a": "not-a-list"}})
        check(st == 400 and "message" in body, (st, body))
        st, body = sim.api("DescribeInstances", {}, raw_target="AmazonSSM.DescribeInstances")
        check(st == 400 and body["__type"] == "UnknownOperationException" and body["message"], (st, body))
        st, body = sim.api("StartSession", b"{not json")
        check(st == 400 and body["__type"] == "SerializationException", (st, body))
        st, body = sim.resume_session("sim-nope")
        check(st == 400 and body["__type"] == "DoesNotExistException", (st, body))
        errors = sim.records(event="api_error")
        check(len(errors) == 6, f"every error recorded: {errors}")


def test_bad_token_rejected():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        c = ssmtest.Client(r)
        c.open(token="AAEAAnot-the-token")
        try:
            m = c.recv(timeout=5)
            raise ssmtest.TestFailure(f"got a message with a bad token: {m}")
        except wsclient.ConnectionClosed as e:
            check(e.code == 1008, f"close code {e.code}")
        rec = sim.wait_record(event="open_data_channel")
        check(rec["token_ok"] is False and rec["error"] == "invalid token", rec)
        check(rec["ClientId"] == c.client_id and rec["ClientVersion"] == "1.2.896.0", rec)
        check(rec["keys"] == ["MessageSchemaVersion", "RequestId", "TokenValue", "ClientId", "ClientVersion"], rec)
        # The right token still works afterwards.
        c2 = ssmtest.Client(r)
        c2.open()
        m = c2.recv(timeout=5)
        check(m["type"] == "output_stream_data" and m["seq"] == 0, m)


def test_resume_rotates_token_and_keeps_sequence():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        c = ssmtest.Client(r)
        c.open()
        banner = c.recv_until(lambda m: m["type"] == "output_stream_data")
        check(banner["seq"] == 0, banner)
        c.send_input(ssmtest.PT_OUTPUT, b"one")
        c.recv_until(lambda m: m["type"] == "output_stream_data" and m["payload"] == b"one")
        c.ws.close()
        st, res = sim.resume_session(r["SessionId"])
        check(st == 200 and res["TokenValue"] and res["TokenValue"] != r["TokenValue"], res)
        check(res["SessionId"] == r["SessionId"] and "StreamUrl" in res, res)
        old = ssmtest.Client(r)
        old.open()  # the old token is invalid now
        try:
            old.recv(timeout=5)
            raise ssmtest.TestFailure("old token accepted after ResumeSession")
        except wsclient.ConnectionClosed:
            pass
        c2 = ssmtest.Client(dict(r, TokenValue=res["TokenValue"]))
        c2.client_id = c.client_id
        c2.seq = c.seq  # sequence numbers persist across reconnects
        c2.open()
        c2.send_input(ssmtest.PT_OUTPUT, b"two")
        m = c2.recv_until(lambda m: m["type"] == "output_stream_data" and m["payload"] == b"two")
        check(m["seq"] == 2, f"agent sequence continues: {m['seq']}")
        attaches = sim.records(event="attach", session=r["SessionId"])
        check([a["connects"] for a in attaches] == [1, 2], attaches)


def test_terminate_session_sends_channel_closed():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        c = ssmtest.Client(r)
        c.open()
        c.recv_until(lambda m: m["type"] == "output_stream_data")
        st, body = sim.terminate_session(r["SessionId"])
        check(st == 200 and body == {"SessionId": r["SessionId"]}, (st, body))
        m = c.recv_until(lambda m: m["type"] == "channel_closed", timeout=5)
        cc = json.loads(m["payload"])
        check(cc["SessionId"] == r["SessionId"] and cc["Output"] == "" and cc["MessageType"] == "channel_closed", cc)
        check(cc["DestinationId"] == ssmtest.DEFAULT_TARGET and cc["SchemaVersion"] == 1, cc)
        st, res = sim.resume_session(r["SessionId"])
        check(st == 200 and not res.get("TokenValue"), f"terminated session resumes without a token: {res}")


def test_keepalive_connection_open_at_shutdown():
    """A keep-alive API connection still open at SIGTERM: the sim frees its
    request buffer anyway (a sanitizer build reports the leak otherwise; the
    Sim context checks the exit status and stderr)."""
    import http.client
    import json as _json
    with ssmtest.Sim() as sim:
        conns = []
        for _ in range(3):
            h = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
            h.request("POST", "/", body=_json.dumps({"Target": "i-0123456789abcdef0"}),
                      headers={"X-Amz-Target": "AmazonSSM.StartSession",
                               "Content-Type": "application/x-amz-json-1.1", "Connection": "keep-alive"})
            resp = h.getresponse()
            check(resp.status == 200 and _json.loads(resp.read())["SessionId"], "StartSession")
            conns.append(h)
        check(sim.stop() == 0, f"exit status; stderr {sim.stderr()[-2000:]!r}")
        for h in conns:
            h.close()


if __name__ == "__main__":
    ssmtest.main([test_start_session_shape, test_errors, test_bad_token_rejected,
                  test_resume_rotates_token_and_keeps_sequence, test_terminate_session_sends_channel_closed,
                  test_keepalive_connection_open_at_shutdown])
