"""ssmtest's plugin helpers against agent-sim: both hand-off forms (JSON in
argv[1] and AWS_SSM_START_SESSION_RESPONSE), on a pty and on pipes; the
OpenDataChannel the plugin sends is valid; channel_closed texts end it."""
import json
import re
import time

import ssmtest
from ssmtest import check

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def check_open(sim, sid):
    odc = sim.wait_record(event="open_data_channel", session=sid)
    check(odc["token_ok"] is True and "error" not in odc, odc)
    check(odc["MessageSchemaVersion"] == "1.0", odc)
    check(UUID.match(odc["ClientId"]) and UUID.match(odc["RequestId"]), odc)
    check(re.match(r"^\d+\.\d+\.\d+\.\d+$", odc["ClientVersion"]), odc)
    check(odc["keys"] == ["MessageSchemaVersion", "RequestId", "TokenValue", "ClientId", "ClientVersion"], odc)
    return odc


def test_both_handoff_forms_on_a_pty():
    for mode in ("env", "argv"):
        with ssmtest.Sim() as sim:
            r = sim.start_session(doc="Sim-Echo")
            argv, env = ssmtest.plugin_invocation(r, sim, mode=mode)
            check((argv[1] == "AWS_SSM_START_SESSION_RESPONSE") == (mode == "env"), argv[1][:40])
            check(mode == "env" or json.loads(argv[1])["TokenValue"] == r["TokenValue"], "argv JSON")
            p = ssmtest.run_pty(argv, env)
            p.read_until(f"Starting session with SessionId: {r['SessionId']}".encode())
            p.read_until(b"Sim-Echo ready")
            check_open(sim, r["SessionId"])
            p.write(b"ping-" + mode.encode())
            p.read_until(b"ping-" + mode.encode(), timeout=10)
            st, _ = sim.terminate_session(r["SessionId"])
            check(st == 200, st)
            p.read_until(f"Exiting session with sessionId: {r['SessionId']}.".encode(), timeout=10)
            check(p.wait(10) == 0, f"{mode}: exit status")


def test_pipes_and_close_output_text():
    with ssmtest.Sim("--close-after-ms", "1500", "--close-output", "simulated failure") as sim:
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim, mode="env")
        p = ssmtest.run_pipes(argv, env)
        p.stdin.write(b"piped-data")
        p.stdin.flush()
        deadline = time.time() + 15
        while p.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        check(p.poll() == 0, f"exit {p.poll()}")
        out = p.stdout.read()
        check(f"\nStarting session with SessionId: {r['SessionId']}\n".encode() in out, out[:200])
        check(b"Sim-Echo ready\r\npiped-data" in out, out)
        check(out.endswith(f"\n\nSessionId: {r['SessionId']} : simulated failure\n\n".encode()), out[-120:])
        check_open(sim, r["SessionId"])


if __name__ == "__main__":
    ssmtest.main([test_both_handoff_forms_on_a_pty, test_pipes_and_close_output_text])
