# Request bodies, sans-IO: the reader states after the head (a Content-Length body, or chunked
# coding with its trailers), each a step over the RequestReader r (proto.py). A step returns a
# Request, None (needs more bytes) or AGAIN (it moved to another state), or raises HTTPError
# (r.fail). The steps use the reader's buffer through its narrow interface only: have(), take(),
# peek(), line(). proto.py imports this module at the first request with a body; piece() is
# how a streamed body is read (bodystream.py), a piece at a time, never held whole, and drop()
# how what its handler left unread is dropped (session.py).

from micropython import const

from nostall.proto import AGAIN, EXPECT_BODY, EXPECT_CHUNK_DATA, EXPECT_CHUNK_END, EXPECT_CHUNK_SIZE, EXPECT_HEAD, EXPECT_TRAILER
from nostall.request import HTTPError

# what it says, as numbers: their words are words.py's rows
_BODY_TOO_LARGE = const(24)
_BROKEN = const(26)
_BAD_CHUNK_LINE = const(27)
_BAD_CHUNK_SIZE = const(28)
_CHUNK_TOO_LONG = const(29)
_BAD_TRAILER = const(30)

_HEX = const("0123456789abcdefABCDEF")
_MAX_CHUNK_LINE = 64  # chunk size and extensions; a longer line is an attack, not a body
MAX_HEX_DIGITS = 8  # chunk sizes up to 4 GiB - 1: int() never sees a huge number


def content_length(r):
    if not r.have():
        return None
    r.need_continue = False
    req = r.req
    if r.body is None:
        if r.have() >= r.remaining:  # common case: the whole body came with the head
            req.body = bytes(r.take(r.remaining))
            return _done(r)
        r.body = bytearray(r.remaining)
        r.body_len = 0
    piece = r.take(r.remaining)
    n = len(piece)
    r.body[r.body_len : r.body_len + n] = piece
    r.body_len += n
    r.remaining -= n
    if r.remaining:
        return None
    req.body = bytes(r.body)
    return _done(r)


def _done(r):
    req = r.req
    r.req = None
    r.body = None
    r.state = EXPECT_HEAD
    return req


def _line(r, limit):
    line = r.line(limit, _BAD_CHUNK_LINE)
    if line is not None:
        r.need_continue = False
    return line


def chunk_size(r):
    line = _line(r, _MAX_CHUNK_LINE)
    if line is None:
        return None
    size = line.split(b";", 1)[0].strip(b" \t")
    if not size or any(chr(c) not in _HEX for c in size):
        r.fail(400, _BAD_CHUNK_SIZE)
    size = size.lstrip(b"0") or b"0"
    if len(size) > MAX_HEX_DIGITS:
        r.fail(413, _BODY_TOO_LARGE)
    n = int(size, 16)
    if r.body_len + n > r.limit:
        r.fail(413, _BODY_TOO_LARGE)
    if n == 0:
        r.state = EXPECT_TRAILER
    else:
        r.remaining = n
        r.state = EXPECT_CHUNK_DATA
    return AGAIN


def chunk_data(r):
    piece = r.take(r.remaining)
    n = len(piece)
    if n == 0:
        return None
    r.body.extend(piece)
    r.body_len += n
    r.remaining -= n
    if r.remaining == 0:
        r.state = EXPECT_CHUNK_END
    return AGAIN


def chunk_end(r):
    crlf = r.peek(2)
    if crlf is None:
        one = r.peek(1)
        if one is not None and one[0] != 13:
            r.fail(400, _CHUNK_TOO_LONG)
        return None
    if crlf[0] != 13 or crlf[1] != 10:
        r.fail(400, _CHUNK_TOO_LONG)
    r.take(2)
    r.state = EXPECT_CHUNK_SIZE
    return AGAIN


def trailer(r):
    line = _line(r, min(r.cfg.max_header_bytes, r.cfg.recv_buffer_bytes) - 2)
    if line is None:
        return None
    if not line:  # end of trailers: the request is complete
        r.req.body = bytes(r.body or b"")
        return _done(r)
    if b"\n" in line or b":" not in line:
        r.fail(400, _BAD_TRAILER)
    return AGAIN


def piece(r, n):
    """A streamed body's next bytes, at most n: a memoryview into the buffer (use it before the
    next receive), None while more must be received, b"" once the body has ended (the reader then
    reads the next request). HTTPError for a malformed chunk or a body over r.limit."""
    while True:
        st = r.state
        if st == EXPECT_BODY or st == EXPECT_CHUNK_DATA:
            left = r.remaining
            if not left:  # a Content-Length body read to its end
                _done(r)
                return b""
            p = r.take(n if n < left else left)
            if not p:
                return None
            took(r, len(p))
            return p
        if st == EXPECT_HEAD:
            return b""
        if st == EXPECT_CHUNK_SIZE:
            a = chunk_size(r)
        elif st == EXPECT_CHUNK_END:
            a = chunk_end(r)
        elif st == EXPECT_TRAILER:
            a = trailer(r)
        else:
            a = r.fail(400, _BROKEN)  # raises
        if a is None:
            return None
        if a is not AGAIN:  # the trailers' end: the request is complete
            return b""


def plain(r):
    """How many bytes of a streamed body may be taken as they are (none: framing comes first)."""
    st = r.state
    return r.remaining if st == EXPECT_BODY or st == EXPECT_CHUNK_DATA else 0


def took(r, k):
    """k plain bytes of a streamed body were taken: from the buffer (piece), or straight from the
    socket into the handler's buffer (bodystream.readinto)."""
    r.need_continue = False
    r.remaining -= k
    r.body_len += k
    if not r.remaining and r.state == EXPECT_CHUNK_DATA:
        r.state = EXPECT_CHUNK_END


def drop(r):
    """What is buffered of a streamed body its handler left unread, dropped: True once the body
    has ended (the reader reads the next request), False when more is still to come or it is
    malformed (then the answer says "Connection: close")."""
    try:
        while True:
            p = piece(r, 0x7FFFFFFF)
            if p is None:
                return False
            if not p:
                return True
    except HTTPError:
        return False


# the steps of the reader states EXPECT_BODY .. EXPECT_TRAILER, in order (proto.py installs them)
STEPS = (content_length, chunk_size, chunk_data, chunk_end, trailer)
