"""Expired credentials across a reconnect (issue 6): credential_process gives
keys that expire 2 s later; after they expired the websocket is cut, and the
ResumeSession call and the re-signed upgrade must both use freshly fetched
keys. A recording proxy in front of the simulator captures every request head
(it rewrites the StreamUrl in API responses to point back at itself), and the
upgrade signatures are recomputed by the independent Python signer of
test_aws_signing; the simulator's own verifier (--require-sigv4) checks them
all too."""
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time

import ssmtest
from ssmtest import check
from test_aws_signing import sigv4_check

CREDS_SCRIPT = r'''#!/usr/bin/env python3
import datetime, json, os, sys
path = sys.argv[1]
n = int(open(path).read() or "0") + 1 if os.path.exists(path) else 1
open(path, "w").write(str(n))
exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
print(json.dumps({"Version": 1, "AccessKeyId": "AKIDRES%d" % n, "SecretAccessKey": "secret%d" % n,
                  "SessionToken": "tok%d" % n, "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}))
'''


class RecordingProxy:
    """HTTP/websocket proxy to the simulator that records request heads."""

    def __init__(self, sim_port):
        self.sim_port = sim_port
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.heads = []  # (method, target, headers)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_head(sock, buf):
        while b"\r\n\r\n" not in buf:
            d = sock.recv(65536)
            if not d:
                return None, buf
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        return head, rest

    @staticmethod
    def _parse(head):
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.setdefault(k.strip().lower(), v.strip())
        return lines[0], headers

    def _serve(self, c):
        u = socket.create_connection(("127.0.0.1", self.sim_port))
        buf, ubuf = b"", b""
        try:
            while True:
                head, buf = self._read_head(c, buf)
                if head is None:
                    return
                first, headers = self._parse(head)
                method, target, _ = first.split(" ", 2)
                self.heads.append((method, target, headers))
                if method == "GET":  # websocket upgrade: splice both ways
                    u.sendall(head + b"\r\n\r\n" + buf)
                    threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()
                    self._pipe(c, u)
                    return
                n = int(headers.get("content-length", "0"))
                while len(buf) < n:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:n], buf[n:]
                u.sendall(head + b"\r\n\r\n" + body)
                rhead, ubuf = self._read_head(u, ubuf)
                if rhead is None:
                    return
                _, rheaders = self._parse(rhead)
                m = int(rheaders.get("content-length", "0"))
                while len(ubuf) < m:
                    d = u.recv(65536)
                    if not d:
                        return
                    ubuf += d
                rbody, ubuf = ubuf[:m], ubuf[m:]
                rbody = rbody.replace(f"127.0.0.1:{self.sim_port}".encode(),
                                      f"127.0.0.1:{self.port}".encode())
                rhead = re.sub(rb"(?i)content-length: *\d+", b"Content-Length: %d" % len(rbody), rhead)
                c.sendall(rhead + b"\r\n\r\n" + rbody)
        except OSError:
            pass
        finally:
            c.close()
            u.close()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.ls.close()


def akid_of(headers):
    auth = headers.get("authorization", "")
    m = re.search(r"Credential=([^/]+)/", auth)
    return m.group(1) if m else None


def test_expired_credentials_refreshed_for_resume_and_upgrade():
    d = tempfile.mkdtemp(prefix="res-creds-")
    script = os.path.join(d, "creds.py")
    counter = os.path.join(d, "count")
    with open(script, "w") as f:
        f.write(CREDS_SCRIPT)
    os.chmod(script, 0o700)
    cfg = os.path.join(d, "config")
    with open(cfg, "w") as f:
        f.write(f"[profile res]\ncredential_process = {sys.executable} {script} {counter}\n")
    keys = []
    for n in range(1, 9):  # whatever credential_process may hand out
        keys += ["--access-key", f"AKIDRES{n}", "--secret-key", f"secret{n}",
                 "--session-token", f"tok{n}"]
    with ssmtest.Sim("--cut-after-client-msgs", "1", "--require-sigv4", *keys,
                     sign=("AKIDRES8", "secret8", "tok8")) as sim:
        proxy = RecordingProxy(sim.port)
        r = sim.start_session(doc="Sim-Echo")
        r = dict(r, StreamUrl=r["StreamUrl"].replace(f":{sim.port}/", f":{proxy.port}/"))
        argv, env = ssmtest.plugin_invocation(r, sim, profile="res")
        argv[6] = f"http://127.0.0.1:{proxy.port}"
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(k, None)
        env.update({"AWS_CONFIG_FILE": cfg, "HOME": d})
        region = argv[2]
        p = ssmtest.run_pty(argv, env=env)
        p.read_until(b"Sim-Echo ready")
        time.sleep(3)  # the first keys expire
        p.write(b"a")  # cuts the websocket
        sim.wait_record(event="session_resumed", session=r["SessionId"], timeout=15)
        p.write(b"bc\r")
        p.read_until(b"abc", timeout=15)
        p.write(b"~.")
        check(p.wait(10) == 0, "exit 0")
        proxy.close()

        upgrades = [h for h in proxy.heads if h[0] == "GET"]
        resumes = [h for h in proxy.heads if h[2].get("x-amz-target") == "AmazonSSM.ResumeSession"]
        check(len(upgrades) >= 2, f"two upgrades through the proxy: {len(upgrades)}")
        check(resumes, "ResumeSession went through the proxy")
        first, last = upgrades[0], upgrades[-1]
        check(akid_of(first[2]) == "AKIDRES1", f"first upgrade signed by {akid_of(first[2])}")
        fresh = akid_of(last[2])
        check(fresh and fresh != "AKIDRES1", f"the reconnect upgrade used fresh keys: {fresh}")
        n = int(fresh[len("AKIDRES"):])
        sigv4_check(*last, region, fresh, f"secret{n}", f"tok{n}")
        sigv4_check(*first, region, "AKIDRES1", "secret1", "tok1")
        rk = akid_of(resumes[-1][2])
        check(rk and rk != "AKIDRES1", f"ResumeSession signed with fresh keys: {rk}")
        check(resumes[-1][2].get("x-amz-security-token", "").startswith("tok")
              and resumes[-1][2]["x-amz-security-token"] != "tok1", "fresh session token")
        # The simulator's own verifier agrees (and refused nothing).
        v = sim.records(event="sigv4")
        check(v and all(x["ok"] for x in v), f"every signature verified by the sim: {v}")
        ws = [x for x in v if x["kind"] == "ws"]
        check(len(ws) >= 2 and ws[-1]["access_key"] == fresh, f"sim saw the fresh upgrade key: {ws}")


if __name__ == "__main__":
    ssmtest.main([test_expired_credentials_refreshed_for_resume_and_upgrade])
