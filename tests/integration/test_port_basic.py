"""Basic port forwarding (PROTOCOL.md §10.4, §12.2): agent 3.0.196.0 and
older. One local connection at a time, DisconnectToPort when it ends, the
TerminateSession flag or (agent <= 2.3.722.0) the TerminateSession API."""

import signal
import socket
import time

import ssmtest as T
from test_port_mux import PF_DOC, EchoServer, PortPlugin, roundtrip, starting_text


def opened_basic(port, sid):
    return f"Port {port} opened for sessionId {sid}.\n".encode()


def accepted_basic(sid):
    return f"Connection accepted for session {sid}.\n".encode()


def listening_port(pp):
    import re
    pp.read_until(b" opened for sessionId ")
    pp.read_until(b".\n")
    return int(re.search(rb"Port (\d+) opened", pp.out).group(1))


def test_basic_mode_texts_disconnect_and_flag():
    echo = EchoServer()
    with T.Sim("--agent-version", "3.0.196.0") as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)], "localPortNumber": ["0"]})
        port = listening_port(pp)
        with socket.create_connection(("127.0.0.1", port)) as c:
            roundtrip(c, b"first connection\n" * 1000)
        pp.read_until(accepted_basic(pp.sid))
        sim.wait_record(lambda r: r.get("flag") == 1, event="port_flag", session=pp.sid)
        # the agent closed its destination; the next data re-dials it
        with socket.create_connection(("127.0.0.1", port)) as c:
            roundtrip(c, bytes(range(256)) * 400)
        deadline = time.time() + 5
        while len(sim.records("port_flag", pp.sid)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        T.check(echo.accepted == 2, f"destination dialled {echo.accepted} times, want 2")
        T.check(sim.records("port_mode", pp.sid)[0]["mode"] == "basic", "sim did not choose basic")
        pp.p.send_signal(signal.SIGINT)
        rc = pp.finish()
        want = (starting_text(pp.sid) + opened_basic(port, pp.sid) + accepted_basic(pp.sid)
                + b"Terminate signal received, exiting.\n"
                + f"\n\nExiting session with sessionId: {pp.sid}.\n\n".encode())
        T.check(pp.out == want, f"stdout differs:\n got {pp.out!r}\nwant {want!r}")
        T.check(rc == 0, f"exit status {rc}")
        flags = [r["flag"] for r in sim.records("port_flag", pp.sid)]
        T.check(flags == [1, 1, 2], f"flags at the agent {flags}")
    echo.close()


def test_basic_one_connection_at_a_time():
    echo = EchoServer()
    with T.Sim("--agent-version", "3.0.196.0") as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)]})
        port = listening_port(pp)
        a = socket.create_connection(("127.0.0.1", port))
        roundtrip(a, b"A" * 3000)
        b = socket.create_connection(("127.0.0.1", port))  # waits in the backlog
        b.sendall(b"B" * 2000)
        b.settimeout(0.5)
        try:
            early = b.recv(100)
        except socket.timeout:
            early = None
        T.check(early is None, f"second connection served while the first is open: {early!r}")
        roundtrip(a, b"still A")
        a.close()
        b.settimeout(10)
        got = b""
        while len(got) < 2000:
            d = b.recv(65536)
            T.check(d, "second connection closed")
            got += d
        T.check(got == b"B" * 2000, "second connection data")
        b.close()
        pp.p.send_signal(signal.SIGTSTP)
        T.check(pp.finish() == 0, "exit status")
    echo.close()


def test_basic_old_agent_uses_terminate_api():
    echo = EchoServer()
    with T.Sim("--agent-version", "2.3.722.0") as sim:
        pp = PortPlugin(sim, PF_DOC, {"portNumber": [str(echo.port)]})
        port = listening_port(pp)
        with socket.create_connection(("127.0.0.1", port)) as c:
            roundtrip(c, b"old agent\n")
        pp.read_until(accepted_basic(pp.sid))
        pp.p.send_signal(signal.SIGINT)
        pp.read_until(b"Terminate signal received, exiting.\n")
        sim.wait_record(event="session_terminated", session=pp.sid)
        rc = pp.finish(timeout=15)
        T.check(rc == 0, f"exit status {rc}")
        T.check(pp.out.endswith(f"\n\nExiting session with sessionId: {pp.sid}.\n\n".encode()),
                f"stdout {pp.out!r}")
        T.check(all(r["flag"] != 2 for r in sim.records("port_flag", pp.sid)),
                "TerminateSession flag sent to an agent that ignores it")
    echo.close()


if __name__ == "__main__":
    T.main([test_basic_mode_texts_disconnect_and_flag, test_basic_one_connection_at_a_time,
            test_basic_old_agent_uses_terminate_api])
