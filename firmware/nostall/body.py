# Request bodies, sans-IO: the reader states after the head (a Content-Length body, or chunked
# coding with its trailers), each a step over the RequestReader r (proto.py) and its buffer. A
# step returns a Request, None (needs more bytes) or AGAIN (it moved to another state), or raises
# HTTPError; proto.py's table maps each state to its step.

from nostall.request import HEX, HTTPError

# Reader states: what the reader expects next. (The connection's own states, pool.py's, say
# what the connection waits for; the connection asks the reader body_due(), never its state.)
EXPECT_HEAD = 0
EXPECT_BODY = 1  # Content-Length body
EXPECT_CHUNK_SIZE = 2
EXPECT_CHUNK_DATA = 3
EXPECT_CHUNK_END = 4  # the CRLF after a chunk's data
EXPECT_TRAILER = 5
BROKEN = 6  # after an error: nothing more is parsed

AGAIN = object()  # a step's "moved to another state"

_MAX_CHUNK_LINE = 64  # chunk size and extensions; a longer line is an attack, not a body
# digits past which a size is over any max_body_bytes: int() never sees a huge number
MAX_HEX_DIGITS = 8  # chunk sizes up to 4 GiB - 1
MAX_DEC_DIGITS = 10  # Content-Length up to 9 999 999 999


def broken(r):
    raise HTTPError(400, "connection is in error")


def content_length(r):
    have = r.end - r.start
    if have == 0:
        return None
    r.need_continue = False
    req = r.req
    n = r.remaining
    if r.body is None:
        if have >= n:  # common case: the whole body came with the head
            req.body = bytes(r.mv[r.start : r.start + n])
            r.start += n
            return _done(r)
        r.body = bytearray(n)
        r.body_len = 0
    take = min(have, n)
    r.body[r.body_len : r.body_len + take] = r.mv[r.start : r.start + take]
    r.body_len += take
    r.start += take
    r.remaining -= take
    if r.remaining:
        return None
    req.body = bytes(r.body)
    return _done(r)


def _done(r):
    req = r.req
    r.req = None
    r.body = None
    r.state = EXPECT_HEAD
    r.scan = r.start
    return req


def _line(r, limit):
    # a chunk-size or trailer line (bytes, CRLF dropped), None until its end arrives; one
    # longer than limit is refused whether its end arrived yet or not
    buf = r.buf
    i = buf.find(b"\r\n", r.start, r.end)
    if i < 0:
        if r.end - r.start > limit + 1 or buf.find(b"\n", r.start, r.end) >= 0:
            r._fail(400, "malformed chunk line")
        return None
    if i - r.start > limit:
        r._fail(400, "malformed chunk line")
    r.need_continue = False
    line = bytes(r.mv[r.start : i])
    r.start = i + 2
    return line


def chunk_size(r):
    line = _line(r, _MAX_CHUNK_LINE)
    if line is None:
        return None
    size = line.split(b";", 1)[0].strip(b" \t")
    if not size or any(chr(c) not in HEX for c in size):
        r._fail(400, "malformed chunk size")
    size = size.lstrip(b"0") or b"0"
    if len(size) > MAX_HEX_DIGITS:
        r._fail(413, "body too large")
    n = int(size, 16)
    if r.body_len + n > r.cfg.max_body_bytes:
        r._fail(413, "body too large")
    if n == 0:
        r.state = EXPECT_TRAILER
    else:
        r.remaining = n
        r.state = EXPECT_CHUNK_DATA
    return AGAIN


def chunk_data(r):
    have = r.end - r.start
    if have == 0:
        return None
    take = min(have, r.remaining)
    r.body.extend(r.mv[r.start : r.start + take])
    r.body_len += take
    r.start += take
    r.remaining -= take
    if r.remaining == 0:
        r.state = EXPECT_CHUNK_END
    return AGAIN


def chunk_end(r):
    buf = r.buf
    have = r.end - r.start
    if have < 2:
        if have == 1 and buf[r.start] != 13:
            r._fail(400, "chunk data longer than its size")
        return None
    if buf[r.start] != 13 or buf[r.start + 1] != 10:
        r._fail(400, "chunk data longer than its size")
    r.start += 2
    r.state = EXPECT_CHUNK_SIZE
    return AGAIN


def trailer(r):
    line = _line(r, min(r.cfg.max_header_bytes, len(r.buf)) - 2)
    if line is None:
        return None
    if not line:  # end of trailers: the request is complete
        r.req.body = bytes(r.body or b"")
        return _done(r)
    if b"\n" in line or b":" not in line:
        r._fail(400, "malformed trailer")
    return AGAIN


# What next() runs in each reader state: a step returns a Request, None (needs more bytes) or
# AGAIN (it moved to another state: run that one), or raises HTTPError.
