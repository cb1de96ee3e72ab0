"""agent-sim's smux keepalive model for old clients (<= 1.2.331.0): the agent
sends NOPs and smux closes the session after --smux-timeout-ms with no frame
at all from the client (30 s by default); a client sending frames stays."""
import json
import socket
import struct
import time

import ssmtest
from ssmtest import check

OLD_CLIENT = "1.2.300.0"


def port_session(sim):
    r = sim.start_session(doc="AWS-StartPortForwardingSession", params={"portNumber": ["9"]})
    c = ssmtest.Client(r, client_version=OLD_CLIENT)
    c.open()
    req = c.recv_until(lambda m: m["payload_type"] == ssmtest.PT_HS_REQUEST)
    body = json.loads(req["payload"])
    resp = {"ClientVersion": OLD_CLIENT, "Errors": None, "ProcessedClientActions": [
        {"ActionType": a["ActionType"], "ActionStatus": 1, "ActionResult": None, "Error": ""}
        for a in body["RequestedClientActions"]]}
    c.send_input(ssmtest.PT_HS_RESPONSE, json.dumps(resp).encode())
    c.recv_until(lambda m: m["payload_type"] == ssmtest.PT_HS_COMPLETE)
    return r, c


def nop():
    return struct.pack("<BBHI", 1, 3, 0, 0)


def test_silent_old_client_is_closed():
    with ssmtest.Sim("--smux-keepalive-ms", "200", "--smux-timeout-ms", "800") as sim:
        r, c = port_session(sim)
        t0 = time.time()
        m = c.recv_until(lambda m: m["type"] == "channel_closed", timeout=5)
        check(0.5 < time.time() - t0 < 4, f"closed after {time.time() - t0:.1f}s")
        check(sim.records(event="port_smux_timeout"), "timeout recorded")
        nops = [x for x in c.received if x["type"] == "output_stream_data" and x["payload"] == nop()]
        check(nops, "the agent sent smux NOPs")


def test_client_sending_nops_stays():
    with ssmtest.Sim("--smux-keepalive-ms", "200", "--smux-timeout-ms", "800") as sim:
        r, c = port_session(sim)
        end = time.time() + 2.5
        while time.time() < end:
            c.send_input(ssmtest.PT_OUTPUT, nop())
            try:
                c.recv_until(lambda m: m["type"] == "channel_closed", timeout=0.25)
                check(False, "closed although the client sent frames")
            except socket.timeout:
                pass
            except ssmtest.TestFailure as e:
                if "closed although" in str(e):
                    raise
        check(not sim.records(event="port_smux_timeout"), "no timeout")


if __name__ == "__main__":
    ssmtest.main([test_silent_old_client_is_closed, test_client_sending_nops_stays])
