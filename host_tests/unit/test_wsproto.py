# WebSocket frames (firmware/nostall/wsproto.py): the handshake key, frames out, client frames in
# (whole, byte by byte, in fragments, with control frames between), and every refusal with its
# close code. Runs on CPython and on MicroPython.

import os

from unitcheck import raises

from nostall.config import Config
from nostall.proto import RequestReader
from nostall.wsproto import BINARY, CLOSE, PING, PONG, TEXT, FrameReader, WSError, accept_key, close_frame, frame, unmask

MASK = b"\x37\xfa\x21\x3d"


def client(opcode, payload, fin=True, mask=MASK, rsv=0):
    """A client frame, masked as RFC 6455 requires (mask=None: unmasked)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    return head + mask + unmask(payload, mask)


def events(data, split=None, max_message=70000):
    """Every event FrameReader makes of data, fed whole or split bytes at a time."""
    r = RequestReader(Config())
    f = FrameReader(r, max_message)
    out = []
    step = split or len(data) or 1
    pos = 0
    while True:
        ev = f.next()
        if ev is not None:
            out.append(ev)
            continue
        if pos >= len(data):
            return out
        piece = data[pos : pos + step]
        n = r.feed(piece)
        pos += n


def test_accept_key_of_the_rfc():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_server_frames():
    assert frame(TEXT, b"Hello") == b"\x81\x05Hello"
    assert frame(BINARY, b"x" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert frame(BINARY, b"x" * 70000)[:10] == b"\x82\x7f" + (70000).to_bytes(8, "big")
    assert frame(TEXT, b"a", fin=False) == b"\x01\x01a"
    assert close_frame(1000, "bye") == b"\x88\x05\x03\xe8bye"


def test_unmask_in_pieces_is_the_mask_at_every_offset():
    data = os.urandom(37)
    whole = unmask(data, MASK)
    assert unmask(whole, MASK) == data
    assert unmask(data[:5], MASK) + unmask(data[5:], MASK, 5) == whole
    assert unmask(b"", MASK) == b""


def test_messages_whole_byte_by_byte_and_fragmented():
    text = "héllo wörld " * 20
    big = os.urandom(66000)
    data = (client(TEXT, text.encode()) + client(BINARY, big)
            + client(TEXT, b"ab", fin=False) + client(PING, b"p!") + client(0, b"cd", fin=False)
            + client(0, b"", fin=True) + client(PONG, b"") + client(TEXT, b""))
    want = [(TEXT, text), (BINARY, big), (PING, b"p!"), (TEXT, "abcd"), (PONG, b""), (TEXT, "")]
    assert events(data) == want
    assert events(data, 1) == want
    assert events(data, 1000) == want


def test_close_frames():
    assert events(client(CLOSE, b"")) == [(CLOSE, (1005, ""))]
    assert events(client(CLOSE, (1000).to_bytes(2, "big") + "fin ✓".encode())) == [(CLOSE, (1000, "fin ✓"))]
    assert events(client(CLOSE, (4000).to_bytes(2, "big"))) == [(CLOSE, (4000, ""))]


def test_refusals_and_their_close_codes():
    cases = [
        ("unmasked", client(TEXT, b"x", mask=None), 1002),
        ("reserved bits", client(TEXT, b"x", rsv=0x40), 1002),
        ("reserved data opcode", client(3, b"x"), 1002),
        ("reserved control opcode", client(11, b""), 1002),
        ("long ping", client(PING, b"x" * 126), 1002),
        ("fragmented ping", client(PING, b"x", fin=False), 1002),
        ("continuation first", client(0, b"x"), 1002),
        ("new message inside one", client(TEXT, b"a", fin=False) + client(TEXT, b"b"), 1002),
        ("too big", client(BINARY, b"x" * 101), 1009),
        ("too big in fragments", client(BINARY, b"x" * 60, fin=False) + client(0, b"x" * 60), 1009),
        ("bad UTF-8", client(TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007),
        ("close of one byte", client(CLOSE, b"\x03"), 1002),
        ("close code 1005", client(CLOSE, (1005).to_bytes(2, "big")), 1002),
        ("close code 999", client(CLOSE, (999).to_bytes(2, "big")), 1002),
        ("close code 5000", client(CLOSE, (5000).to_bytes(2, "big")), 1002),
        ("close reason not UTF-8", client(CLOSE, (1000).to_bytes(2, "big") + b"\xff"), 1007),
    ]
    for name, data, code in cases:
        with raises(WSError) as e:
            events(data, max_message=100)
        assert e.value.code == code, (name, e.value.code)
