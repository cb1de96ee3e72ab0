"""agent-sim ResumeSession and cut faults: --resume-fail-count, --resume-fail-ms,
--resume-empty-token, --resume-new-cell, --cut-mode, --cut-after-client-msgs.
Driven by a scripted client, so each flag's observable behaviour is pinned."""
import socket
import time

import ssmtest
import wsclient
from ssmtest import check


def open_echo(sim, banner="B"):
    r = sim.start_session(doc="Sim-Echo", params={"banner": [banner]})
    c = ssmtest.Client(r)
    c.open()
    c.recv_until(lambda m: m["type"] == "output_stream_data", timeout=5)
    return r, c


def wait_closed(c, timeout=5):
    """Reads until the connection ends; returns the ConnectionClosed or OSError."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c.recv(timeout=deadline - time.time())
        except (wsclient.ConnectionClosed, ConnectionError, OSError) as e:
            if isinstance(e, socket.timeout):
                break
            return e
    raise ssmtest.TestFailure("connection was not cut")


def test_resume_fail_count():
    with ssmtest.Sim("--resume-fail-count", "2") as sim:
        r = sim.start_session(doc="Sim-Echo")
        for i in range(2):
            st, res = sim.resume_session(r["SessionId"])
            check(st == 403 and res.get("__type") == "AccessDeniedException", (i, st, res))
        st, res = sim.resume_session(r["SessionId"])
        check(st == 200 and res["TokenValue"] and res["TokenValue"] != r["TokenValue"], res)
        check(len(sim.records(event="fault_resume_fail")) == 2, "recorded")


def test_resume_fail_ms_after_first_cut():
    with ssmtest.Sim("--resume-fail-ms", "600", "--cut-after-msgs", "2") as sim:
        r, c = open_echo(sim)
        # Before any cut, resume works.
        c.send_input(ssmtest.PT_OUTPUT, b"x")
        wait_closed(c)
        t_cut = time.time()
        st, res = sim.resume_session(r["SessionId"])
        check(st == 403 and res["__type"] == "AccessDeniedException", (st, res))
        while time.time() < t_cut + 0.7:
            time.sleep(0.05)
        st, res = sim.resume_session(r["SessionId"])
        check(st == 200 and res.get("TokenValue"), (st, res))


def test_resume_empty_token():
    with ssmtest.Sim("--resume-empty-token") as sim:
        r = sim.start_session(doc="Sim-Echo")
        st, res = sim.resume_session(r["SessionId"])
        check(st == 200 and res.get("TokenValue") == "" and res["StreamUrl"], res)
        check(sim.records(event="fault_resume_empty_token"), "recorded")


def cell_of(url):
    return url.split("cell-number=", 1)[1]


def test_resume_new_cell_refuses_the_old_url():
    with ssmtest.Sim("--resume-new-cell") as sim:
        r, c = open_echo(sim)
        c.close()
        st, res = sim.resume_session(r["SessionId"])
        check(st == 200 and cell_of(res["StreamUrl"]) != cell_of(r["StreamUrl"]), (r, res))
        check("+" in cell_of(res["StreamUrl"]), res["StreamUrl"])
        try:
            ssmtest.Client(dict(r, TokenValue=res["TokenValue"]))
            check(False, "old StreamUrl accepted")
        except wsclient.WebSocketError as e:
            check("upgrade refused" in str(e), e)
        check(sim.records(event="ws_refused"), "refusal recorded")
        c2 = ssmtest.Client(res)
        c2.open()
        c2.send_input(ssmtest.PT_OUTPUT, b"new cell")
        m = c2.recv_until(lambda m: m["type"] == "output_stream_data" and m["payload"] == b"new cell")
        check(m, "echo on the new URL")


def test_without_new_cell_the_url_is_stable():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        st, res = sim.resume_session(r["SessionId"])
        check(res["StreamUrl"] == r["StreamUrl"], (r, res))


def test_cut_mode_close_sends_going_away():
    with ssmtest.Sim("--cut-mode", "close", "--cut-after-msgs", "2") as sim:
        r, c = open_echo(sim)
        c.send_input(ssmtest.PT_OUTPUT, b"x")
        e = wait_closed(c)
        check(isinstance(e, wsclient.ConnectionClosed) and e.code == 1001, repr(e))
        check(sim.records(event="fault_cut")[0]["mode"] == "close", "mode recorded")


def test_cut_mode_reset_is_a_tcp_reset():
    with ssmtest.Sim("--cut-mode", "reset", "--cut-after-msgs", "2") as sim:
        r, c = open_echo(sim)
        c.send_input(ssmtest.PT_OUTPUT, b"x")
        e = wait_closed(c)
        check(not (isinstance(e, wsclient.ConnectionClosed) and e.code), f"no close frame: {e!r}")


def test_cut_after_client_msgs_loses_the_upload_message():
    with ssmtest.Sim("--cut-after-client-msgs", "3") as sim:
        r, c = open_echo(sim)
        acked = []
        for i in range(3):
            c.send_input(ssmtest.PT_OUTPUT, b"u%d" % i)
        e = wait_closed(c)
        check(e is not None, "cut")
        for m in c.received:
            if m["type"] == "acknowledge":
                acked.append(m)
        check(len(acked) == 2, f"the 3rd upload message was not acked: {len(acked)}")
        cut = sim.records(event="fault_cut")
        check(len(cut) == 1 and cut[0]["why"] == "after_client_msgs" and cut[0]["after_client_msgs"] == 3, cut)
        # Resume and resend the lost one: the stream continues in order.
        st, res = sim.resume_session(r["SessionId"])
        c2 = ssmtest.Client(res)
        c2.client_id = c.client_id
        c2.open()
        c2.send_input(ssmtest.PT_OUTPUT, b"u2", seq=2)
        c2.recv_until(lambda m: m["type"] == "output_stream_data" and m["payload"] == b"u2", timeout=5)


if __name__ == "__main__":
    ssmtest.main([test_resume_fail_count, test_resume_fail_ms_after_first_cut, test_resume_empty_token,
                  test_resume_new_cell_refuses_the_old_url, test_without_new_cell_the_url_is_stable,
                  test_cut_mode_close_sends_going_away, test_cut_mode_reset_is_a_tcp_reset,
                  test_cut_after_client_msgs_loses_the_upload_message])
