"""SSM_PLUGIN_LISTEN_ADDRESS in drop-in mode (docs/port-forwarding.md):
IPv4 and IPv6 literals and "localhost"; 127.0.0.1 stays the default; a bad
address ends the session with a clear message. Mux and basic mode."""

import re
import signal
import socket
import subprocess

import ssmtest as T
from test_port_mux import PF_DOC, EchoServer, PortPlugin, roundtrip


def port_plugin(sim, params, extra_env, pass_fds=()):
    """A PortPlugin whose plugin gets extra environment (and inherited fds)."""
    resp = sim.start_session(doc=PF_DOC, params=params)
    argv, env = T.plugin_invocation(resp, sim, doc=PF_DOC, extra_env=extra_env)
    for k in ("SSM_PLUGIN_LISTEN_ADDRESS", "SSM_PLUGIN_READY_FILE", "SSM_PLUGIN_READY_FD"):
        if k not in (extra_env or {}):
            env.pop(k, None)
    pp = PortPlugin.__new__(PortPlugin)
    pp.sid = resp["SessionId"]
    pp.p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, pass_fds=pass_fds)
    pp.out = b""
    return pp


def listening_port(pp):
    pp.read_until(b" opened for sessionId ")
    pp.read_until(b".\n")
    return int(re.search(rb"Port (\d+) opened", pp.out).group(1))


def reachable(family, host, port):
    try:
        with socket.socket(family) as c:
            c.settimeout(2)
            c.connect((host, port))
        return True
    except OSError:
        return False


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def forward_via(address, family, host, other=None, agent=None):
    echo = EchoServer()
    args = ("--agent-version", agent) if agent else ()
    with T.Sim(*args) as sim:
        env = {"SSM_PLUGIN_LISTEN_ADDRESS": address} if address is not None else {}
        pp = port_plugin(sim, {"portNumber": [str(echo.port)]}, env)
        port = listening_port(pp)
        with socket.socket(family) as c:
            c.settimeout(10)
            c.connect((host, port))
            roundtrip(c, f"via {address}\n".encode() * 300)
        if other:
            T.check(not reachable(other[0], other[1], port), f"{address}: also on {other[1]}")
        pp.p.send_signal(signal.SIGINT)
        T.check(pp.finish() == 0, f"{address}: exit status")
    echo.close()


def test_default_is_ipv4_loopback_only():
    forward_via(None, socket.AF_INET, "127.0.0.1", other=(socket.AF_INET, "127.0.0.2"))


def test_other_loopback_ipv4_mux_and_basic():
    forward_via("127.0.0.2", socket.AF_INET, "127.0.0.2", other=(socket.AF_INET, "127.0.0.1"))
    forward_via("127.0.0.2", socket.AF_INET, "127.0.0.2", other=(socket.AF_INET, "127.0.0.1"),
                agent="3.0.196.0")


def test_localhost_name():
    forward_via("localhost", socket.AF_INET, "127.0.0.1")


def test_ipv6_loopback():
    if not ipv6_loopback():
        print("SKIP test_ipv6_loopback: no ::1 on this host")
        return
    forward_via("::1", socket.AF_INET6, "::1", other=(socket.AF_INET, "127.0.0.1"))
    forward_via("[::1]", socket.AF_INET6, "::1")


def test_bad_address_is_reported():
    with T.Sim() as sim:
        pp = port_plugin(sim, {"portNumber": ["9"]}, {"SSM_PLUGIN_LISTEN_ADDRESS": "not-an-ip"})
        rc = pp.finish()
        T.check(b"Cannot perform start session: listen tcp: address not-an-ip: not an IP address "
                b"(SSM_PLUGIN_LISTEN_ADDRESS)\n" in pp.out, f"stdout {pp.out!r}")
        T.check(rc == 0, f"exit {rc}")


if __name__ == "__main__":
    T.main([test_default_is_ipv4_loopback_only, test_other_loopback_ipv4_mux_and_basic,
            test_localhost_name, test_ipv6_loopback, test_bad_address_is_reported])
