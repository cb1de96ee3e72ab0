"""Port-forwarding transcripts pinned to the OFFICIAL plugin's bytes.

Each expected stdout below was observed byte for byte from a locally built
official plugin (1.2.677.0 stamp, aws/session-manager-plugin mainline) run
against agent-sim in the same scenario, side by side with ours (audit,
November 2026). Only the session id, the ephemeral port and the unix socket
path are substituted. The official binary is not needed to run this test.
Evidence in the official source: portsession/muxportforwarding.go and
basicportforwarding.go (Printf/Println of the texts below)."""
import os
import re
import signal
import socket
import tempfile
import time

import ssmtest
from ssmtest import check

PF_DOC = "AWS-StartPortForwardingSession"
MUX_AGENT = "3.3.1142.0"
BASIC_AGENT = "3.0.196.0"
OLD_AGENT = "2.3.700.0"  # below the TerminateSession-flag gate: the API is used


def start(sid_line):
    return f"\nStarting session with SessionId: {sid_line}\n"


def exiting(sid):
    return f"\n\nExiting session with sessionId: {sid}.\n\n"


EchoServer = ssmtest.EchoServer


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Plugin(ssmtest.Piped):
    """Our plugin in a port session on pipes."""

    def __init__(self, sim, resp):
        argv, env = ssmtest.plugin_invocation(resp, sim, doc=PF_DOC)
        self.sid = resp["SessionId"]
        super().__init__(argv, env)

    def port(self):
        self.wait_for(" opened for sessionId ")
        m = re.search(rb"Port (\d+) opened", bytes(self.out))
        check(m, f"no port line: {bytes(self.out)!r}")
        return int(m.group(1))

    def finish(self, timeout=15.0):
        return super().finish(timeout)


def session(sim, params):
    resp = sim.start_session(doc=PF_DOC, params=params)
    return Plugin(sim, resp)


def echo_twice(port):
    for i in range(2):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"ping%d" % i)
            got = b""
            while len(got) < 5:
                d = c.recv(100)
                check(d, "echo connection closed early")
                got += d
            check(got == b"ping%d" % i, f"echo {got!r}")
        time.sleep(0.3)


def expect(pp, rc, text):
    check(rc == 0, f"exit status {rc}")
    check(bytes(pp.out) == text.encode(), f"stdout differs from the official bytes:\n"
          f"  got  {bytes(pp.out)!r}\n  want {text.encode()!r}")


def mux_signal_transcript(signo):
    echo = EchoServer()
    with ssmtest.Sim("--agent-version", MUX_AGENT) as sim:
        pp = session(sim, {"portNumber": [str(echo.port)]})
        port = pp.port()
        pp.wait_for("Waiting for connections...\n")
        echo_twice(port)
        pp.wait_for("]\n")
        pp.p.send_signal(signo)
        rc = pp.finish()
        sid = pp.sid
        expect(pp, rc, start(sid) + f"Port {port} opened for sessionId {sid}.\nWaiting for connections...\n"
               f"\nConnection accepted for session [{sid}]\n"
               "Terminate signal received, exiting.\n" + exiting(sid))
    echo.close()


def test_mux_sigint_transcript():
    mux_signal_transcript(signal.SIGINT)


def test_mux_sigquit_and_sigtstp_transcripts():
    mux_signal_transcript(signal.SIGQUIT)
    mux_signal_transcript(signal.SIGTSTP)


def basic_signal_transcript(agent):
    echo = EchoServer()
    with ssmtest.Sim("--agent-version", agent) as sim:
        pp = session(sim, {"portNumber": [str(echo.port)]})
        port = pp.port()
        echo_twice(port)
        pp.p.send_signal(signal.SIGINT)
        rc = pp.finish()
        sid = pp.sid
        # One "Connection accepted" although two connections were served.
        expect(pp, rc, start(sid) + f"Port {port} opened for sessionId {sid}.\n"
               f"Connection accepted for session {sid}.\n"
               "Terminate signal received, exiting.\n" + exiting(sid))
    echo.close()


def test_basic_sigint_transcript():
    basic_signal_transcript(BASIC_AGENT)


def test_basic_old_agent_sigint_transcript():
    """The API path (agent <= 2.3.722.0) prints the same bytes: the exit text
    then comes from channel_closed."""
    basic_signal_transcript(OLD_AGENT)


def test_mux_connect_to_port_error_transcript():
    with ssmtest.Sim("--agent-version", MUX_AGENT) as sim:
        pp = session(sim, {"portNumber": [str(closed_port())]})
        port = pp.port()
        fail = "\nConnection to destination port failed, check SSM Agent logs.\n"
        for i in range(2):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"x")
                c.settimeout(5)
                try:
                    check(c.recv(10) == b"", "data from a failed destination")
                except ConnectionResetError:
                    pass
            deadline = time.time() + 10
            while bytes(pp.out).count(fail.encode()) < i + 1:
                check(time.time() < deadline, f"no ConnectToPortError text: {bytes(pp.out)!r}")
                time.sleep(0.02)
        pp.p.send_signal(signal.SIGINT)
        rc = pp.finish()
        sid = pp.sid
        expect(pp, rc, start(sid) + f"Port {port} opened for sessionId {sid}.\nWaiting for connections...\n"
               f"\nConnection accepted for session [{sid}]\n" + fail + fail +
               "Terminate signal received, exiting.\n" + exiting(sid))


def test_terminate_api_ends_mux_and_basic_with_exit_text():
    """TerminateSession from elsewhere: channel_closed, no signal text."""
    echo = EchoServer()
    for agent in (MUX_AGENT, BASIC_AGENT):
        with ssmtest.Sim("--agent-version", agent) as sim:
            pp = session(sim, {"portNumber": [str(echo.port)]})
            port = pp.port()
            echo_twice(port)
            status, _ = sim.terminate_session(pp.sid)
            check(status == 200, f"TerminateSession {status}")
            rc = pp.finish()
            sid = pp.sid
            if agent == MUX_AGENT:
                mid = (f"Port {port} opened for sessionId {sid}.\nWaiting for connections...\n"
                       f"\nConnection accepted for session [{sid}]\n")
            else:
                mid = f"Port {port} opened for sessionId {sid}.\nConnection accepted for session {sid}.\n"
            expect(pp, rc, start(sid) + mid + exiting(sid))
    echo.close()


def test_unix_socket_transcripts():
    d = tempfile.mkdtemp(prefix="compat-unix-")
    for agent, waiting in ((MUX_AGENT, "\nWaiting for connections...\n"), (BASIC_AGENT, "\n")):
        path = os.path.join(d, f"s-{agent}.sock")
        with ssmtest.Sim("--agent-version", agent) as sim:
            pp = session(sim, {"portNumber": ["80"], "localConnectionType": ["unix"],
                               "localUnixSocket": [path]})
            pp.wait_for(" opened for sessionId ")
            pp.wait_for(waiting)
            time.sleep(0.2)
            pp.p.send_signal(signal.SIGINT)
            rc = pp.finish()
            sid = pp.sid
            expect(pp, rc, start(sid) + f"Unix socket {path} opened for sessionId {sid}." + waiting +
                   "Terminate signal received, exiting.\n" + exiting(sid))


def test_basic_local_port_in_use_text():
    """Basic mode: the official prints Go's listen error and exits 0. (Mux mode
    hangs in the official plugin; we print the same line there on purpose.)"""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    lp = blocker.getsockname()[1]
    with ssmtest.Sim("--agent-version", BASIC_AGENT) as sim:
        pp = session(sim, {"portNumber": ["80"], "localPortNumber": [str(lp)]})
        rc = pp.finish()
        sid = pp.sid
        expect(pp, rc, start(sid) + "Cannot perform start session: listen tcp 127.0.0.1:"
               f"{lp}: bind: address already in use\n")
    blocker.close()


if __name__ == "__main__":
    ssmtest.main([test_mux_sigint_transcript, test_mux_sigquit_and_sigtstp_transcripts,
                  test_basic_sigint_transcript, test_basic_old_agent_sigint_transcript,
                  test_mux_connect_to_port_error_transcript,
                  test_terminate_api_ends_mux_and_basic_with_exit_text,
                  test_unix_socket_transcripts, test_basic_local_port_in_use_text])
