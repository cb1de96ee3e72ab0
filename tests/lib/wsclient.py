"""Minimal RFC 6455 websocket client (stdlib only), just enough for tests.

Client frames are masked; pings are answered; fragmented messages are
reassembled. Every blocking call has a timeout so no test can hang."""

import base64
import hashlib
import os
import select
import socket
import ssl
import struct
import time
import urllib.parse

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocketError(Exception):
    pass


class ConnectionClosed(WebSocketError):
    def __init__(self, code=None, reason=b""):
        super().__init__(f"websocket closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason


class WebSocket:
    def __init__(self, url, timeout=10.0, cafile=None, headers=None):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("ws", "wss"):
            raise ValueError("ws:// or wss:// URL required")
        port = u.port or (443 if u.scheme == "wss" else 80)
        raw = socket.create_connection((u.hostname, port), timeout=timeout)
        if u.scheme == "wss":
            ctx = ssl.create_default_context(cafile=cafile)
            raw = ctx.wrap_socket(raw, server_hostname=u.hostname)
        self.sock = raw
        self.sock.settimeout(timeout)
        self._buf = b""
        self.closed = False
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        key = base64.b64encode(os.urandom(16)).decode()
        req = [f"GET {path} HTTP/1.1", f"Host: {u.hostname}:{port}", "Upgrade: websocket",
               "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            req.append(f"{k}: {v}")
        self.sock.sendall(("\r\n".join(req) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise WebSocketError(f"upgrade refused: {lines[0]}")
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
                for l in lines[1:] if ":" in l}
        want = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            raise WebSocketError("bad Sec-WebSocket-Accept")

    def _read_until(self, marker):
        while marker not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionClosed()
            self._buf += chunk
            if len(self._buf) > 1 << 20:
                raise WebSocketError("response header too large")
        head, self._buf = self._buf.split(marker, 1)
        return head

    def _fill(self, deadline):
        """Reads more bytes into the buffer; raises socket.timeout at the deadline.
        select() rather than settimeout(), so another thread's sends keep
        their own timeout."""
        pending = getattr(self.sock, "pending", None)
        if not (pending and pending()):
            left = None if deadline is None else deadline - time.time()
            if left is not None and left <= 0:
                raise socket.timeout("timed out")
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                raise socket.timeout("timed out")
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed()
        self._buf += chunk

    def _parse_frame(self):
        """(fin, opcode, payload) of a whole frame at the buffer head, consumed;
        None while incomplete (nothing is consumed, so a timeout loses nothing)."""
        b = self._buf
        if len(b) < 2:
            return None
        n, off = b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, off = struct.unpack(">H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, off = struct.unpack(">Q", b[2:10])[0], 10
        mask = None
        if b[1] & 0x80:
            if len(b) < off + 4:
                return None
            mask, off = b[off:off + 4], off + 4
        if len(b) < off + n:
            return None
        data = b[off:off + n]
        self._buf = b[off + n:]
        if mask:
            data = bytes(x ^ mask[i & 3] for i, x in enumerate(data))
        return bool(b[0] & 0x80), b[0] & 0x0F, data

    def send_frame(self, opcode, payload, fin=True):
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_binary(self, data):
        self.send_frame(OP_BINARY, bytes(data))

    def _read_frame(self, deadline=None):
        while True:
            f = self._parse_frame()
            if f is not None:
                return f
            self._fill(deadline)

    def recv(self, timeout=None):
        """Returns (opcode, payload) of the next text/binary message. Raises
        ConnectionClosed on a close frame or EOF, socket.timeout on timeout."""
        if timeout is None:
            timeout = self.sock.gettimeout()
        deadline = None if timeout is None else time.time() + timeout
        parts, first_op = [], None
        while True:
            fin, op, data = self._read_frame(deadline)
            if op == OP_PING:
                self.send_frame(OP_PONG, data)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else None
                self.closed = True
                try:
                    self.send_frame(OP_CLOSE, data[:2])
                except OSError:
                    pass
                raise ConnectionClosed(code, data[2:])
            if op in (OP_TEXT, OP_BINARY):
                first_op, parts = op, [data]
            elif op == OP_CONT:
                parts.append(data)
            if fin and first_op is not None:
                return first_op, b"".join(parts)

    def close(self):
        if not self.closed:
            try:
                self.send_frame(OP_CLOSE, struct.pack(">H", 1000))
            except OSError:
                pass
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
