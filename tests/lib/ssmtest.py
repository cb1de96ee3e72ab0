"""Helpers for integration tests: the agent simulator, the fake SSM API, a
scripted data-channel client, the plugin's argv/env, pty/pipe runners and a
throwaway TLS CA. Stdlib only; every wait has a timeout."""

import atexit
import hashlib
import json
import os
import pty
import select
import shutil
import signal
import socket
import struct
import threading
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import wsclient

DEFAULT_TARGET = "i-0123456789abcdef0"
REGION = "us-east-1"

PT_OUTPUT, PT_ERROR, PT_SIZE, PT_PARAMETER = 1, 2, 3, 4
PT_HS_REQUEST, PT_HS_RESPONSE, PT_HS_COMPLETE = 5, 6, 7
PT_FLAG, PT_STDERR, PT_EXIT_CODE = 10, 11, 12


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def env_path(name):
    p = os.environ.get(name)
    if not p or not os.path.exists(p):
        raise TestFailure(f"{name} is not set or does not exist: {p!r}")
    return p


# ---- ClientMessage codec (independent of the C codec) -----------------------

HEADER_LENGTH = 116


def encode_msg(mtype, seq, ptype, payload=b"", flags=0, msg_id=None, created_ms=None, schema=1):
    mid = msg_id or uuid.uuid4()
    b = mid.bytes
    if created_ms is None:
        created_ms = int(time.time() * 1000)
    return (struct.pack(">I", HEADER_LENGTH) + mtype.encode().ljust(32, b" ")
            + struct.pack(">IQqQ", schema, created_ms, seq, flags)
            + b[8:] + b[:8] + hashlib.sha256(payload).digest()
            + struct.pack(">II", ptype, len(payload)) + payload)


def decode_msg(data):
    """Returns a dict, or raises ValueError for frames a client must drop."""
    if len(data) < 120:
        raise ValueError("short")
    hl = struct.unpack(">I", data[:4])[0]
    if hl < HEADER_LENGTH or hl + 4 > len(data):
        raise ValueError("header length")
    mtype = data[4:36].strip(b"\x00").strip().decode("ascii", "replace")
    schema, created, seq, flags = struct.unpack(">IQqQ", data[36:64])
    mid = uuid.UUID(bytes=data[72:80] + data[64:72])
    digest = data[80:112]
    ptype, plen = struct.unpack(">II", data[112:120])
    payload = data[hl + 4:]
    m = {"type": mtype, "schema": schema, "created": created, "seq": seq, "flags": flags,
         "id": mid, "payload_type": ptype, "payload_length": plen, "payload": payload,
         "digest_ok": hashlib.sha256(payload).digest() == digest}
    if mtype not in ("start_publication", "pause_publication"):
        if not mtype or created == 0 or (plen != 0 and not m["digest_ok"]):
            raise ValueError("invalid")
    return m


def ack_body(m):
    return json.dumps({"AcknowledgedMessageType": m["type"], "AcknowledgedMessageId": str(m["id"]),
                       "AcknowledgedMessageSequenceNumber": m["seq"], "IsSequentialMessage": True},
                      separators=(",", ":")).encode()


def ack_for(m):
    return encode_msg("acknowledge", 0, 0, ack_body(m), flags=3)


# ---- the simulator ----------------------------------------------------------

_live = []


def _cleanup():
    for p in list(_live):
        try:
            p.kill()
        except OSError:
            pass


atexit.register(_cleanup)


class Sim:
    """Runs agent-sim; use as a context manager (killed on exit)."""

    def __init__(self, *args, tls=None, timeout=10.0, sign=None):
        self.sign = sign
        self.dir = tempfile.mkdtemp(prefix="agent-sim-")
        self.record_path = os.path.join(self.dir, "record.jsonl")
        argv = [env_path("SSM_AGENT_SIM"), "--port", "0", "--record", self.record_path]
        self.tls = tls
        if tls:
            argv += ["--tls-cert", tls["server_cert"], "--tls-key", tls["server_key"]]
        argv += [str(a) for a in args]
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        # stderr goes to a file: a pipe nobody drains could block the simulator.
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        _live.append(self.proc)
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else b""
        if not line:
            self.stop()
            raise TestFailure(f"agent-sim did not print its port: {self.stderr()!r}")
        self.port = json.loads(line)["port"]
        scheme = "https" if tls else "http"
        self.endpoint = f"{scheme}://127.0.0.1:{self.port}/"

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        rc = self.stop()
        # A clean SIGTERM exit is part of the contract; sanitizer reports fail too.
        if exc_type is None:
            err = self.stderr()
            check(rc == 0, f"agent-sim exited with {rc}: {err[-2000:]!r}")
            check(b"Sanitizer" not in err and b"runtime error" not in err, f"agent-sim: {err[-3000:]!r}")
        return False

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def stop(self, timeout=5.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc in _live:
            _live.remove(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    # -- fake SSM API --
    def api(self, operation, body, headers=None, raw_target=None):
        """POSTs an AWS JSON-1.1 request; returns (status, parsed body).
        Signed with self.sign = (access_key, secret[, token]) when set."""
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        h = {"Content-Type": "application/x-amz-json-1.1",
             "X-Amz-Target": raw_target or f"AmazonSSM.{operation}",
             "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ssm/aws4_request, "
                              "SignedHeaders=host;x-amz-date;x-amz-target, Signature=00"}
        if self.sign and headers is None:
            h = sigv4_headers(self.endpoint, data, h["X-Amz-Target"], *self.sign,
                              service="kms" if h["X-Amz-Target"].startswith("TrentService.") else "ssm")
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}  # None removes a header
        req = urllib.request.Request(self.endpoint, data=data, headers=h, method="POST")
        ctx = None
        if self.tls:
            import ssl
            ctx = ssl.create_default_context(cafile=self.tls["ca_cert"])
        try:
            with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def start_session(self, doc=None, params=None, target=DEFAULT_TARGET, reason=None):
        body = {"Target": target}
        if doc is not None:
            body["DocumentName"] = doc
        if params is not None:
            body["Parameters"] = params
        if reason is not None:
            body["Reason"] = reason
        status, resp = self.api("StartSession", body)
        check(status == 200, f"StartSession failed: {status} {resp}")
        return resp

    def resume_session(self, sid):
        return self.api("ResumeSession", {"SessionId": sid})

    def terminate_session(self, sid):
        return self.api("TerminateSession", {"SessionId": sid})

    # -- record --
    def records(self, event=None, session=None):
        out = []
        try:
            with open(self.record_path) as f:
                for line in f:
                    if not line.endswith("\n"):
                        break  # being written
                    r = json.loads(line)
                    if event and r.get("event") != event:
                        continue
                    if session and r.get("session") != session:
                        continue
                    out.append(r)
        except FileNotFoundError:
            pass
        return out

    def wait_record(self, pred=None, event=None, session=None, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for r in self.records(event, session):
                if pred is None or pred(r):
                    return r
            time.sleep(0.05)
        raise TestFailure(f"no record event={event} matching within {timeout}s")


# ---- scripted data-channel client -------------------------------------------

class Client:
    """A hand-driven data-channel client on top of wsclient."""

    def __init__(self, resp, cafile=None, timeout=10.0, client_version="1.2.896.0"):
        self.resp = resp
        self.ws = wsclient.WebSocket(resp["StreamUrl"], timeout=timeout, cafile=cafile)
        self.client_id = str(uuid.uuid4())
        self.client_version = client_version
        self.seq = 0
        self.received = []   # every decoded message, in arrival order
        self.invalid = 0     # frames a client must drop

    def open(self, token=None):
        odc = {"MessageSchemaVersion": "1.0", "RequestId": str(uuid.uuid4()),
               "TokenValue": self.resp["TokenValue"] if token is None else token,
               "ClientId": self.client_id, "ClientVersion": self.client_version}
        self.ws.send_text(json.dumps(odc, separators=(",", ":")))

    def send_input(self, ptype, payload, seq=None, msg_id=None):
        """Sends input_stream_data; returns the encoded bytes."""
        if seq is None:
            seq = self.seq
            self.seq += 1
        data = encode_msg("input_stream_data", seq, ptype, payload, msg_id=msg_id)
        self.ws.send_binary(data)
        return data

    def ack(self, m):
        self.ws.send_binary(ack_for(m))

    def recv(self, timeout=10.0):
        """Next valid message (dict); invalid frames are counted and skipped."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise socket.timeout("no message")
            op, data = self.ws.recv(timeout=left)
            try:
                m = decode_msg(data)
            except ValueError:
                self.invalid += 1
                continue
            self.received.append(m)
            return m

    def recv_until(self, pred, timeout=10.0, auto_ack=True):
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TestFailure("timed out waiting for a message")
            m = self.recv(timeout=left)
            if auto_ack and m["type"] == "output_stream_data":
                self.ack(m)
            if pred(m):
                return m

    def close(self):
        self.ws.close()


class Stream:
    """Reassembles agent output in sequence order (with acks), like a client."""

    def __init__(self, client):
        self.c = client
        self.expected = 0
        self.pending = {}
        self.data = {PT_OUTPUT: bytearray(), PT_STDERR: bytearray(), PT_EXIT_CODE: bytearray()}
        self.messages = []
        self.closed = None

    def pump(self, until, timeout=10.0):
        deadline = time.time() + timeout
        while not until(self):
            left = deadline - time.time()
            if left <= 0:
                raise TestFailure(f"stream timeout; have {bytes(self.data[PT_OUTPUT])[-200:]!r}")
            try:
                m = self.c.recv(timeout=left)
            except wsclient.ConnectionClosed:
                if until(self):
                    return
                raise
            if m["type"] == "channel_closed":
                self.closed = json.loads(m["payload"])
                continue
            if m["type"] != "output_stream_data":
                continue
            self.c.ack(m)
            if m["seq"] >= self.expected:
                self.pending[m["seq"]] = m
            while self.expected in self.pending:
                x = self.pending.pop(self.expected)
                self.messages.append(x)
                if x["payload_type"] in self.data:
                    self.data[x["payload_type"]] += x["payload"]
                self.expected += 1


# ---- plugin invocation ------------------------------------------------------

def plugin_path():
    return env_path("SSM_PLUGIN")


def plugin_invocation(resp, sim=None, mode="env", target=DEFAULT_TARGET, profile="", region=REGION,
                      doc=None, extra_env=None):
    """argv and env for the plugin, in either hand-off form (§1.1, §1.2):
    mode "argv": JSON in argv[1]; mode "env": AWS_SSM_START_SESSION_RESPONSE."""
    resp_json = json.dumps({"SessionId": resp["SessionId"], "TokenValue": resp["TokenValue"],
                            "StreamUrl": resp["StreamUrl"]})
    req = {"Target": target}
    if doc:
        req["DocumentName"] = doc
    endpoint = sim.endpoint.rstrip("/") if sim else f"https://ssm.{region}.amazonaws.com"
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "AWS_REGION": region, "AWS_EC2_METADATA_DISABLED": "true"})
    if sim and sim.tls:
        env["AWS_CA_BUNDLE"] = sim.tls["ca_cert"]
        env["SSL_CERT_FILE"] = sim.tls["ca_cert"]
    env.update(extra_env or {})
    if mode == "env":
        env["AWS_SSM_START_SESSION_RESPONSE"] = resp_json
        first = "AWS_SSM_START_SESSION_RESPONSE"
    elif mode == "argv":
        first = resp_json
    else:
        raise ValueError(mode)
    argv = [plugin_path(), first, region, "StartSession", profile, json.dumps(req), endpoint]
    return argv, env


class PtyProcess:
    """A child on a pseudo-terminal: read_until/write/wait with timeouts."""

    def __init__(self, argv, env=None, rows=30, cols=100):
        import fcntl
        import termios
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(argv[0], argv, env or os.environ)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.out = bytearray()
        self.status = None
        _live.append(self)

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(5)

    def write(self, data, timeout=10.0):
        """Writes all of data (a pty takes only what fits its buffer per write)."""
        view = memoryview(bytes(data))
        deadline = time.time() + timeout
        while view:
            _, w, _ = select.select([], [self.fd], [], max(0.0, deadline - time.time()))
            if not w:
                # The child may be blocked writing to us: drain its output.
                if time.time() >= deadline:
                    raise TestFailure(f"pty write stalled with {len(view)} bytes left")
                self._read_some(0)
                continue
            n = os.write(self.fd, view)
            view = view[n:]
            if view:
                self._read_some(0)

    def resize(self, rows, cols):
        import fcntl
        import termios
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _read_some(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            return None
        self.out += data
        return True

    def read_until(self, needle, timeout=10.0):
        deadline = time.time() + timeout
        while needle not in self.out:
            left = deadline - time.time()
            if left <= 0 or self._read_some(left) is None:
                raise TestFailure(f"did not see {needle!r}; output so far: {bytes(self.out)[-500:]!r}")
        return bytes(self.out)

    def wait(self, timeout=10.0):
        deadline = time.time() + timeout
        while self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                break
            if time.time() > deadline:
                raise TestFailure("process did not exit")
            self._read_some(0.05)
        while self._read_some(0.05):
            pass
        if self in _live:
            _live.remove(self)
        try:
            os.close(self.fd)
        except OSError:
            pass
        return self.status


def run_pty(argv, env=None, rows=30, cols=100):
    return PtyProcess(argv, env, rows, cols)


def run_pipes(argv, env=None):
    """subprocess.Popen with stdin/stdout/stderr pipes (killed at exit)."""
    p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    _live.append(p)
    return p


# ---- TLS test CA ------------------------------------------------------------

def make_test_ca(directory=None, host="127.0.0.1"):
    """Self-signed CA + server cert for host (IP SAN and localhost), via the
    openssl CLI. Returns {"ca_cert","server_cert","server_key","dir"}."""
    d = directory or tempfile.mkdtemp(prefix="ssm-ca-")
    openssl = shutil.which("openssl")
    check(openssl is not None, "openssl CLI not found")

    def run(*a):
        subprocess.run([openssl, *a], cwd=d, check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=agent-sim test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", f"/CN={host}")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write(f"subjectAltName=IP:{host},DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca_cert": os.path.join(d, "ca.pem"), "server_cert": os.path.join(d, "server.pem"),
            "server_key": os.path.join(d, "server.key"), "dir": d}


# ---- tiny test runner -------------------------------------------------------

def main(tests):
    """Runs test functions in order with a per-test report; exit status 1 on
    any failure. Usage: ssmtest.main([test_a, test_b])."""
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TestFailure("test timed out")))
    failed = 0
    for t in tests:
        signal.alarm(120)
        try:
            t()
            print(f"PASS {t.__name__}")
        except Exception as e:  # report and continue with the next test
            failed += 1
            print(f"FAIL {t.__name__}: {type(e).__name__}: {e}")
        finally:
            signal.alarm(0)
        sys.stdout.flush()
    _cleanup()
    sys.exit(1 if failed else 0)


# ---- local destinations and process memory (tests and bench/) ---------------

class EchoServer:
    """Threaded TCP echo server on 127.0.0.1 (the forwarding destination)."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(256)
        self.port = self.ls.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        try:
            while True:
                d = c.recv(262144)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.ls.close()


class Piped:
    """The plugin on pipes; reader threads collect stdout and stderr."""

    def __init__(self, argv, env):
        self.p = run_pipes(argv, env)
        self.out = bytearray()
        self.err = bytearray()
        self.threads = [threading.Thread(target=self._read, args=(f, b), daemon=True)
                        for f, b in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(f, buf):
        while True:
            b = f.read1(65536)
            if not b:
                return
            buf.extend(b)

    def wait_for(self, needle, timeout=10.0):
        needle = needle.encode() if isinstance(needle, str) else needle
        deadline = time.time() + timeout
        while needle not in self.out:
            check(time.time() < deadline, f"did not see {needle!r}; stdout {bytes(self.out)!r}")
            time.sleep(0.02)

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def finish(self, timeout=20.0):
        """Waits for the exit; stderr must have stayed empty. Returns the status."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise TestFailure(f"plugin did not exit; stdout {bytes(self.out)!r}")
        for t in self.threads:
            t.join(5)
        check(bytes(self.err) == b"", f"stderr must stay empty: {bytes(self.err)!r}")
        return rc


def proc_tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def smaps_rollup(pid):
    """/proc/PID/smaps_rollup as {field: kB}, plus "comm"."""
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                vals[parts[0].rstrip(":")] = int(parts[1])
    with open(f"/proc/{pid}/comm") as f:
        vals["comm"] = f.read().strip()
    return vals


# ---- SigV4 (the tests' own signer, for API calls the tests make) -------------

def sigv4_headers(url, body, target, access_key, secret, token=None, region=REGION, service="ssm",
                  amz_date=None):
    """Headers of a header-form SigV4 POST of body to url (no query)."""
    import hmac
    u = urllib.parse.urlsplit(url)
    amz_date = amz_date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    h = {"content-type": "application/x-amz-json-1.1", "host": u.netloc, "x-amz-date": amz_date,
         "x-amz-target": target}
    if token:
        h["x-amz-security-token"] = token
    names = sorted(h)
    canon = "\n".join(["POST", u.path or "/", "", "".join(f"{n}:{h[n]}\n" for n in names), ";".join(names),
                       hashlib.sha256(body).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canon.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, "
                          f"Signature={sig}")
    return {k2: v for k2, v in h.items() if k2 != "host"}


def signed_api(sim, operation, body, access_key, secret, token=None, service="ssm", target=None, **kw):
    data = json.dumps(body).encode()
    target = target or f"AmazonSSM.{operation}"
    return sim.api(operation, data, headers=sigv4_headers(sim.endpoint, data, target, access_key, secret, token,
                                                          service=service, **kw), raw_target=target)


def plugin_echo_session(sim, env_update=None, drop_env=(), timeout=15):
    """Runs the plugin on a Sim-Echo session (pty) with the given environment
    changes; returns (connected, exit status, output). connected means the
    echo round trip worked (then the session is terminated)."""
    r = sim.start_session(doc="Sim-Echo")
    argv, env = plugin_invocation(r, sim, mode="env", extra_env=env_update)
    for k in drop_env:
        if k not in (env_update or {}):
            env.pop(k, None)
    env.setdefault("SSM_PLUGIN_GIVE_UP_SECONDS", "3")
    p = run_pty(argv, env)
    connected = False
    try:
        p.read_until(b"Sim-Echo ready", timeout=timeout)
        p.write(b"sigv4-ping")
        p.read_until(b"sigv4-ping", timeout=timeout)
        connected = True
        sim.terminate_session(r["SessionId"])
    except TestFailure:
        pass
    try:
        status = p.wait(timeout)
    except TestFailure:
        p.kill()
        status = None
    return connected, status, bytes(p.out)


# ---- credential-provider scenarios ------------------------------------------

CRED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
            "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "AWS_EC2_METADATA_DISABLED", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


class CredsHome:
    """A throw-away HOME with ~/.aws files, and an environment with no
    ambient credentials: only what a test puts there can sign."""

    def __init__(self, sim):
        self.home = tempfile.mkdtemp(prefix="creds-home-")
        self.aws = os.path.join(self.home, ".aws")
        os.makedirs(self.aws)
        base = sim.endpoint.rstrip("/")
        self.env = {"HOME": self.home, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_ENDPOINT_URL_STS": base, "AWS_ENDPOINT_URL_SSO": base, "AWS_ENDPOINT_URL_SSO_OIDC": base,
                    # no `aws` CLI fallback (the real one would be slow and could find other
                    # credentials) unless a test provides one; /bin/sh is run by absolute path
                    "PATH": os.path.join(self.home, "no-bin")}

    def write(self, rel, text, mode=0o600):
        path = os.path.join(self.home, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def run(self, sim, **kw):
        return plugin_echo_session(sim, self.env, drop_env=[k for k in CRED_ENV if k not in self.env], **kw)

    def cleanup(self):
        shutil.rmtree(self.home, ignore_errors=True)


def ws_sigv4(sim):
    """The sigv4 records of websocket upgrades."""
    return [r for r in sim.records(event="sigv4") if r["kind"] == "ws"]
