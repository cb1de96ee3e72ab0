"""Websocket transport: unreachable StreamUrl and TLS failures end with a clear
"Cannot perform start session" within seconds (exit 0); wss works with a test
CA in AWS_CA_BUNDLE and fails without it; HTTP CONNECT proxy with Basic auth,
NO_PROXY, and a refusing proxy (PROTOCOL.md §3, §13.1)."""
import base64
import os
import socket
import threading
import time

import ssmtest
from ssmtest import check


def run_to_end(argv, env, stdin=b"", timeout=30):
    t0 = time.time()
    p = ssmtest.run_pipes(argv, env)
    out, err = p.communicate(stdin, timeout=timeout)
    return p.returncode, out, err, time.time() - t0


def echo_roundtrip(argv, env, word=b"roundtrip-ok"):
    rc, out, err, took = run_to_end(argv, env, stdin=word + b"\n")
    check(rc == 0, f"exit {rc}: {out[-200:]!r} {err[-200:]!r}")
    check(word + b"\n" in out, f"echoed through the channel: {out[-300:]!r}")
    return out


def clean_env(env):
    for k in ("AWS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy",
              "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        env.pop(k, None)
    return env


def test_unreachable_stream_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    resp = {"SessionId": "sess-unreachable", "TokenValue": "tok",
            "StreamUrl": f"ws://127.0.0.1:{port}/v1/data-channel/sess-unreachable?role=publish_subscribe"}
    argv, env = ssmtest.plugin_invocation(resp)
    rc, out, err, took = run_to_end(argv, clean_env(env))
    check(rc == 0, f"exit 0, got {rc}")
    check(took < 12, f"gave up within seconds ({took:.1f}s)")
    lines = out.decode(errors="replace").splitlines()
    check(lines[1] == "Starting session with SessionId: sess-unreachable", lines)
    check(lines[-1].startswith("Cannot perform start session: ") and len(lines[-1]) > 32, lines[-1])
    check(err == b"", f"nothing on stderr: {err!r}")


def test_wss_with_ca_bundle_and_without():
    ca = ssmtest.make_test_ca()
    with ssmtest.Sim(tls=ca) as sim:
        r = sim.start_session(doc="Sim-Echo")
        check(r["StreamUrl"].startswith("wss://"), r["StreamUrl"])
        argv, env = ssmtest.plugin_invocation(r, sim)
        env = clean_env(env)
        env["AWS_CA_BUNDLE"] = ca["ca_cert"]
        echo_roundtrip(argv, env)
        # SSL_CERT_FILE is the fallback when AWS_CA_BUNDLE is unset.
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        env = clean_env(env)
        env["SSL_CERT_FILE"] = ca["ca_cert"]
        echo_roundtrip(argv, env)
        # Without the CA: verification fails, a clear error, quickly, exit 0.
        r = sim.start_session(doc="Sim-Echo")
        argv, env = ssmtest.plugin_invocation(r, sim)
        rc, out, err, took = run_to_end(argv, clean_env(env))
        check(rc == 0, f"exit {rc}")
        check(took < 12, f"failed within seconds ({took:.1f}s)")
        last = out.decode(errors="replace").splitlines()[-1]
        check(last.startswith("Cannot perform start session: "), last)
        check("certificate" in last.lower() or "verify" in last.lower(), f"names the cause: {last}")
        check(not sim.records(event="open_data_channel", session=r["SessionId"]), "token never sent")


class ConnectProxy:
    """A tiny HTTP CONNECT proxy on loopback that requires Basic auth and
    tunnels every CONNECT to 127.0.0.1 (so fake host names work)."""

    def __init__(self, user="u@x", password="p:w", refuse=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.refuse = refuse
        self.requests = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(4096)
            if not d:
                c.close()
                return
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        self.requests.append((lines[0], hdrs))
        method, target, _ = lines[0].split(" ", 2)
        auth = hdrs.get("proxy-authorization", "").split(" ", 1)
        auth_ok = len(auth) == 2 and auth[0].lower() == "basic" and "Basic " + auth[1] == self.want
        if self.refuse or method != "CONNECT" or not auth_ok:
            c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            c.close()
            return
        port = int(target.rsplit(":", 1)[1])
        up = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            up.sendall(rest)

        def pipe(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(c, up), daemon=True).start()
        pipe(up, c)

    def close(self):
        self.sock.close()


def via_fake_host(r, port):
    """The same session under a host name only the proxy can resolve."""
    r = dict(r)
    r["StreamUrl"] = r["StreamUrl"].replace(f"127.0.0.1:{port}", f"sim.proxied.test:{port}")
    return r


def test_http_connect_proxy_with_basic_auth():
    proxy = ConnectProxy()
    try:
        with ssmtest.Sim() as sim:
            r = via_fake_host(sim.start_session(doc="Sim-Echo"), sim.port)
            argv, env = ssmtest.plugin_invocation(r, sim)
            env = clean_env(env)
            env["HTTP_PROXY"] = f"http://u%40x:p%3Aw@127.0.0.1:{proxy.port}"  # ws:// uses HTTP_PROXY
            echo_roundtrip(argv, env)
            line, hdrs = proxy.requests[0]
            check(line == f"CONNECT sim.proxied.test:{sim.port} HTTP/1.1", line)
            # NO_PROXY exempts the host: direct dial, which cannot resolve it.
            r = via_fake_host(sim.start_session(doc="Sim-Echo"), sim.port)
            argv, env = ssmtest.plugin_invocation(r, sim)
            env = clean_env(env)
            env["HTTP_PROXY"] = f"http://u%40x:p%3Aw@127.0.0.1:{proxy.port}"
            env["NO_PROXY"] = "example.com,.proxied.test"
            n = len(proxy.requests)
            rc, out, err, took = run_to_end(argv, env)
            check(rc == 0 and out.splitlines()[-1].startswith(b"Cannot perform start session: "), out[-200:])
            check(len(proxy.requests) == n, "NO_PROXY host bypassed the proxy")
            # Loopback is never proxied.
            r = sim.start_session(doc="Sim-Echo")
            argv, env = ssmtest.plugin_invocation(r, sim)
            env = clean_env(env)
            env["HTTP_PROXY"] = f"http://127.0.0.1:{proxy.port}"
            echo_roundtrip(argv, env)
            check(len(proxy.requests) == n, "loopback went direct")
    finally:
        proxy.close()


def make_ca_for_name(name):
    """Test CA + server cert for a DNS name (ssmtest's helper does IPs)."""
    import shutil
    import subprocess
    import tempfile
    d = tempfile.mkdtemp(prefix="ssm-ca-name-")
    ossl = shutil.which("openssl")

    def run(*a):
        subprocess.run([ossl, *a], cwd=d, check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=proxy test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={name}")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write(f"subjectAltName=DNS:{name},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca_cert": os.path.join(d, "ca.pem"), "server_cert": os.path.join(d, "server.pem"),
            "server_key": os.path.join(d, "server.key")}


def test_wss_through_https_proxy():
    """The real-world shape: wss:// via HTTPS_PROXY (CONNECT, then TLS to the
    real host name through the tunnel, verified against the CA bundle)."""
    name = "sim.proxied.test"
    ca = make_ca_for_name(name)
    proxy = ConnectProxy(user="user", password="secret")
    try:
        with ssmtest.Sim(tls=ca) as sim:
            r = via_fake_host(sim.start_session(doc="Sim-Echo"), sim.port)
            check(r["StreamUrl"].startswith("wss://" + name), r["StreamUrl"])
            argv, env = ssmtest.plugin_invocation(r, sim)
            env = clean_env(env)
            env["AWS_CA_BUNDLE"] = ca["ca_cert"]
            env["HTTP_PROXY"] = "http://127.0.0.1:1"  # must not be used for wss
            env["HTTPS_PROXY"] = f"http://user:secret@127.0.0.1:{proxy.port}"
            echo_roundtrip(argv, env)
            check(proxy.requests and proxy.requests[0][0] == f"CONNECT {name}:{sim.port} HTTP/1.1",
                  proxy.requests)
    finally:
        proxy.close()


def test_proxy_refusal_is_a_clear_error():
    proxy = ConnectProxy(refuse=True)
    try:
        with ssmtest.Sim() as sim:
            r = via_fake_host(sim.start_session(doc="Sim-Echo"), sim.port)
            argv, env = ssmtest.plugin_invocation(r, sim)
            env = clean_env(env)
            env["HTTP_PROXY"] = f"127.0.0.1:{proxy.port}"  # no scheme: http
            rc, out, err, took = run_to_end(argv, env)
            check(rc == 0, f"exit {rc}")
            check(took < 12, f"gave up within seconds ({took:.1f}s)")
            check(out.splitlines()[-1].startswith(b"Cannot perform start session: "), out[-200:])
            check(len(proxy.requests) >= 1, "the proxy was asked")
    finally:
        proxy.close()


if __name__ == "__main__":
    ssmtest.main([test_unreachable_stream_url, test_wss_with_ca_bundle_and_without,
                  test_http_connect_proxy_with_basic_auth, test_wss_through_https_proxy,
                  test_proxy_refusal_is_a_clear_error])
