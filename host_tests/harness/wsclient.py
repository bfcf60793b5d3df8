"""A WebSocket client that can misbehave, for the tests of the board's WebSocket: it sends any
frame (unmasked, reserved bits or opcodes, oversized or fragmented control frames, cut short),
answers pings and close frames only when told to, can stop reading, and can vanish with a reset.
Built on the `websockets` library: its sans-IO `ClientProtocol` does the handshake and parses
what the server sends (and would refuse a server frame that breaks RFC 6455), its `Frame` builds
the client's frames (`BadFrame` skips the checks that stop it building the forbidden ones). The
socket is a plain blocking one with a timeout, so every wait is bounded.

    with WSClient(target, "/ws/echo") as c:
        c.send_frame(BadFrame(Opcode.TEXT, b"hi"), mask=False)
        code, reason = c.expect_close()       # 1002
"""

import socket
import struct
import time

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from harness.target import SockClient, recv_by

__all__ = ["BadFrame", "Opcode", "WSClient", "close_payload"]


class BadFrame(Frame):
    """A Frame that serializes whatever it holds: reserved bits, reserved opcodes (an int),
    control frames over 125 bytes or fragmented. Frame.check() refuses exactly these."""

    def check(self):
        pass


def close_payload(code, reason=""):
    """A close frame's payload, any code (Close.serialize refuses the codes RFC 6455 forbids)."""
    return struct.pack("!H", code) + reason.encode()


class WSClient(SockClient):
    """One WebSocket connection to target (a harness.target.Target) at path.

    After the handshake `.response` is the server's answer (status, headers); `.accepted` says
    whether it was a 101. answer_pings / answer_close: whether a ping gets its pong and a close
    frame its echo (a well-behaved client's part), when the frames are read."""

    def __init__(self, target, path, timeout=5.0, rcvbuf=None, headers=None, answer_pings=True,
                 answer_close=True, handshake=True):
        self.timeout = timeout
        self.answer_pings = answer_pings
        self.answer_close = answer_close
        self.proto = ClientProtocol(parse_uri("ws://%s:%d%s" % (target.host, target.port, path)), max_size=None)
        self.response = None
        self.tcp_end = None  # "eof" or "reset" once the server ended the connection
        self.pending = []  # frames parsed, not yet returned by recv_frame()
        self.sock = target.socket(timeout, rcvbuf)
        if handshake:
            self.handshake(headers)

    @property
    def accepted(self):
        return self.response is not None and self.response.status_code == 101

    def handshake(self, headers=None):
        """Send the handshake request (headers: added or replaced; a value None removes one)."""
        req = self.proto.connect()
        for name, value in (headers or {}).items():
            del req.headers[name]
            if value is not None:
                req.headers[name] = value
        self.proto.send_request(req)
        self._flush()
        deadline = time.monotonic() + self.timeout
        while self.response is None:
            if not self._read(deadline):
                raise EOFError("the server closed the connection during the handshake")
        return self.response

    # ---- sending ----

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, frame, mask=True):
        """Send one frame (a Frame or BadFrame); mask=False breaks RFC 6455 5.1."""
        self.sock.sendall(frame.serialize(mask=mask))

    def send(self, data, fin=True, opcode=None):
        """A text (str) or binary (bytes) data frame, masked; opcode: CONT for a continuation."""
        if opcode is None:
            opcode = Opcode.TEXT if isinstance(data, str) else Opcode.BINARY
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self.send_frame(Frame(opcode, payload, fin=fin))

    def ping(self, data=b""):
        self.send_frame(Frame(Opcode.PING, data))

    def close(self, code=1000, reason=""):
        """Start the close handshake (the server answers with its close frame)."""
        self.send_frame(Frame(Opcode.CLOSE, close_payload(code, reason)))

    # ---- receiving ----

    def recv_frame(self, timeout=None):
        """The server's next frame (control frames included), None at the end of the connection;
        socket.timeout if none comes within timeout (default: the client's)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.pending:
            if self.tcp_end is not None or not self._read(deadline):
                return None
        return self.pending.pop(0)

    def recv(self, timeout=None):
        """The next message (str or bytes; fragments joined), skipping control frames; None once
        a close frame or the end of the connection came instead."""
        parts = []
        op = None
        while True:
            f = self.recv_frame(timeout)
            if f is None:
                return None
            if f.opcode == Opcode.CLOSE:
                self.pending.insert(0, f)  # expect_close() still sees it
                return None
            if f.opcode in (Opcode.PING, Opcode.PONG):
                continue
            if op is None:
                op = f.opcode
            parts.append(f.data)
            if f.fin:
                data = b"".join(parts)
                return data.decode() if op == Opcode.TEXT else data

    def expect_close(self, timeout=None):
        """Read until the server's close frame: (code, reason), skipping anything else; (None,
        None) if the connection ended without one."""
        while True:
            f = self.recv_frame(timeout)
            if f is None:
                return None, None
            if f.opcode == Opcode.CLOSE:
                c = Close.parse(f.data) if f.data else Close(1005, "")
                return c.code, c.reason

    def wait_end(self, timeout=None):
        """Read (and drop) until the server ends TCP: "eof" (a FIN) or "reset"; None if it did
        not within timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            while self.tcp_end is None:
                if not self._read(deadline):
                    break
        except socket.timeout:
            return None
        self.pending.clear()
        return self.tcp_end

    # ---- ending ----

    def abort(self):
        """Vanish: close with a reset (SO_LINGER 0), as a crashed client or a lost network."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()

    def shutdown(self):
        self.sock.close()

    # ---- inside ----

    def _read(self, deadline):
        # one recv() into the protocol; False at the end of the connection
        data = recv_by(self.sock, deadline, self.timeout)
        if data is None:
            self.tcp_end = "reset"
            return False
        if not data:
            self.tcp_end = "eof"
            self.proto.receive_eof()
            return False
        self.proto.receive_data(data)
        for ev in self.proto.events_received():
            if isinstance(ev, Response):
                self.response = ev
                continue
            self.pending.append(ev)
            answer = None
            if ev.opcode == Opcode.PING and self.answer_pings:
                answer = Frame(Opcode.PONG, ev.data)
            elif ev.opcode == Opcode.CLOSE and self.answer_close:
                answer = Frame(Opcode.CLOSE, ev.data)
            if answer is not None:
                try:
                    self.send_frame(answer)
                except OSError:  # the server has already gone (it may reset after its close frame)
                    self.tcp_end = "reset"
        if self.proto.parser_exc is not None:
            raise AssertionError("the server broke RFC 6455: %r" % self.proto.parser_exc)
        self.proto.data_to_send()  # the protocol's own answers: this client sends its own
        return True

    def _flush(self):
        for data in self.proto.data_to_send():
            if data:
                self.sock.sendall(data)
