"""agent-sim must survive hostile clients: garbage frames, lying lengths, bad
JSON, oversized messages, abrupt disconnects; then still serve and exit 0
(the Sim context checks the exit status and sanitizer output)."""
import json
import os
import signal
import socket
import struct
import subprocess
import time

import ssmtest
import wsclient
from ssmtest import check


def garbage_frames():
    # Valid apart from the mangling below; payload type 99 is ignored if accepted.
    good = ssmtest.encode_msg("input_stream_data", 0, 99, b"hello")
    yield b""
    yield b"\x00"
    yield os.urandom(119)
    yield good[:119]
    yield struct.pack(">I", 0xFFFFFFFF) + good[4:]          # HeaderLength far past the end
    yield struct.pack(">I", 0) + good[4:]                   # HeaderLength 0
    yield struct.pack(">I", 5) + good[4:]                   # HeaderLength below the header
    yield good[:116] + struct.pack(">I", 0xFFFFFFFF) + good[120:]  # PayloadLength lie
    yield good[:4] + b" " * 32 + good[36:]                  # empty MessageType
    yield good[:40] + b"\x00" * 8 + good[48:]               # CreatedDate 0
    yield ssmtest.encode_msg("acknowledge", 0, 0, b"{not json", flags=3)
    yield ssmtest.encode_msg("acknowledge", 0, 0, b'{"AcknowledgedMessageSequenceNumber":"x"}', flags=3)
    yield ssmtest.encode_msg("acknowledge", 0, 0, b'{"AcknowledgedMessageSequenceNumber":99999}', flags=3)
    yield ssmtest.encode_msg("input_stream_data", -5, 1, b"negative seq")
    yield ssmtest.encode_msg("input_stream_data", 2**62, 1, b"far future")
    yield ssmtest.encode_msg("input_stream_data", 0, 3, b'{"cols":"wide","rows":null}')
    yield ssmtest.encode_msg("input_stream_data", 1, 3, b'{"cols":1e300,"rows":-7}')
    yield ssmtest.encode_msg("input_stream_data", 2, 10, b"\x00")
    yield ssmtest.encode_msg("input_stream_data", 3, 99, b"unknown payload type")
    yield ssmtest.encode_msg("pause_publication", 0, 0, b"")
    yield ssmtest.encode_msg("no_such_type", 0, 0, b"x")
    for _ in range(50):
        yield os.urandom(120 + (os.urandom(1)[0] % 200))


def test_garbage_on_a_live_session():
    with ssmtest.Sim() as sim:
        r = sim.start_session()
        c = ssmtest.Client(r)
        c.open()
        c.recv(timeout=10)
        for f in garbage_frames():
            c.ws.send_binary(f)
        c.ws.send_text("text frame after open")
        c.ws.send_binary(b"\x00" * 70000)  # over the 64 KiB message limit
        time.sleep(0.5)
        check(sim.records(event="recv_invalid"), "invalid frames recorded")
        check(sim.records(event="recv_too_large"), "oversized message recorded")
        # The session is still alive and in order.
        c.send_input(ssmtest.PT_OUTPUT, b"echo still-$((40+2))\r", seq=4)
        c.recv_until(lambda m: b"still-42" in m["payload"], timeout=10)


def test_bad_open_data_channel_variants():
    with ssmtest.Sim() as sim:
        r = sim.start_session(doc="Sim-Echo")
        for odc in (b"not json", b"[]", b'{"MessageSchemaVersion":"2.0","TokenValue":"%s"}' % r["TokenValue"].encode(),
                    b'{"MessageSchemaVersion":1,"TokenValue":5}', b"\xff\xfe"):
            ws = wsclient.WebSocket(r["StreamUrl"], timeout=5)
            ws.send_text(odc)
            try:
                ws.recv(timeout=5)
                raise ssmtest.TestFailure(f"accepted {odc!r}")
            except wsclient.ConnectionClosed as e:
                check(e.code == 1008, e.code)
        # Invalid UTF-8 inside JSON strings must not corrupt the record.
        ws = wsclient.WebSocket(r["StreamUrl"], timeout=5)
        ws.send_text(b'{"MessageSchemaVersion":"1.0","RequestId":"\xff\xc3(","TokenValue":"x","ClientId":"\xe2\x82"}')
        try:
            ws.recv(timeout=5)
        except wsclient.ConnectionClosed:
            pass
        ids = [x["RequestId"] for x in sim.records(event="open_data_channel") if x.get("RequestId")]
        check("??(" in ids, ids)
        ws = wsclient.WebSocket(r["StreamUrl"].replace(r["SessionId"], "sim-unknown"), timeout=5)
        ws.send_text(json.dumps({"MessageSchemaVersion": "1.0", "TokenValue": r["TokenValue"]}))
        try:
            ws.recv(timeout=5)
            raise ssmtest.TestFailure("unknown session accepted")
        except wsclient.ConnectionClosed as e:
            check(e.code == 1008, e.code)
        # Abrupt disconnects mid-frame.
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
            s.sendall(b"GET /v1/data-channel/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n")
            s.close()
        s = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
        s.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\nX-Amz-Target: AmazonSSM.StartSession\r\n\r\n{")
        s.close()
        big = b'{"Target":"' + b"x" * 70000 + b'"}'
        st, body = sim.api("StartSession", big)
        check(st == 400, (st, body))
        # Still serving.
        c = ssmtest.Client(sim.start_session(doc="Sim-Echo", params={"banner": ["ok"]}))
        c.open()
        check(c.recv(timeout=5)["payload"] == b"ok", "still serving")


def test_port_file_and_sigint_exit():
    d = ssmtest.tempfile.mkdtemp()
    pf = os.path.join(d, "port")
    p = subprocess.Popen([ssmtest.env_path("SSM_AGENT_SIM"), "--port-file", pf], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        line = p.stdout.readline()
        port = json.loads(line)["port"]
        check(open(pf).read() == f"{port}\n", "port file")
        check(line == b'{"port":%d}\n' % port, line)
        p.send_signal(signal.SIGINT)
        check(p.wait(5) == 0, "clean exit on SIGINT")
    finally:
        if p.poll() is None:
            p.kill()
        p.stdout.close()
    bad = subprocess.run([ssmtest.env_path("SSM_AGENT_SIM"), "--drop", "2"], capture_output=True, timeout=5)
    check(bad.returncode == 2 and b"usage" in bad.stderr, bad)


if __name__ == "__main__":
    ssmtest.main([test_garbage_on_a_live_session, test_bad_open_data_channel_variants, test_port_file_and_sigint_exit])
