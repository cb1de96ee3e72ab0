"""agent-sim over TLS: https API and wss data channel with a throwaway CA."""
import ssl
import urllib.parse

import ssmtest
import wsclient
from ssmtest import check


def test_tls_api_and_wss():
    ca = ssmtest.make_test_ca()
    with ssmtest.Sim(tls=ca) as sim:
        r = sim.start_session(doc="Sim-Echo", params={"banner": ["B"]})
        u = urllib.parse.urlsplit(r["StreamUrl"])
        check(u.scheme == "wss" and u.port == sim.port, r["StreamUrl"])
        c = ssmtest.Client(r, cafile=ca["ca_cert"])
        c.open()
        check(c.recv(timeout=5)["payload"] == b"B", "banner over wss")
        c.send_input(ssmtest.PT_OUTPUT, b"secure")
        m = c.recv_until(lambda m: m["type"] == "output_stream_data" and m["payload"] == b"secure")
        check(m["seq"] == 1, m)
        check(sim.wait_record(event="listening")["tls"] is True, "tls recorded")
        # A client that does not trust the CA must fail the handshake.
        try:
            wsclient.WebSocket(r["StreamUrl"], timeout=5, cafile=None)
            raise ssmtest.TestFailure("untrusted certificate accepted")
        except ssl.SSLError:
            pass


if __name__ == "__main__":
    ssmtest.main([test_tls_api_and_wss])
