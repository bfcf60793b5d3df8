# The asyncio shell of one connection: it moves bytes and waits, nothing else. The connection's
# Session (session.py, sans-IO) says what to do next; this does it with the socket, and closes
# the socket in one place, close(), on every path.
#
# Waits cost no task and no allocation: each connection has one Waiter (waiter.py), reused for
# every read and write, and its deadlines are the pool's (one ticker cancels the task whose
# state has lasted too long). MicroPython's asyncio streams are not used: their close() does not
# close, and a failing handler leaves the socket open until GC.
#
# A long-lived protocol (websocket.py, events.py) gets this shell and its session: it receives
# with recv() into the session's buffer and sends with send(); its state changes are the
# session's (opened, alive, ping_due, closing).

# pyright: reportGeneralTypeIssues=false
# (it says a Waiter "is not awaitable": MicroPython awaits anything with __next__, see waiter.py)

from asyncio import core  # pyright: ignore[reportAttributeAccessIssue] - MicroPython's asyncio.core

from nostall import sockets
from nostall.lifecycle import ERROR
from nostall.response import Response
from nostall.session import HANDLER_TIMEOUT, LONG, RECV, RUN, SEND, Session
from nostall.waiter import DONE, Waiter

CancelledError = core.CancelledError


class Connection:
    """A socket, its Waiter and its Session (the pool slot)."""

    def __init__(self, server, pool):
        self.server = server
        self.session = s = Session(server, pool, self)
        self.io = Waiter(s.progress)
        self.sock = None

    def attach(self, sock):
        self.session.attach()
        self.sock = sock
        self.io.task = None
        self.io.woken = False  # a channel's wake() for the connection before this one

    async def serve(self):
        # one coroutine for the connection's requests (a nested one would cost every open
        # connection another frame on the heap, and every request a generator)
        s = self.session
        io = self.io
        reason = None
        try:
            s.started = True
            if s.cancelled is not None:  # evicted or timed out before this task first ran
                reason = s.cancelled
                return
            a = s.next()
            while True:
                if a == RECV:
                    a = s.next(await io.recv(self.sock, s.space()))
                    continue
                if a == SEND:
                    await io.send(self.sock, s.out)
                elif a == RUN:
                    resp = self.server.app.call(s.req)
                    if not isinstance(resp, Response):  # an async handler: awaited
                        resp = await self._handler(resp)
                    a = s.respond(resp)
                    resp = None  # this frame stays while the connection idles: it keeps nothing
                    continue
                elif a == LONG:
                    resp = s.resp
                    s.long_done(await resp.protocol(self, s.req, resp))
                else:  # CLOSE
                    reason = s.reason
                    return
                a = s.next()
        except CancelledError:
            reason = s.failed()
        except (OSError, MemoryError) as e:
            reason = s.failed(e)
        finally:
            self.close(reason or s.reason or ERROR)

    async def _handler(self, pending):
        # an async handler, in HANDLER (its deadline); a frame of its own only while one runs, so
        # the frame every open connection keeps stays small
        s = self.session
        s.handling()
        try:
            return await pending
        except CancelledError:
            if s.cancelled != HANDLER_TIMEOUT:  # the ticker's, at HANDLER's deadline: a 503
                raise
            return s.timed_out()

    def close(self, reason):
        """Close the socket (the one place it is closed) as the session says, count the reason."""
        sock = self.sock
        if sock is None:
            return
        self.sock = None
        self.io.clear()
        abortive, forced = self.session.ended(reason)
        self.server.stats.ended(reason, sockets.close(sock, abortive, forced))

    # ---- for long-lived protocols ----

    async def recv(self):
        """Receive into the session's buffer: the bytes' count, 0 at EOF, None when woken."""
        n = await self.io.recv(self.sock, self.session.space())
        if n:
            self.session.buffered(n)
        return n

    async def send(self, data):
        """Send data; a client slow to take it gets write_timeout_ms (WRITE) meanwhile."""
        w = self.io.send(self.sock, data)
        if w is not DONE:
            s = self.session
            state = s.writing()
            await w
            s.resume(state)

    # ---- for the session ----

    def in_flight(self):
        # the pool asks this every tick while a state that waits for the client to close once it
        # has our last bytes (LINGER, WS_CLOSED) looks for their acknowledgement
        return sockets.unacked(self.sock)

    def input_waiting(self):
        # the pool asks before judging a NEW connection silent: its request may be in the socket,
        # unread while the event loop was held up
        return self.sock is not None and sockets.readable(self.sock)

    def wake(self):
        self.io.wake()
