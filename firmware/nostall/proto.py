# HTTP/1.1 requests, sans-IO: no sockets, no asyncio, runs on CPython and MicroPython.
#
# How it works. A RequestReader owns one fixed receive buffer (a connection slot's). The shell
# reads socket bytes straight into reader.space() and calls reader.added(n), or calls feed(data).
# Then reader.next() returns a complete Request (head and body), None when it needs more bytes,
# or raises HTTPError carrying the status to answer with. After an HTTPError the framing is lost,
# so the connection must be closed after the error response. Several requests in one read are
# returned one by one, in order (pipelining). The search for the end of the head resumes where it
# stopped, so parsing is O(n) in the bytes received, and every limit is checked before anything
# is allocated for it: the buffer itself is the cap on the head.
#
# The head is read by the step in head.py, bodies by the steps in body.py; what the head says
# about its body (the reader's next state) is decided here. Responses are framing.py's job;
# what a Request is, request.py's.

import micropython
from micropython import const
from nostall.head import request_head
from nostall.request import METHODS, HTTPError  # noqa: F401 - METHODS: as before, from nostall.proto

# what it says, as numbers: their words are words.py's rows
_NO_HOST = const(18)
_LENGTH_AND_CODING = const(19)
_CODING_IN_10 = const(20)
_BAD_CODING = const(21)
_UNKNOWN_CODING = const(22)
_BAD_LENGTH = const(23)
_BODY_TOO_LARGE = const(24)
_BAD_EXPECT = const(25)
_BROKEN = const(26)

# Reader states: what the reader expects next. (The connection's own states, pool.py's, say
# what the connection waits for; the session asks the reader waiting(), never its state.)
EXPECT_HEAD = 0
EXPECT_BODY = 1  # Content-Length body
EXPECT_CHUNK_SIZE = 2
EXPECT_CHUNK_DATA = 3
EXPECT_CHUNK_END = 4  # the CRLF after a chunk's data
EXPECT_TRAILER = 5
BROKEN = 6  # after an error: nothing more is parsed

AGAIN = object()  # a step's "moved to another state"
_MAX_DEC_DIGITS = const(10)  # Content-Length up to 9 999 999 999: int() never sees a huge number

_USUAL_CONNECTION = {b"close": (b"close",), b"Close": (b"close",), b"keep-alive": (b"keep-alive",),
                     b"Keep-Alive": (b"keep-alive",)}


def _tokens(value):
    return [t.strip().lower() for t in value.split(b",")]


class RequestReader:
    """Turns received bytes into Requests. See the module comment.

    Example::

        r = RequestReader(Config())
        r.feed(b"GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        req = r.next()        # Request, or None: feed more
    """

    # what only a request with a body sets (_framing), as class attributes until then: each
    # attribute an instance holds takes a place in its map, in every connection slot from
    # start-up (their maps grow at the first body, as Session's do at a first WebSocket)
    req = None  # request whose body is being read
    body = None  # a body read whole: what came of it so far
    body_len = 0  # bytes of body received (set when a body starts)
    remaining = 0  # bytes left in a Content-Length body or the current chunk (set with it)
    limit = 0  # this request's body limit (set by _admit before any byte of it is taken)
    need_continue = False  # the head asked "Expect: 100-continue" and its body is due

    def __init__(self, cfg, buf=None, admit=None):
        self.cfg = cfg
        # admit(req) when a head with a body is in: None (the body read whole, up to
        # max_body_bytes), or the limit of a body the app reads as a stream; HTTPError refuses
        self.admit = admit
        # the slot's own buffer, made at start-up (recv_buffer_bytes). A head that outgrows it
        # gets one of max_header_bytes for as long as that request is read, as nginx's large
        # header buffers: most heads are a few hundred bytes, and every slot's own buffer is
        # heap the board holds all the time
        self.own = buf if buf is not None else bytearray(cfg.recv_buffer_bytes)
        self.buf = self.own
        self.mv = memoryview(self.own)
        self.reset()

    def _use(self, buf):
        self.buf = buf
        self.mv = memoryview(buf)

    def _grow(self):
        # the buffer is full of one unfinished head shorter than max_header_bytes: a large one
        # for it (MemoryError: the request's 503, see Session._read)
        big = bytearray(self.cfg.max_header_bytes)
        big[: self.end] = self.mv[: self.end]
        self._use(big)

    def reset(self):
        """Forget everything: the slot is being reused for a new connection."""
        if self.buf is not self.own:
            self._use(self.own)
        self.start = 0  # first unconsumed byte
        self.end = 0  # end of received bytes
        self.scan = 0  # where the search for the end of the head resumes
        self.state = EXPECT_HEAD
        if self.req is not None or self.need_continue:  # a body was due: none is now
            self.req = None
            self.body = None
            self.need_continue = False

    def pending(self):
        """True when part of a request has arrived: EOF now would cut a request short."""
        return self.waiting() != 0

    def space(self):
        """A memoryview to receive into; empty only when a head fills the whole buffer."""
        if self.start == self.end:
            self.scan -= self.start
            self.start = self.end = 0
            if self.buf is not self.own:  # the large head is read: back to the slot's own buffer
                self._use(self.own)
        elif self.end == len(self.buf) and self.start:
            n = self.end - self.start
            # the regions may overlap: go through a copy rather than trust memmove semantics
            self.buf[0:n] = bytes(self.mv[self.start : self.end])
            self.scan -= self.start
            self.start = 0
            self.end = n
        return self.mv[self.end :]

    def added(self, n):
        self.end += n

    def feed(self, data):
        """Copy data into the buffer; returns how many bytes fitted (call next() to make room)."""
        space = self.space()
        n = min(len(space), len(data))
        space[:n] = data[:n]
        self.end += n
        return n

    def waiting(self):
        """What the reader waits for when next() gave None: 0 a request (nothing of one in), 1
        the rest of a head, 2 a body (its head is in)."""
        st = self.state
        if st == EXPECT_HEAD:
            return 1 if self.end > self.start else 0
        return 2 if st < BROKEN else 1

    def take_continue(self):
        """True once when the head asked "Expect: 100-continue" and its body has not started:
        the shell sends "100 Continue" then."""
        c = self.need_continue
        self.need_continue = False
        return c

    def fail(self, status, reason):
        """Refuse the request: nothing more is parsed on this connection."""
        self.state = BROKEN
        raise HTTPError(status, reason)

    # ---- the buffer's narrow interface, for the body steps (body.py) and WebSocket frames ----

    def have(self):
        """How many received bytes are not consumed yet."""
        return self.end - self.start

    def take(self, n):
        """Up to n unconsumed bytes (a memoryview into the buffer: use it before the next
        receive), consumed."""
        s = self.start
        e = self.end if self.end - s < n else s + n
        self.start = e
        return self.mv[s:e]

    def peek(self, n):
        """The next n unconsumed bytes (a memoryview), not consumed; None while fewer are in."""
        s = self.start
        return self.mv[s : s + n] if self.end - s >= n else None

    def line(self, limit, why):
        """The next CRLF-ended line (bytes, without its CRLF), consumed; None until its end is
        in. A line longer than limit, or with a bare LF, is refused (400 why) as soon as seen."""
        buf = self.buf
        s = self.start
        i = buf.find(b"\r\n", s, self.end)
        if i < 0:
            if self.end - s > limit + 1 or buf.find(b"\n", s, self.end) >= 0:
                self.fail(400, why)
            return None
        if i - s > limit:
            self.fail(400, why)
        self.start = i + 2
        return bytes(self.mv[s:i])

    @micropython.native
    def next(self):
        """The next complete Request, None when more bytes are needed; HTTPError to refuse."""
        while True:
            r = _STEPS[self.state](self)
            if r is not AGAIN:
                return r


    def _framing(self, req):
        raw = req.raw
        conn = raw.get("connection")
        if conn is not None:
            tokens = _USUAL_CONNECTION.get(conn) or _tokens(conn)
            if req.version == "HTTP/1.1":
                req.keep_alive = b"close" not in tokens
            else:
                req.keep_alive = b"keep-alive" in tokens
        if req.version == "HTTP/1.1" and "host" not in raw:
            self.fail(400, _NO_HOST)
        te = raw.get("transfer-encoding")
        cl = raw.get("content-length")
        if te is not None:
            if cl is not None:
                self.fail(400, _LENGTH_AND_CODING)
            if req.version != "HTTP/1.1":
                self.fail(400, _CODING_IN_10)
            codings = _tokens(te)
            if codings != [b"chunked"]:
                # RFC 9112 6.3: chunked must be the last coding, once; other codings: not here
                if b"" in codings or b"chunked" in codings[:-1]:
                    self.fail(400, _BAD_CODING)
                self.fail(501, _UNKNOWN_CODING)
            streamed = self._admit(req)
            self.req = req
            self.body = None if streamed else bytearray()
            self.body_len = 0
            self.state = EXPECT_CHUNK_SIZE
            self.need_continue = self._expects(req)
            return req if streamed else AGAIN
        if cl is not None:
            if not cl or not cl.isdigit():  # bytes: ASCII digits only
                self.fail(400, _BAD_LENGTH)
            cl = cl.lstrip(b"0") or b"0"
            if len(cl) > _MAX_DEC_DIGITS:
                self.fail(413, _BODY_TOO_LARGE)
            n = int(cl)
            if n:
                streamed = self._admit(req)
                if n > self.limit:
                    self.fail(413, _BODY_TOO_LARGE)
                self.req = req
                self.body_len = 0
                self.remaining = n
                self.state = EXPECT_BODY
                self.need_continue = self._expects(req)
                return req if streamed else AGAIN
        return req

    def _admit(self, req):
        # the app's say before the body: a streamed one is the handler's to read (req.stream is
        # True until the session gives it the stream), with its route's limit
        self.limit = self.cfg.max_body_bytes
        if self.admit is None:
            return False
        try:
            limit = self.admit(req)
        except HTTPError:
            self.state = BROKEN
            raise
        if limit is None:
            return False
        self.limit = limit
        req.stream = True
        return True

    def _expects(self, req):
        e = req.raw.get("expect")
        if e is None:
            return False
        if e.lower() != b"100-continue":
            self.fail(400, _BAD_EXPECT)
        return req.version == "HTTP/1.1" and self.end == self.start


def _body(r):
    # the first request with a body: body.py's steps take the body states' places in the table
    from nostall.body import STEPS

    _STEPS[EXPECT_BODY : EXPECT_TRAILER + 1] = STEPS
    return AGAIN


def _broken(r):
    raise HTTPError(400, _BROKEN)


# What next() runs in each reader state: a step returns a Request, None (needs more bytes) or
# AGAIN (it moved to another state: run that one), or raises HTTPError.
_STEPS = [request_head, _body, _body, _body, _body, _body, _broken]
