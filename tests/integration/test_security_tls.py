"""Security review (docs/security.md): TLS checks the server's name, not only
its chain, and sends SNI for names. The test CA's server certificate is for
IP 127.0.0.2 and DNS localhost; the simulator listens on 127.0.0.1."""
import os
import socket
import ssl
import subprocess
import threading
import time

import ssmtest
from ssmtest import check

SECRET_ENV = ("AWS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy",
              "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def invocation(sim, ca, host):
    sim.endpoint = f"https://localhost:{sim.port}/"  # the test's own API calls check the name too
    r = sim.start_session(doc="Sim-Echo")
    r = dict(r, StreamUrl=r["StreamUrl"].replace("127.0.0.1", host, 1))
    argv, env = ssmtest.plugin_invocation(r, sim)
    for k in SECRET_ENV:
        env.pop(k, None)
    env["AWS_CA_BUNDLE"] = ca["ca_cert"]
    env["SSM_PLUGIN_GIVE_UP_SECONDS"] = "3"
    return r, argv, env


def run(argv, env, stdin=b"", timeout=30):
    p = ssmtest.run_pipes(argv, env)
    out, err = p.communicate(stdin, timeout=timeout)
    return p.returncode, out, err


def test_certificate_for_another_address_is_refused():
    ca = ssmtest.make_test_ca(host="127.0.0.2")
    with ssmtest.Sim(tls=ca) as sim:
        r, argv, env = invocation(sim, ca, "127.0.0.1")
        rc, out, err = run(argv, env)
        check(rc == 0, f"exit {rc}")
        last = out.decode(errors="replace").splitlines()[-1]
        check(last.startswith("Cannot perform start session: "), last)
        check("certificate" in last.lower() or "verify" in last.lower(), f"names the cause: {last}")
        check(not sim.records(event="open_data_channel", session=r["SessionId"]), "token sent to the wrong host")


def test_certificate_for_the_dns_name_is_accepted():
    """The control for the test above: same CA and certificate, reached by
    the name it was issued for."""
    ca = ssmtest.make_test_ca(host="127.0.0.2")
    with ssmtest.Sim(tls=ca) as sim:
        r, argv, env = invocation(sim, ca, "localhost")
        rc, out, err = run(argv, env, stdin=b"tls-name-ok\n")
        check(rc == 0 and b"tls-name-ok\n" in out, f"exit {rc}: {out[-300:]!r} {err[-300:]!r}")


class SniRecorder:
    """A TLS listener that records the SNI of each handshake, then hangs up."""

    def __init__(self, ca):
        self.names = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ca["server_cert"], ca["server_key"])
        ctx.sni_callback = lambda sock, name, c: self.names.append(name)
        self.ctx = ctx
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                c.settimeout(5)
                with self.ctx.wrap_socket(c, server_side=True) as t:
                    t.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    def close(self):
        self.ls.close()


def test_sni_names_the_host():
    ca = ssmtest.make_test_ca(host="127.0.0.1")
    srv = SniRecorder(ca)
    with ssmtest.Sim() as sim:
        # Only names: for an IP literal lws sends it as SNI (RFC 6066 forbids; Go omits it). Reported.
        for host, want in (("localhost", "localhost"),):
            srv.names.clear()
            r = sim.start_session(doc="Sim-Echo")
            r = dict(r, StreamUrl=f"wss://{host}:{srv.port}/v1/data-channel/{r['SessionId']}")
            argv, env = ssmtest.plugin_invocation(r, sim)
            for k in SECRET_ENV:
                env.pop(k, None)
            env.update(AWS_CA_BUNDLE=ca["ca_cert"], SSM_PLUGIN_GIVE_UP_SECONDS="2")
            p = ssmtest.run_pipes(argv, env)
            deadline = time.time() + 10
            while not srv.names and time.time() < deadline:
                time.sleep(0.05)
            p.kill()
            p.communicate(timeout=10)
            check(srv.names and srv.names[0] == want, f"{host}: SNI {srv.names}")
    srv.close()


def standalone_start(endpoint, ca):
    """Standalone mode's StartSession (an AWS API call over aws_http)."""
    env = dict(os.environ)
    for k in SECRET_ENV + ("AWS_PROFILE", "SSM_PLUGIN_READY_FILE", "SSM_PLUGIN_READY_FD"):
        env.pop(k, None)
    env.update(AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
               AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", AWS_CA_BUNDLE=ca["ca_cert"],
               AWS_CONFIG_FILE="/nonexistent/config", AWS_SHARED_CREDENTIALS_FILE="/nonexistent/credentials")
    p = subprocess.run([ssmtest.plugin_path(), "start-session", "--target", "i-0123456789abcdef0",
                        "--endpoint-url", endpoint, "--document-name", "Sim-Echo"],
                       env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_api_call_checks_the_name_too():
    """The AWS API client (StartSession here) refuses the wrong address and
    accepts the certificate's DNS name."""
    ca = ssmtest.make_test_ca(host="127.0.0.2")
    with ssmtest.Sim(tls=ca) as sim:
        rc, out, err = standalone_start(f"https://127.0.0.1:{sim.port}", ca)
        text = (out + err).decode(errors="replace")
        check(rc != 0 and "StartSession" in text and "SessionId: sim-" not in text, f"exit {rc}: {text[-400:]}")
        check("certificate verify failed" in text and "mismatch" in text.lower(),
              f"names the cause: {text[-400:]}")
        check(not sim.records(event="api_call"), "the signed request reached the server")
        rc, out, err = standalone_start(f"https://localhost:{sim.port}", ca)
        check(b"Starting session with SessionId: sim-" in out, f"exit {rc}: {out[-300:]!r} {err[-300:]!r}")


if __name__ == "__main__":
    ssmtest.main([test_certificate_for_another_address_is_refused, test_certificate_for_the_dns_name_is_accepted,
                  test_sni_names_the_host, test_api_call_checks_the_name_too])
