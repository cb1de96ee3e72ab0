"""smux keep-alive gate (PROTOCOL.md §11.2): with agent <= 3.1.1511.0 the
plugin sends a NOP every 10 s; with a newer agent it sends none. Runs
SSM_PORT_TEST_KEEPALIVE_S seconds (default 10.5; 35 also covers the 30 s
dead-session check, which NOPs from the old agent must satisfy)."""

import os
import signal
import socket
import time

import ssmtest as T
from test_port_mux import PF_DOC, EchoServer, PortPlugin, roundtrip

WAIT_S = float(os.environ.get("SSM_PORT_TEST_KEEPALIVE_S", "10.5"))


def test_keepalive_gate():
    echo = EchoServer()
    with T.Sim("--agent-version", "3.1.1511.0") as old_sim, T.Sim() as new_sim:
        old = PortPlugin(old_sim, PF_DOC, {"portNumber": [str(echo.port)]})
        new = PortPlugin(new_sim, PF_DOC, {"portNumber": [str(echo.port)]})
        old_port, new_port = old.wait_listening(), new.wait_listening()
        time.sleep(WAIT_S)
        nops_old = len(old_sim.records("port_smux_nop", old.sid))
        nops_new = len(new_sim.records("port_smux_nop", new.sid))
        T.check(nops_old >= int(WAIT_S // 10), f"old agent: {nops_old} NOP payloads in {WAIT_S}s")
        T.check(nops_new == 0, f"new agent: {nops_new} NOP payloads, want none")
        T.check(not old_sim.records("port_smux_timeout"), "old agent's smux dead-session check fired")
        for pp, port in ((old, old_port), (new, new_port)):
            T.check(pp.p.poll() is None, "plugin exited while idle")
            with socket.create_connection(("127.0.0.1", port)) as c:
                roundtrip(c, b"still alive\n")
            pp.p.send_signal(signal.SIGINT)
            T.check(pp.finish() == 0, "exit status")
    echo.close()


if __name__ == "__main__":
    T.main([test_keepalive_gate])
