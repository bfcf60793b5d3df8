# WebSocket frames (firmware/nostall/wsproto.py): the handshake key, frames out, client frames in
# (whole, byte by byte, in fragments, with control frames between), and every refusal with its
# close code. Runs on CPython and on MicroPython.

import os

from unitcheck import raises

from nostall import wsproto
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


def test_a_message_of_many_fragments_grows_by_doubling_and_comes_whole():
    # 1 + 2 + ... + 40 bytes in 40 frames, a ping in the middle; text with a character split
    parts = [os.urandom(i) for i in range(1, 41)]
    frames = client(BINARY, parts[0], fin=False)
    for i, p in enumerate(parts[1:], 1):
        frames += client(0, p, fin=i == len(parts) - 1)
        if i == 20:
            frames += client(PING, b"mid")
    snow = "\u2603".encode()
    frames += client(TEXT, b"a" + snow[:1], fin=False) + client(0, snow[1:2], fin=False) + client(0, snow[2:] + b"z")
    want = [(PING, b"mid"), (BINARY, b"".join(parts)), (TEXT, "a\u2603z")]
    for split in (None, 1, 7):
        got = events(frames, split, max_message=820)
        assert [(op, bytes(d) if op == BINARY else d) for op, d in got] == want
    # exactly the limit, in fragments that grow past it: the room stops at the limit
    assert events(client(BINARY, b"x" * 300, fin=False) + client(0, b"y" * 520), max_message=820)[0][1] == (
        b"x" * 300 + b"y" * 520)


def test_no_memory_for_a_message_is_1009_not_a_crash():
    # a heap with no room in one piece for a message within the limit: this WebSocket ends
    # (1009: too big to process), not the app's handler with a MemoryError
    def no_room(n=0):
        if n > 64:
            raise MemoryError()
        return bytearray(n)

    wsproto.bytearray = no_room  # the module's name first, then the builtin's
    try:
        assert events(client(TEXT, b"small")) == [(TEXT, "small")]
        with raises(WSError) as e:
            events(client(BINARY, b"x" * 65))
        assert e.value.code == 1009
        with raises(WSError) as e:
            events(client(BINARY, b"x" * 40, fin=False) + client(0, b"x" * 40))
        assert e.value.code == 1009
    finally:
        del wsproto.bytearray


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
