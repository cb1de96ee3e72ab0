"""Our websocket writes when the socket is full (plugin/ws_direct.c
send_raw): the simulator stops reading its websocket for a while at the
first uploaded message (--stall-reads-ms), so an unpaced upload fills the
socket (SSM_PLUGIN_TEST_SNDBUF keeps its buffer small), the rest of a write batch goes to lws's buffer (over wss: after an
SSL_write that could not finish its record) and must leave intact, in
order, once the simulator reads again. The plugin's debug log proves the
path ran; the destination's SHA-256 proves the bytes."""

import hashlib
import os
import tempfile

import ssmtest as T
from test_port_mux import PF_DOC, PortPlugin
from test_ws_direct_bulk import Dest, connect, data

os.environ["SSM_PLUGIN_PACE_MSGS"] = "0"
# poll() reports a socket writable while a third of its buffer is free, and
# autotuning grows that buffer to MiBs on loopback: a small fixed one (the
# kernel doubles it) makes a 64 KiB write batch outgrow the room.
os.environ["SSM_PLUGIN_TEST_SNDBUF"] = "16384"
MIB = 16
STALL_MS = 1500


def run(tls):
    n = MIB << 20
    want = hashlib.sha256(data(n)).hexdigest()
    ca = T.make_test_ca() if tls else None
    dest = Dest(n)
    log = os.path.join(tempfile.mkdtemp(prefix="ssm-stall-"), "plugin.log")
    os.environ["SSM_PLUGIN_LOG"] = log
    os.environ["SSM_PLUGIN_LOG_LEVEL"] = "debug"
    try:
        with T.Sim("--stall-reads-ms", STALL_MS, tls=ca) as sim:
            pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(dest.port)]})
            port = pp.wait_listening()
            c = connect(port, b"u")
            c.sendall(data(n))
            T.check(dest.sunk.wait(120), "upload did not reach the destination")
            c.close()
            T.check(dest.sink_hash == (n, want), f"upload arrived as {dest.sink_hash}")
            T.check(sim.records("fault_stall_reads"), "the simulator never stalled")
            T.check(sim.records("fault_resume_reads"), "the simulator never resumed")
    finally:
        del os.environ["SSM_PLUGIN_LOG"]
        del os.environ["SSM_PLUGIN_LOG_LEVEL"]
    with open(log, encoding="utf-8", errors="replace") as f:
        text = f.read()
    T.check("websocket socket full: lws buffers" in text,
            "the socket never filled up: the test did not exercise the buffered path")


def test_ws_write_when_socket_full():
    run(tls=False)


def test_wss_write_when_socket_full():
    run(tls=True)


if __name__ == "__main__":
    T.main([test_ws_write_when_socket_full, test_wss_write_when_socket_full])
