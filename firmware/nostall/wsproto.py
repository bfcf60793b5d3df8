# WebSocket (RFC 6455), sans-IO: the handshake's accept key, frames in (parsed and checked out of
# the connection's receive buffer, messages put together from fragments), frames out, close
# codes. No sockets, no asyncio: it runs on CPython and MicroPython.
#
# FrameReader.next() returns an event, None when it needs more bytes, or raises WSError with the
# close code to answer with (1002 protocol error, 1007 bad UTF-8, 1009 message too big). Events:
# (TEXT, str), (BINARY, bytes), (PING, bytes), (PONG, bytes), (CLOSE, (code, reason)).
# Unmasking XORs big integers (C speed), never byte by byte in Python.

import binascii
import hashlib

from nostall.escapes import not_shortest_utf8
from nostall.request import HTTPError

CONT = 0
TEXT = 1
BINARY = 2
CLOSE = 8
PING = 9
PONG = 10

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
NO_STATUS = 1005  # a close frame without a code (never sent in one)
_MAX_CONTROL = 125  # RFC 6455 5.5: control frames carry at most this much
# what a close frame may say (RFC 6455 7.4, as the Autobahn test suite checks it)
_CLOSE_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011)

# reader states
_HEAD = 0
_PAYLOAD = 1


class WSError(Exception):
    """The peer broke the protocol: close with .code."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (str)."""
    return binascii.b2a_base64(hashlib.sha1(key.encode() + GUID).digest()).strip().decode()


_VERSION = (("Sec-WebSocket-Version", "13"),)  # RFC 6455 4.4: a refusal names the version we speak


def handshake(req):
    """The 101 answer's headers for a WebSocket request; HTTPError (400, or 426 for another
    version) if it is none."""
    h = req.headers
    if req.method != "GET" or "websocket" not in h.get("upgrade", "").lower():
        raise HTTPError(400, "a WebSocket route: send a WebSocket handshake")
    if "upgrade" not in h.get("connection", "").lower():
        raise HTTPError(400, "WebSocket handshake without Connection: Upgrade")
    if h.get("sec-websocket-version") != "13":
        raise HTTPError(426, "WebSocket version 13 only", _VERSION)
    key = h.get("sec-websocket-key", "")
    if len(key) != 24:
        raise HTTPError(400, "bad Sec-WebSocket-Key")
    return (("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(key)))


def frame_head(opcode, n, fin=True):
    """The head of a server frame (unmasked) carrying n bytes."""
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes((b0, n))
    if n < 65536:
        return bytes((b0, 126, n >> 8, n & 0xFF))
    return bytes((b0, 127)) + n.to_bytes(8, "big")


def frame(opcode, payload, fin=True):
    """One server frame (unmasked) as bytes."""
    return frame_head(opcode, len(payload), fin) + payload


def close_frame(code, reason=""):
    return frame(CLOSE, code.to_bytes(2, "big") + reason.encode()[:_MAX_CONTROL - 2])


def unmask(data, mask, offset=0):
    """data XOR the 4-byte mask, the mask starting at byte offset % 4 (a payload read in pieces)."""
    n = len(data)
    if not n:
        return b""
    k = offset % 4
    m = (mask[k:] + mask[:k]) * ((n + 3) // 4)
    return (int.from_bytes(data, "little") ^ int.from_bytes(m[:n], "little")).to_bytes(n, "little")


def utf8(b, what):
    """b decoded, or WSError 1007. MicroPython's decoder lets overlong forms and surrogates
    through: those are looked for when the text is not plain ASCII."""
    try:
        s = str(b, "utf-8")
    except UnicodeError:
        raise WSError(1007, what)
    if len(s) != len(b) and not_shortest_utf8(b):
        raise WSError(1007, what)
    return s


def parse_close(payload):
    """(code, reason) of a close frame's payload; WSError for a code or reason not allowed."""
    if not payload:
        return NO_STATUS, ""
    if len(payload) == 1:
        raise WSError(1002, "close frame of one byte")
    code = int.from_bytes(payload[:2], "big")
    if code not in _CLOSE_CODES and not 3000 <= code <= 4999:
        raise WSError(1002, "close code %d" % code)
    return code, utf8(payload[2:], "close reason is not UTF-8")


def _buffer(n):
    # a message's room; a heap that has no n bytes in one piece now cannot take this message
    # (RFC 6455's 1009), which ends this WebSocket, not the app's handler
    try:
        return bytearray(n)
    except MemoryError:
        raise WSError(1009, "no memory for a message of %d bytes now" % n)


class FrameReader:
    """Client frames out of a RequestReader's buffer (its peek() and take(): the bytes arrive
    through its space()/added()), put together into messages of at most max_message_bytes.

    Example::

        frames = FrameReader(request_reader, 16384)
        ev = frames.next()     # (opcode, data), None: receive more, or WSError
    """

    def __init__(self, reader, max_message_bytes):
        self.r = reader
        self.max = max_message_bytes
        self.state = _HEAD
        self.fin = True
        self.opcode = 0
        self.mask = b""
        self.remaining = 0  # payload bytes of the current frame still to come
        self.got = 0  # of the current frame's payload, received so far (the mask's offset)
        self.control = None  # the control frame being read (bytearray)
        self.msg = None  # the data message being put together (bytearray, room to grow)
        self.msg_opcode = 0  # TEXT or BINARY of that message
        self.fill = 0  # its bytes so far: where the next ones go

    def next(self):
        r = self.r
        while True:
            if self.state == _HEAD:
                if not self._head():
                    return None
                if self.remaining == 0:
                    ev = self._frame_done()
                    if ev is not None:
                        return ev
                continue
            piece = r.take(self.remaining)
            take = len(piece)
            if take == 0:
                return None
            data = unmask(piece, self.mask, self.got)
            self.got += take
            self.remaining -= take
            if self.control is not None:
                self.control.extend(data)
            else:  # into the room made at the frame's head: no growing copy per piece received
                self.msg[self.fill : self.fill + take] = data
                self.fill += take
            if self.remaining == 0:
                ev = self._frame_done()
                if ev is not None:
                    return ev

    def _head(self):
        # the frame head, whole, or False; checks everything before the payload is read
        r = self.r
        buf = r.peek(2)
        if buf is None:
            return False
        b0 = buf[0]
        b1 = buf[1]
        if b0 & 0x70:
            raise WSError(1002, "reserved bits set")
        if not b1 & 0x80:
            raise WSError(1002, "client frame not masked")
        n = b1 & 0x7F
        size = 2 + (2 if n == 126 else 8 if n == 127 else 0) + 4
        buf = r.peek(size)
        if buf is None:
            return False
        fin = b0 & 0x80
        opcode = b0 & 0x0F
        p = 2
        if n == 126:
            n = int.from_bytes(buf[p : p + 2], "big")
            p += 2
        elif n == 127:
            n = int.from_bytes(buf[p : p + 8], "big")
            p += 8
        if opcode >= CLOSE:
            if opcode > PONG:
                raise WSError(1002, "reserved opcode %d" % opcode)
            if not fin or n > _MAX_CONTROL:
                raise WSError(1002, "control frame fragmented or longer than %d" % _MAX_CONTROL)
            self.control = bytearray()
        elif opcode == CONT:
            if self.msg is None:
                raise WSError(1002, "continuation without a message")
            need = self.fill + n
            if need > self.max:
                raise WSError(1009, "message larger than %d bytes" % self.max)
            if need > len(self.msg):
                # room for this frame, at least doubled (within the limit): a message of many
                # fragments costs a few copies, not one per frame (the heap would fragment)
                grown = _buffer(min(self.max, max(need, 2 * len(self.msg))))
                grown[: self.fill] = memoryview(self.msg)[: self.fill]
                self.msg = grown
            self.control = None
        elif opcode > BINARY:
            raise WSError(1002, "reserved opcode %d" % opcode)
        else:
            if self.msg is not None:
                raise WSError(1002, "new message before the last one ended")
            if n > self.max:
                raise WSError(1009, "message larger than %d bytes" % self.max)
            # its first frame's length: a message of one frame is allocated once, as it is
            self.msg = _buffer(n)
            self.fill = 0
            self.msg_opcode = opcode
            self.control = None
        self.fin = fin
        self.opcode = opcode
        self.mask = bytes(buf[p : p + 4])
        self.remaining = n
        self.got = 0
        r.take(size)
        self.state = _PAYLOAD
        return True

    def _frame_done(self):
        # a whole frame is in: a control frame's event, a message's when its last frame ended
        self.state = _HEAD
        if self.control is not None:
            payload = bytes(self.control)
            self.control = None
            if self.opcode == CLOSE:
                return CLOSE, parse_close(payload)
            return self.opcode, payload
        if not self.fin:
            return None
        msg = self.msg or bytearray()
        n = self.fill
        self.msg = None
        text = self.msg_opcode == TEXT
        try:
            if n < len(msg):  # grown past its end: what came is a view of it
                view = memoryview(msg)[:n]
                return (TEXT, utf8(view, "text message is not UTF-8")) if text else (BINARY, bytearray(view))
            if text:
                return TEXT, utf8(msg, "text message is not UTF-8")
            return BINARY, msg  # the buffer itself: 16 KB are not copied again
        except MemoryError:
            raise WSError(1009, "no memory for a message of %d bytes now" % n)
