"""SigV4 on the websocket upgrade, checked on the wire by an independent
Python implementation (PROTOCOL-NEWEST.md §1): service ssmmessages, region
argv[2], signed headers host;x-amz-date[;x-amz-security-token], empty-payload
hash, no X-Amz-Content-Sha256, the raw '+' in the query canonicalised as %20,
the path encoded once more. Presigned URLs, SSM_PLUGIN_SKIP_CLIENT_CONFIGURE
and missing credentials give an unsigned upgrade; a credential_process
profile named in argv[4] signs with its keys.

The fake endpoint answers every upgrade with 403, so the plugin gives up
after its retries; the first captured request is what is checked."""
import hashlib
import hmac
import json
import os
import socket
import tempfile
import threading
import time
import urllib.parse

import ssmtest
from ssmtest import check

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class UpgradeCatcher:
    """Accepts connections, records each HTTP request head, answers 403."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.stop = False
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            c.settimeout(2)
            data = b""
            try:
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
                lines = head.split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, v = line.split(":", 1)
                    headers.setdefault(k.strip().lower(), v.strip())
                self.requests.append((method, target, headers))
                c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except (OSError, ValueError):
                pass
            c.close()

    def close(self):
        self.stop = True
        self.th.join()
        self.sock.close()


def sigv4_check(method, target, headers, region, akid, secret, token):
    """Recomputes the header-form signature from what arrived."""
    auth = headers.get("authorization", "")
    check(auth.startswith("AWS4-HMAC-SHA256 Credential="), f"Authorization: {auth!r}")
    cred = auth.split("Credential=", 1)[1].split(",", 1)[0]
    got_akid, date, got_region, service, term = cred.split("/")
    check(got_akid == akid, f"access key {got_akid}")
    check(got_region == region and service == "ssmmessages" and term == "aws4_request",
          f"scope {cred}")
    signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0]
    want_signed = "host;x-amz-date" + (";x-amz-security-token" if token else "")
    check(signed == want_signed, f"signed headers {signed!r}")
    check("x-amz-content-sha256" not in headers, "no X-Amz-Content-Sha256 header")
    amz_date = headers["x-amz-date"]
    check(amz_date[:8] == date, "scope date matches X-Amz-Date")
    if token:
        check(headers.get("x-amz-security-token") == token, "session token header")
    else:
        check("x-amz-security-token" not in headers, "no token header")

    path, _, query = target.partition("?")
    curi = urllib.parse.quote(path, safe="/~")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)  # '+' -> ' '
    cq = "&".join(f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}"
                  for k, v in sorted(pairs))
    chdrs = f"host:{headers['host']}\nx-amz-date:{amz_date}\n"
    if token:
        chdrs += f"x-amz-security-token:{token}\n"
    creq = "\n".join([method, curi, cq, chdrs, signed, hashlib.sha256(b"").hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/ssmmessages/aws4_request",
                     hashlib.sha256(creq.encode()).hexdigest()])

    def h(k, m):
        return hmac.new(k, m.encode(), hashlib.sha256).digest()
    k = h(h(h(h(("AWS4" + secret).encode(), date), region), "ssmmessages"), "aws4_request")
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    check(auth.endswith("Signature=" + want), f"signature differs; canonical request was:\n{creq}")
    return creq


def run_plugin(url, extra_env=None, drop_env=(), profile="", region="eu-north-1"):
    resp = {"SessionId": "a@b+c=d-0123456789abcdef0", "TokenValue": "tok", "StreamUrl": url}
    argv, env = ssmtest.plugin_invocation(resp, region=region, profile=profile,
                                          extra_env=extra_env)
    for k in ("AWS_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "http_proxy", "NO_PROXY",
              "no_proxy", "SSM_PLUGIN_SKIP_CLIENT_CONFIGURE", "AWS_PROFILE") + tuple(drop_env):
        env.pop(k, None)
    env.update(extra_env or {})
    for k in drop_env:
        env.pop(k, None)
    p = ssmtest.run_pipes(argv, env)
    try:
        out, err = p.communicate(b"", timeout=30)
    except Exception:
        p.kill()
        raise
    return p.returncode, out, err


def first_request(catcher, timeout=10):
    t0 = time.time()
    while not catcher.requests and time.time() - t0 < timeout:
        time.sleep(0.05)
    check(catcher.requests, "the plugin dialled the stream URL")
    return catcher.requests[0]


def test_signed_upgrade_with_quirks():
    c = UpgradeCatcher()
    try:
        url = (f"ws://127.0.0.1:{c.port}/v1/data-channel/a%40b+c=d,e-0123456789abcdef0"
               "?role=publish_subscribe&cell-number=AAEC+/w==")
        token = "IQoJb3JpZ2luX2VjE+tok/en=="
        run_plugin(url, extra_env={"AWS_SESSION_TOKEN": token})
        method, target, headers = first_request(c)
        check(method == "GET", method)
        check(target == url.split(str(c.port), 1)[1], f"URL sent unchanged: {target}")
        creq = sigv4_check(method, target, headers, "eu-north-1", "AKIDEXAMPLE", SECRET, token)
        check("/v1/data-channel/a%2540b%2Bc%3Dd%2Ce-0123456789abcdef0\n" in creq, creq)
        check("\ncell-number=AAEC%20%2Fw%3D%3D&role=publish_subscribe\n" in creq, creq)
        # Every retry is signed again.
        check(len(c.requests) >= 2 and all("authorization" in r[2] for r in c.requests),
              f"{len(c.requests)} attempts, all signed")
    finally:
        c.close()


def test_presigned_and_skip_are_unsigned():
    c = UpgradeCatcher()
    try:
        url = (f"ws://127.0.0.1:{c.port}/v1/data-channel/s-0123456789abcdef0"
               "?role=publish_subscribe&X-Amz-Signature=abc")
        run_plugin(url)
        _, target, headers = first_request(c)
        check("authorization" not in headers and "x-amz-date" not in headers,
              f"presigned URL dialled unsigned: {headers}")
        check(target.endswith("X-Amz-Signature=abc"), target)
    finally:
        c.close()
    c = UpgradeCatcher()
    try:
        url = f"ws://127.0.0.1:{c.port}/v1/data-channel/s-0123456789abcdef0?role=publish_subscribe"
        run_plugin(url, extra_env={"SSM_PLUGIN_SKIP_CLIENT_CONFIGURE": "true"})
        _, _, headers = first_request(c)
        check("authorization" not in headers, "SSM_PLUGIN_SKIP_CLIENT_CONFIGURE=true: unsigned")
    finally:
        c.close()


def test_no_credentials_still_connects_unsigned():
    c = UpgradeCatcher()
    home = tempfile.mkdtemp()
    try:
        url = f"ws://127.0.0.1:{c.port}/v1/data-channel/s-0123456789abcdef0?role=publish_subscribe"
        rc, out, _ = run_plugin(url, extra_env={"HOME": home, "PATH": "/nonexistent"},
                                drop_env=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                          "AWS_SESSION_TOKEN"))
        _, _, headers = first_request(c)
        check("authorization" not in headers, f"unsigned without credentials: {headers}")
        check(rc == 0, f"exit {rc}")
    finally:
        c.close()


def test_credential_process_profile_from_argv4():
    c = UpgradeCatcher()
    d = tempfile.mkdtemp()
    try:
        script = os.path.join(d, "creds.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho '" + json.dumps({
                "Version": 1, "AccessKeyId": "AKIDPROCESS", "SecretAccessKey": "procsecret",
                "SessionToken": "proctoken", "Expiration": "2099-01-01T00:00:00Z"}) + "'\n")
        os.chmod(script, 0o700)
        cfg = os.path.join(d, "config")
        with open(cfg, "w") as f:
            f.write(f"[profile work]\ncredential_process = {script}\n")
        url = f"ws://127.0.0.1:{c.port}/v1/data-channel/s-0123456789abcdef0?role=publish_subscribe"
        # argv[4] wins over the environment keys ssmtest sets.
        run_plugin(url, profile="work", region="ap-southeast-2",
                   extra_env={"AWS_CONFIG_FILE": cfg, "HOME": d})
        method, target, headers = first_request(c)
        sigv4_check(method, target, headers, "ap-southeast-2", "AKIDPROCESS", "procsecret",
                    "proctoken")
    finally:
        c.close()


if __name__ == "__main__":
    ssmtest.main([test_signed_upgrade_with_quirks, test_presigned_and_skip_are_unsigned,
                  test_no_credentials_still_connects_unsigned,
                  test_credential_process_profile_from_argv4])
