"""agent-sim handshake (§8) and NonInteractiveCommands: message shapes match
the recorded s2c frames in the fixtures, discarded-but-acked data during the
handshake, failure reporting, stdout/stderr/exit code."""
import json
import os

import ssmtest
from ssmtest import check

CLIENT_VERSION = "1.2.896.0"


def fixture_frames(name):
    for d in (os.path.join(os.environ.get("SSM_SOURCE_DIR", ""), "fixtures", "official-plugin"),
              "/work/shared/fixtures/official-plugin"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            with open(p) as f:
                return [json.loads(l) for l in f][1:]
    return None


def key_shape(v):
    """Structure of a JSON value: dict keys (recursively) and value kinds."""
    if isinstance(v, dict):
        return {k: key_shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [key_shape(x) for x in v[:1]]
    return type(v).__name__


def handshake_response(req, status=1, error="", client_version=CLIENT_VERSION):
    acts = [{"ActionType": a["ActionType"], "ActionStatus": status, "ActionResult": None, "Error": error}
            for a in req["RequestedClientActions"]]
    return json.dumps({"ClientVersion": client_version, "ProcessedClientActions": acts,
                       "Errors": None if status == 1 else [error]}, separators=(",", ":")).encode()


def test_noninteractive_handshake_matches_fixture_shape():
    with ssmtest.Sim("--agent-version", "3.3.1142.0") as sim:
        r = sim.start_session(doc="AWS-StartNonInteractiveCommand",
                              params={"command": ["echo out; echo err >&2; exit 7"]})
        c = ssmtest.Client(r, client_version=CLIENT_VERSION)
        c.open()
        hreq = c.recv(timeout=5)
        check(hreq["type"] == "output_stream_data" and hreq["seq"] == 0 and hreq["flags"] == 1, hreq)
        check(hreq["payload_type"] == ssmtest.PT_HS_REQUEST, hreq)
        req = json.loads(hreq["payload"])
        check(req["AgentVersion"] == "3.3.1142.0", req)
        act = req["RequestedClientActions"][0]
        check(act["ActionType"] == "SessionType", act)
        check(act["ActionParameters"] == {"SessionType": "NonInteractiveCommands", "Properties": None}, act)
        c.ack(hreq)
        # Data sent during the handshake is acked but discarded (§8.7).
        c.send_input(ssmtest.PT_HS_RESPONSE, handshake_response(req), seq=1)
        c.send_input(ssmtest.PT_OUTPUT, b"too early", seq=0)
        c.seq = 2
        s = ssmtest.Stream(c)
        s.expected = 1  # seq 0 (the request) was read above
        s.pump(lambda s: s.closed is not None)
        done = next(m for m in s.messages if m["payload_type"] == ssmtest.PT_HS_COMPLETE)
        check(done["seq"] == 1 and done["flags"] == 0, done)
        comp = json.loads(done["payload"])
        check(set(comp) == {"HandshakeTimeToComplete", "CustomerMessage"} and comp["CustomerMessage"] == "", comp)
        check(isinstance(comp["HandshakeTimeToComplete"], int) and comp["HandshakeTimeToComplete"] > 0, comp)
        check(bytes(s.data[ssmtest.PT_OUTPUT]) == b"out\nerr\n" or
              sorted(bytes(s.data[ssmtest.PT_OUTPUT]).split()) == [b"err", b"out"], "merged output")
        check(bytes(s.data[ssmtest.PT_EXIT_CODE]) == b"EXIT_CODE: 7", bytes(s.data[ssmtest.PT_EXIT_CODE]))
        check(s.messages[-1]["payload_type"] == ssmtest.PT_EXIT_CODE, "exit code is the last stream message")
        check(s.closed["Output"] == "", s.closed)
        disc = sim.wait_record(event="discarded_during_handshake")
        check(disc["payload_type"] == 1, disc)
        hs = sim.wait_record(event="handshake_response")
        check(json.loads(hs["text"])["ClientVersion"] == CLIENT_VERSION and hs["request_acked"] is True, hs)

        frames = fixture_frames("shell.jsonl")
        if frames is None:
            print("note: fixtures not found; shape comparison skipped")
            return
        s2c = [f["msg"] for f in frames if f["dir"] == "s2c" and f.get("msg")]
        fx_req = next(m for m in s2c if m["payload_type"] == 5)
        fx_done = next(m for m in s2c if m["payload_type"] == 7)
        fx_ack = next(m for m in s2c if m["type"] == "acknowledge")
        fx_closed = next(m for m in s2c if m["type"] == "channel_closed")
        fx_req_json = json.loads(fx_req["payload_text"])
        fx_req_json["RequestedClientActions"][0]["ActionParameters"]["Properties"] = None
        check(key_shape(req) == key_shape(fx_req_json), (req, fx_req_json))
        check((hreq["seq"], hreq["flags"], hreq["schema"]) == (fx_req["seq"], fx_req["flags"], fx_req["schema"]), "req header")
        check(key_shape(comp) == key_shape(json.loads(fx_done["payload_text"])), comp)
        ack = next(m for m in c.received if m["type"] == "acknowledge")
        check(key_shape(json.loads(ack["payload"])) == key_shape(json.loads(fx_ack["payload_text"])), "ack JSON")
        check((ack["seq"], ack["flags"], ack["payload_type"]) == (fx_ack["seq"], fx_ack["flags"], fx_ack["payload_type"]), ack)
        closed = next(m for m in c.received if m["type"] == "channel_closed")
        check(key_shape(json.loads(closed["payload"])) == key_shape(json.loads(fx_closed["payload_text"])), "closed JSON")
        check((closed["flags"], closed["payload_type"]) == (fx_closed["flags"], fx_closed["payload_type"]), closed)


def test_separate_output_stream_and_old_client_warning():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="AWS-StartNonInteractiveCommand",
                              params={"command": ["echo out; echo err >&2"], "separateOutputStream": ["true"]})
        c = ssmtest.Client(r, client_version="1.2.200.0")
        c.open()
        hreq = c.recv_until(lambda m: m["payload_type"] == ssmtest.PT_HS_REQUEST)
        c.send_input(ssmtest.PT_HS_RESPONSE,
                     handshake_response(json.loads(hreq["payload"]), client_version="1.2.200.0"))
        s = ssmtest.Stream(c)
        s.expected = 1
        s.pump(lambda s: s.closed is not None)
        done_at = next(i for i, m in enumerate(c.received) if m["payload_type"] == ssmtest.PT_HS_COMPLETE)
        ack_at = next(i for i, m in enumerate(c.received) if m["type"] == "acknowledge")
        check(ack_at < done_at, "the response is acked before HandshakeComplete (fixture order)")
        comp = json.loads(next(m for m in s.messages if m["payload_type"] == 7)["payload"])
        check(comp["CustomerMessage"].startswith("Please update session manager plugin version"), comp)
        check(bytes(s.data[ssmtest.PT_OUTPUT]) == b"out\n", bytes(s.data[1]))
        check(bytes(s.data[ssmtest.PT_STDERR]) == b"err\n", bytes(s.data[11]))
        check(bytes(s.data[ssmtest.PT_EXIT_CODE]) == b"EXIT_CODE: 0", bytes(s.data[12]))


def test_failed_action_ends_session_with_reason():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="AWS-StartNonInteractiveCommand", params={"command": ["sleep 30"]})
        c = ssmtest.Client(r)
        c.open()
        hreq = c.recv_until(lambda m: m["payload_type"] == ssmtest.PT_HS_REQUEST)
        c.send_input(ssmtest.PT_HS_RESPONSE, handshake_response(json.loads(hreq["payload"]), 2, "nope"))
        m = c.recv_until(lambda m: m["type"] == "channel_closed", timeout=5)
        out = json.loads(m["payload"])["Output"]
        check(out == "SessionType failed on client with status 2 error: nope", out)


def test_signal_byte_interrupts_command():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="AWS-StartNonInteractiveCommand",
                              params={"command": ["trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 0.05; done"]})
        c = ssmtest.Client(r)
        c.open()
        hreq = c.recv_until(lambda m: m["payload_type"] == ssmtest.PT_HS_REQUEST)
        c.send_input(ssmtest.PT_HS_RESPONSE, handshake_response(json.loads(hreq["payload"])))
        s = ssmtest.Stream(c)
        s.expected = 1
        s.pump(lambda s: b"ready" in s.data[1])
        c.send_input(ssmtest.PT_OUTPUT, b"\x03")
        s.pump(lambda s: s.closed is not None)
        check(b"got-int" in s.data[1], bytes(s.data[1]))
        check(bytes(s.data[ssmtest.PT_EXIT_CODE]) == b"EXIT_CODE: 9", bytes(s.data[12]))
        check(sim.wait_record(event="signal_sent")["signal"] == 2, "SIGINT recorded")


def test_handshake_shell_flag():
    with ssmtest.Sim("--handshake-shell") as sim:
        r = sim.start_session(doc="Sim-Echo")
        c = ssmtest.Client(r)
        c.open()
        hreq = c.recv(timeout=5)
        req = json.loads(hreq["payload"])
        check(req["RequestedClientActions"][0]["ActionParameters"]["SessionType"] == "Standard_Stream", req)
        c.ack(hreq)
        c.send_input(ssmtest.PT_HS_RESPONSE, handshake_response(req))
        c.recv_until(lambda m: m["payload_type"] == ssmtest.PT_HS_COMPLETE)
        c.send_input(ssmtest.PT_OUTPUT, b"after")
        m = c.recv_until(lambda m: m["type"] == "output_stream_data" and m["payload_type"] == 1)
        check(m["payload"] == b"after" and m["seq"] == 2, f"no banner with a handshake: {m}")


def test_handshake_timeout_ends_session():
    with ssmtest.Sim("--handshake-timeout-ms", "500") as sim:
        r = sim.start_session(doc="AWS-StartNonInteractiveCommand", params={"command": ["true"]})
        c = ssmtest.Client(r)
        c.open()
        hreq = c.recv(timeout=5)
        c.ack(hreq)  # acked, but never answered
        m = c.recv_until(lambda m: m["type"] == "channel_closed", timeout=5)
        out = json.loads(m["payload"])["Output"]
        check(out == "Handshake timed out. Please ensure that you have the latest version of the "
                     "session manager plugin.", out)
        check(not sim.records(event="behaviour_start"), "behaviour never started")
        check(not sim.records(event="process_start"), "no process")


if __name__ == "__main__":
    ssmtest.main([test_noninteractive_handshake_matches_fixture_shape, test_separate_output_stream_and_old_client_warning,
                  test_failed_action_ends_session_with_reason, test_signal_byte_interrupts_command,
                  test_handshake_shell_flag, test_handshake_timeout_ends_session])
