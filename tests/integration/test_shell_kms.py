"""Against a scripted agent (a minimal websocket server below): a KMS-
encrypted shell session end to end (PROTOCOL.md §9) and handshake edge cases.
The agent asks for KMSEncryption with a RandomChallenge, a fake KMS endpoint
(AWS_ENDPOINT_URL_KMS) hands out the data key, then the agent checks the
HandshakeResponse, runs the challenge, and exchanges AES-256-GCM sealed
Output both ways. AES-GCM comes from the system libcrypto via ctypes (the
stdlib has no AES); this module is stdlib-only otherwise."""
import base64
import ctypes
import hashlib
import http.server
import json
import os
import signal
import socket
import struct
import threading
import time

import ssmtest
from ssmtest import check

# ---- AES-256-GCM through libcrypto ------------------------------------------

_lib = ctypes.CDLL("libcrypto.so.3")
_lib.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
_lib.EVP_aes_256_gcm.restype = ctypes.c_void_p
for _f in ("EVP_EncryptInit_ex", "EVP_DecryptInit_ex"):
    getattr(_lib, _f).argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_char_p] * 2
for _f in ("EVP_EncryptUpdate", "EVP_DecryptUpdate"):
    getattr(_lib, _f).argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                  ctypes.c_char_p, ctypes.c_int]
for _f in ("EVP_EncryptFinal_ex", "EVP_DecryptFinal_ex"):
    getattr(_lib, _f).argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
_lib.EVP_CIPHER_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
_lib.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]


def seal(key, pt):
    nonce = os.urandom(12)
    ctx = _lib.EVP_CIPHER_CTX_new()
    _lib.EVP_EncryptInit_ex(ctx, _lib.EVP_aes_256_gcm(), None, key, nonce)
    out = ctypes.create_string_buffer(len(pt) + 32)
    n = ctypes.c_int(0)
    _lib.EVP_EncryptUpdate(ctx, out, ctypes.byref(n), pt, len(pt))
    body = out.raw[:n.value]
    _lib.EVP_EncryptFinal_ex(ctx, out, ctypes.byref(n))
    tag = ctypes.create_string_buffer(16)
    _lib.EVP_CIPHER_CTX_ctrl(ctx, 0x10, 16, tag)  # EVP_CTRL_GCM_GET_TAG
    _lib.EVP_CIPHER_CTX_free(ctx)
    return nonce + body + tag.raw


def open_(key, blob):
    nonce, ct, tag = blob[:12], blob[12:-16], blob[-16:]
    ctx = _lib.EVP_CIPHER_CTX_new()
    _lib.EVP_DecryptInit_ex(ctx, _lib.EVP_aes_256_gcm(), None, key, nonce)
    out = ctypes.create_string_buffer(len(ct) + 32)
    n = ctypes.c_int(0)
    _lib.EVP_DecryptUpdate(ctx, out, ctypes.byref(n), ct, len(ct))
    pt = out.raw[:n.value]
    tagbuf = ctypes.create_string_buffer(tag, 16)
    _lib.EVP_CIPHER_CTX_ctrl(ctx, 0x11, 16, tagbuf)  # EVP_CTRL_GCM_SET_TAG
    ok = _lib.EVP_DecryptFinal_ex(ctx, out, ctypes.byref(n))
    _lib.EVP_CIPHER_CTX_free(ctx)
    check(ok == 1, "GCM tag verifies")
    return pt


# ---- fake KMS -----------------------------------------------------------------

class FakeKms:
    def __init__(self):
        self.key = os.urandom(64)
        self.requests = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests.append((self.headers.get("X-Amz-Target"), json.loads(body)))
                resp = json.dumps({"CiphertextBlob": base64.b64encode(b"wrapped-data-key").decode(),
                                   "KeyId": "arn:aws:kms:us-east-1:111122223333:key/test",
                                   "Plaintext": base64.b64encode(outer.key).decode()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(resp)))
                self.end_headers()
                self.wfile.write(resp)

            def log_message(self, *a):
                pass

        self.srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


# ---- a scripted agent behind a minimal websocket server ------------------------

class Agent:
    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        self.sock = None
        self.buf = b""
        self.seq = 0
        self.pings = []  # payloads of pings from the plugin
        self.pongs = []  # payloads of pongs from the plugin

    def accept(self, timeout=10):
        self.lsock.settimeout(timeout)
        self.sock, _ = self.lsock.accept()
        self.sock.settimeout(timeout)
        req = b""
        while b"\r\n\r\n" not in req:
            req += self.sock.recv(4096)
        key = [l.split(b":", 1)[1].strip() for l in req.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:")][0]
        acc = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        self.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")

    def _need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise ssmtest.TestFailure("plugin closed the websocket")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        while True:
            b0, b1 = self._need(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._need(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._need(8))[0]
            mask = self._need(4) if b1 & 0x80 else b"\0\0\0\0"
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(self._need(n)))
            op = b0 & 0x0F
            if op == 9:
                self.pings.append(data)
                self.send_frame(10, data)
                continue
            if op == 10:
                self.pongs.append(data)
                continue
            if op in (1, 2):
                return op, data

    def send_frame(self, op, data):
        n = len(data)
        hdr = bytes([0x80 | op]) + (bytes([n]) if n < 126 else
                                    bytes([126]) + struct.pack(">H", n) if n < 65536 else
                                    bytes([127]) + struct.pack(">Q", n))
        self.sock.sendall(hdr + data)

    def send(self, ptype, payload):
        self.send_frame(2, ssmtest.encode_msg("output_stream_data", self.seq, ptype, payload,
                                              flags=1 if self.seq == 0 else 0))
        self.seq += 1

    def next_input(self, timeout=10):
        """Next input_stream_data from the plugin (acked); acks are skipped."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            op, data = self.recv_frame()
            m = ssmtest.decode_msg(data)
            if m["type"] == "input_stream_data":
                self.send_frame(2, ssmtest.ack_for(m))
                return m
        raise ssmtest.TestFailure("no input from the plugin")


def test_kms_handshake_challenge_and_sealed_output():
    kms = FakeKms()
    agent = Agent()
    challenge = base64.b64encode(os.urandom(16)).decode()
    sid = "kms-session-1"
    resp = {"SessionId": sid, "TokenValue": "tok-kms",
            "StreamUrl": f"ws://127.0.0.1:{agent.port}/v1/data-channel/{sid}?role=publish_subscribe"}
    argv, env = ssmtest.plugin_invocation(resp, target="i-0kms")
    env["AWS_ENDPOINT_URL_KMS"] = f"http://127.0.0.1:{kms.port}"
    p = ssmtest.run_pty(argv, env=env)
    agent.accept()
    op, odc = agent.recv_frame()
    check(op == 1 and json.loads(odc)["TokenValue"] == "tok-kms", odc)
    agent.send(ssmtest.PT_HS_REQUEST, json.dumps({
        "AgentVersion": "3.3.1142.0",
        "RequestedClientActions": [
            {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Standard_Stream", "Properties": None}},
            {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "alias/test", "Challenge": challenge}},
        ]}).encode())
    m = agent.next_input()
    check(m["payload_type"] == ssmtest.PT_HS_RESPONSE, m)
    hs = json.loads(m["payload"])
    kms_res = hs["ProcessedClientActions"][1]
    check(kms_res["ActionStatus"] == 1, hs)
    check(kms_res["ActionResult"]["KMSCipherTextKey"] == base64.b64encode(b"wrapped-data-key").decode(), hs)
    check(kms_res["ActionResult"].get("ChallengeAcknowledgement") is True, hs)
    target, body = kms.requests[0]
    check(target == "TrentService.GenerateDataKey" and body["NumberOfBytes"] == 64, body)
    check(body["EncryptionContext"] == {"aws:ssm:SessionId": sid, "aws:ssm:TargetId": "i-0kms",
                                        "aws:ssm:RandomChallenge": challenge}, body)
    agent_key, client_key = kms.key[:32], kms.key[32:]
    secret = os.urandom(64)
    agent.send(8, json.dumps({"Challenge": base64.b64encode(seal(agent_key, secret)).decode()}).encode())
    m = agent.next_input()
    check(m["payload_type"] == 9, m)
    check(open_(client_key, base64.b64decode(json.loads(m["payload"])["Challenge"])) == secret,
          "challenge re-encrypted with the client key")
    agent.send(ssmtest.PT_HS_COMPLETE, json.dumps({"HandshakeTimeToComplete": 1,
                                                   "CustomerMessage": "This session is encrypted using AWS KMS."}).encode())
    p.read_until(b"This session is encrypted using AWS KMS.\r\n")
    check(agent.pings[:1] == [b"keepalive"], f"ping 'keepalive' right after connecting: {agent.pings}")
    agent.send_frame(9, b"are-you-there")  # the plugin answers pings
    m = agent.next_input()
    check(m["payload_type"] == ssmtest.PT_SIZE, f"Size first (plaintext): {m}")
    json.loads(m["payload"])
    agent.send(ssmtest.PT_OUTPUT, seal(agent_key, b"sealed-hello-from-agent"))
    p.read_until(b"sealed-hello-from-agent")
    p.write(b"typed-secret\r")
    m = agent.next_input()
    check(m["payload_type"] == ssmtest.PT_OUTPUT, m)
    check(b"typed-secret" not in m["payload"], "Output is not sent in clear")
    check(open_(client_key, m["payload"]) == b"typed-secret\n", "Output sealed with the client key")
    check(b"are-you-there" in agent.pongs, f"pong with the ping's data: {agent.pongs}")
    # A payload the plugin cannot open is not shown.
    agent.send(ssmtest.PT_OUTPUT, b"\0" * 40)
    agent.send(ssmtest.PT_STDERR, seal(agent_key, b"after-bad"))
    time.sleep(0.5)
    p._read_some(0.3)
    check(b"after-bad" not in bytes(p.out), "nothing past an undecryptable message is delivered")
    os.kill(p.pid, signal.SIGTERM)
    check(p.wait(10) == 0, "exit 0")


def test_legacy_cli_refuses_kms():
    agent = Agent()
    sid = "kms-legacy-1"
    resp = {"SessionId": sid, "TokenValue": "tok",
            "StreamUrl": f"ws://127.0.0.1:{agent.port}/v1/data-channel/{sid}?role=publish_subscribe"}
    argv, env = ssmtest.plugin_invocation(resp)
    argv = argv[:4]  # the old AWS CLI: no profile argument (argc 4)
    p = ssmtest.run_pty(argv, env=env)
    agent.accept()
    agent.recv_frame()
    agent.send(ssmtest.PT_HS_REQUEST, json.dumps({
        "AgentVersion": "3.3.1142.0",
        "RequestedClientActions": [
            {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Standard_Stream", "Properties": None}},
            {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "alias/test"}},
        ]}).encode())
    m = agent.next_input()
    hs = json.loads(m["payload"])
    res = hs["ProcessedClientActions"][1]
    want = ("Installed version of CLI does not support Session Manager encryption feature. "
            "Please upgrade to the latest version of your CLI (e.g., AWS CLI).")
    check(res["ActionStatus"] == 2 and res["Error"] == "Failed to process action KMSEncryption: " + want, hs)
    check(hs["Errors"] == [want], hs)
    os.kill(p.pid, signal.SIGTERM)
    check(p.wait(10) == 0, "exit 0")


def test_handshake_complete_without_session_type():
    # Scripted-agent edge case (§8.4): HandshakeComplete with no valid
    # SessionType ends the session with the official text.
    agent = Agent()
    sid = "hs-no-type-1"
    resp = {"SessionId": sid, "TokenValue": "tok",
            "StreamUrl": f"ws://127.0.0.1:{agent.port}/v1/data-channel/{sid}?role=publish_subscribe"}
    argv, env = ssmtest.plugin_invocation(resp)
    proc = ssmtest.run_pipes(argv, env)
    agent.accept()
    agent.recv_frame()
    agent.send(ssmtest.PT_HS_REQUEST, json.dumps({
        "AgentVersion": "3.3.1142.0",
        "RequestedClientActions": [
            {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Bogus", "Properties": None}},
            {"ActionType": "FutureAction", "ActionParameters": {}},
        ]}).encode())
    hs = json.loads(agent.next_input()["payload"])
    acts = hs["ProcessedClientActions"]
    check(acts[0]["ActionStatus"] == 2 and acts[0]["Error"] ==
          "Failed to process action SessionType: Unknown session type Bogus", hs)
    check(acts[1]["ActionStatus"] == 3 and acts[1]["Error"] == "Unsupported action FutureAction", hs)
    agent.send(ssmtest.PT_HS_COMPLETE, b'{"HandshakeTimeToComplete":1,"CustomerMessage":""}')
    out, _ = proc.communicate(timeout=15)
    check(proc.returncode == 0, f"exit {proc.returncode}")
    check(out.endswith(b"Cannot perform start session: unable to determine SessionType\n"), out)


if __name__ == "__main__":
    ssmtest.main([test_kms_handshake_challenge_and_sealed_output, test_legacy_cli_refuses_kms,
                  test_handshake_complete_without_session_type])
