# A request body read while it comes: req.stream on a route declared with stream=<limit>
# (web.App.route). The bytes go from the socket into the slot's receive buffer and from there,
# decoded (Content-Length or chunked, body.piece), into what the handler reads: the body is never
# held whole, and what the board holds for it is the slot's buffer and the handler's own.
#
# Time: while the handler waits for bytes the slot is in BODY, whose body_timeout_ms counts from
# the last bytes that came (an upload that moves, however slowly, is never cut; one that stalls
# is); between its reads it is in HANDLER (handler_timeout_ms from then). "100 Continue" goes out
# at the first read: the route, the token and the size were accepted before (App.admit), and a
# handler that refuses without reading never makes the client send its body.
# pyright: reportGeneralTypeIssues=false
# (it says a Waiter "is not awaitable": MicroPython awaits anything with __next__, see waiter.py)

from nostall.body import piece, plain, took
from nostall.framing import CONTINUE
from nostall.pool import BODY, HANDLER
from nostall.proto import EXPECT_BODY
from nostall.stats import CLIENT


class BodyStream:
    """The body of a streamed request. length: its Content-Length (None when chunked);
    received: the bytes read so far.

    Example::

        block = bytearray(4096)
        while True:
            n = await req.stream.readinto(block)   # fills block, less only at the end
            if not n:
                break
            f.write(memoryview(block)[:n])

    EOFError when the client closes before its body's end (nothing is answered then); HTTPError
    (400, 413) for a malformed chunked body or one over the route's limit.
    """

    def __init__(self, conn, session, reader):
        self._conn = conn
        self._session = session
        self._reader = reader
        self.length = reader.remaining if reader.state == EXPECT_BODY else None
        self.received = 0

    async def read(self, n=4096):
        """Up to n bytes as they come (at least 1), b"" at the body's end."""
        p = await self._piece(n)
        return bytes(p) if p else b""

    async def readinto(self, buf):
        """Fill buf (bytearray or memoryview); returns how many bytes, fewer than len(buf) only
        at the body's end (0: it has ended). While nothing is buffered and the body's bytes are
        plain (Content-Length, or inside a chunk) they go from the socket straight into buf: no
        copy, and receives as large as buf."""
        mv = memoryview(buf)
        got = 0
        size = len(mv)
        r = self._reader
        while got < size:
            left = plain(r)
            if left and not r.have():
                k = size - got
                n = await self._recv(mv[got : got + (k if k < left else left)])
                if n:
                    took(r, n)
                    self.received += n
                    got += n
                continue
            p = await self._piece(size - got)
            if not p:
                break
            k = len(p)
            mv[got : got + k] = p
            got += k
        return got

    async def _piece(self, n):
        r = self._reader
        while True:
            p = piece(r, n)
            if p is not None:
                self.received += len(p)
                return p
            await self._recv(None)

    async def _recv(self, into):
        # the client's next bytes: into the reader's buffer (into None), else into into; BODY
        # while waiting (body_timeout_ms from now: the last bytes' arrival), HANDLER after
        s = self._session
        conn = self._conn
        if s.state != BODY:
            s.enter(BODY)
        if self._reader.take_continue():
            w = conn.io.send(conn.sock, CONTINUE)
            if w:  # a Waiter: it must wait (waiter.DONE, all sent, is an empty tuple)
                await w
        if into is None:
            n = await conn.recv()
        else:
            n = await conn.io.recv(conn.sock, into)
        if n == 0:
            s.reason = CLIENT  # it gave up: the close we want, and no answer
            raise EOFError("the client closed before the end of its body")
        if n:
            s.enter(HANDLER)
        return n or 0
