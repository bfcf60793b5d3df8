# One connection's HTTP, sans-IO (h11's Connection is the model): no socket, no asyncio. A
# Session is the connection's pool slot (pool.py): it owns the receive buffer and its request
# reader, the framing plan of each answer and every state change, and tells the shell
# (connection.py) what to do next:
#
#     RECV   receive into space(), then next(n) (n bytes came; 0: the client's EOF)
#     SEND   send out, then ask next() again
#     RUN    run the app: respond(app.call(req)); an async handler's awaitable is awaited after
#            handling() (HANDLER: its deadline; timed_out() when the ticker cut it)
#     LONG   the response's protocol (a WebSocket, an event stream) takes the connection:
#            await protocol(conn, req, resp), then long_done(eof)
#     CLOSE  close the socket: ended(reason) says how
#
# What a session holds, the pool's calls and how it ends are lifecycle.py's, which names the close
# reasons a session gives (pool.py names the timeouts' and evictions'); every state change is here.
# Long-lived protocols reach the session only through opened(), alive(), ping_due(), closing()
# and the shell's recv()/send(); the core never branches on which protocol it is.

import gc

import micropython
from micropython import const

from nostall.framing import CHUNKED, COALESCE_BYTES, CONTINUE, EOF, LAST_CHUNK, NONE, chunk, closing, plan
from nostall.lifecycle import EOF_DELIMITED_BODY, HANDLER_TIMEOUT, LINGER_OVERFLOW, MEMORY, PROTOCOL_ERROR, SHUTDOWN, STREAM_ERROR, Lifecycle
from nostall.request import HTTPError
from nostall.response import close_stream, error_kind, error_response
from nostall.stats import CLIENT
from nostall.ticks import ticks_diff

# what the shell does next (the module comment)
RECV = 0
SEND = 1
RUN = 2
LONG = 3
CLOSE = 4

# pool.py's states this module names, as consts (test_consts.py checks their numbers)
_NEW = const(1)
_IDLE = const(2)
_HEAD = const(3)
_BODY = const(4)
_HANDLER = const(5)
_WRITE = const(6)
_LINGER = const(7)
_WS = const(8)
_WS_CLOSED = const(10)
_WS_PING = const(11)

# what it says, as numbers: their words are words.py's rows
_HANDLER_TOO_LONG = const(36)
_TOO_MANY_LONG = const(38)

# the long-lived cap's 503: a WebSocket or stream slot frees when a tab closes, rarely within
# a second; browsers' own reconnects then wait longer anyway
_RETRY_LATER = const((("Retry-After", "5"),))


class Session(Lifecycle):
    """One connection's protocol state in one pool slot. See the module comment.

    Example (a shell that moves bytes; host_tests/unit/test_session.py has a whole one)::

        s.attach()
        a = s.next()
        while True:
            if a == RECV: a = s.next(sock.readinto(s.space())); continue
            elif a == SEND: sock.write(s.out)
            elif a == RUN: a = s.respond(app_answer(s.req)); continue
            elif a == CLOSE: abortive, forced = s.ended(s.reason); break
    """

    # ---- the shell's questions ----

    @micropython.native
    def next(self, n=None):
        """What the shell does next: RECV, SEND, RUN, LONG or CLOSE. n: after a RECV, how many
        bytes came into space() (0: the client's EOF)."""
        if n is not None:
            if n == 0:
                self.reason = CLIENT  # the close we want (mid-request: the client gave up)
                return CLOSE
            st = self.state
            if st == _LINGER or st == _WS_CLOSED:
                self.reader.reset()  # dropped: what a client sends while it should close
                self._budget -= n
                if self._budget > 0:
                    return RECV
                self.reason = self._why or LINGER_OVERFLOW
                return CLOSE
            self.reader.end += n  # the reader's added(n), without the call
            return self._read()
        if self.reason is not None:
            return CLOSE
        st = self.state
        if st == _WRITE:
            return self._write()
        if st == _LINGER or st == _WS_CLOSED:
            return RECV
        return self._read()

    # ---- reading requests ----

    @micropython.native
    def _read(self):
        r = self.reader
        try:
            req = r.next()
        except HTTPError as e:
            # its framing is lost (or its body refused before it came): answer, then end the
            # connection as after "Connection: close"
            return self._refuse(e.status, closing(error_response(e.status, e.reason, e.headers)), PROTOCOL_ERROR)
        except MemoryError:
            # no room to take this head apart now: the same, with the 503 built at start-up
            gc.collect()
            return self._refuse(503, self.server.busy_answer, MEMORY)
        if req is not None:
            self.req = req
            self.requests += 1
            pool = self.pool
            pool._lru += 1  # pool.touch(self), without the call: now the most recently used
            self.used = pool._lru
            if req.stream is not None:  # its body comes while its handler reads it
                self._streamed(req)
            # HANDLER (and its deadline) only for a handler that waits (handling()): a plain one
            # runs to its end before anything else can look at this slot
            return RUN
        st = self.state
        w = r.waiting()
        if w == 2:
            # the head may have come in the same read as the request's first byte: the body's
            # timeout applies now, not the head's
            if st != _BODY:
                self.enter(_BODY)
            if r.take_continue():
                self.out = CONTINUE
                return SEND
        elif st == _NEW or st == _IDLE:
            if w:
                self.enter(_HEAD)
            elif self.server.stopping:
                self.reason = SHUTDOWN
                return CLOSE
        # space() is never empty here: a head that fills the buffer gets a larger one, or its 431
        return RECV

    def _streamed(self, req):
        from nostall.bodystream import BodyStream  # the first streamed body imports it

        req.stream = BodyStream(self.conn, self, self.reader)

    def _refuse(self, status, answer, why):
        self.server.stats.answered(status)
        self.enter(_WRITE)
        self._keep = False
        self._why = why
        self.out = answer
        return SEND

    # ---- answering ----

    def handling(self):
        """The handler waits (an async one): HANDLER, with handler_timeout_ms."""
        self.enter(_HANDLER)

    def timed_out(self):
        """The app ran past handler_timeout_ms: its 503 (the connection goes on)."""
        self.cancelled = None
        self.server.stats.handler_error("timeout", self.req.path, None)
        return error_response(503, _HANDLER_TOO_LONG)

    @micropython.native
    def respond(self, resp):
        """The app's Response to req: the head is planned, what to send is queued; returns
        what the shell does next (SEND the head, or LONG)."""
        server = self.server
        stats = server.stats
        req = self.req
        if self.cancelled == HANDLER_TIMEOUT:  # the handler swallowed the cancellation
            self.cancelled = None
        if self.reader.req is not None:  # a streamed body, not read to its end
            if self.reason is not None:  # the client left mid-body: no one to answer
                return CLOSE
            from nostall.body import drop  # a streamed body: body.py is loaded already

            if not drop(self.reader):  # more of it is still to come: the answer closes
                req.keep_alive = False
        if resp.protocol is not None:
            cfg = server.cfg
            if self.pool.long_lived() < min(cfg.max_long_lived_connections, self.pool.cap - 1):
                stats.requests += 1
                self.long_lived = True
                self.resp = resp
                self.enter(_WRITE)  # its head goes out first, the protocol's
                return LONG
            resp = error_response(503, _TOO_MANY_LONG, _RETRY_LATER)
        stream = None
        piece = None
        if resp.streamed and req.method != "HEAD":
            stream, piece, resp = self._first_piece(req, resp)  # a stream failing at once: a 500
        elif resp.stream is not None:
            close_stream(resp.stream)
        stats.requests += 1
        if resp.status >= 400:
            stats.answered(resp.status)
            if req.error is not None and resp.status == 500:
                stats.handler_error(error_kind(req.error), req.path, req.error)
        cap = server.cfg.max_requests_per_connection
        left = 0 if server.stopping else (cap - self.requests if cap else None)
        head, mode, self._keep = plan(req, resp, left, server.idle_s, COALESCE_BYTES)
        self.enter(_WRITE)
        if mode == NONE:
            self.out = head
        elif stream is None:
            self.out = head  # with the body when it is short: plan() joined them, one write
            body = resp.body
            if len(body) > COALESCE_BYTES:  # a second send, not copied
                self._body = body
        else:
            self.out = head
            self._stream = stream
            self._piece = piece
            self._chunked = mode == CHUNKED
            if mode == EOF:
                self._keep = None  # the close is the end of this body
        return SEND

    @micropython.native
    def _write(self):
        # WRITE: the rest of the answer, piece by piece, then what follows it
        body = self._body
        if body is not None:
            self._body = None
            self.out = body
            return SEND
        if self._stream is not None:
            try:
                piece = self._next_piece()
            except Exception as e:  # the stream's own fault after the head went out: cut it short
                self.server.stats.handler_error("stream", "-", e)
                self.reason = STREAM_ERROR
                return CLOSE
            if piece is not None:
                self.enter(_WRITE)  # a slow client must not look like a stalled handler
                self.out = chunk(piece) if self._chunked else piece
                return SEND
            self._end_stream()
            if self._chunked:
                self.out = LAST_CHUNK
                return SEND
        keep = self._keep
        if keep is None:
            self.reason = EOF_DELIMITED_BODY
            return CLOSE
        self.req = None  # answered: an idle connection keeps nothing of it (nor of its bytes)
        self.out = b""
        if keep:
            self.enter(_IDLE)
            return self._read()  # a request already in the buffer (pipelining) at once
        self.enter(_LINGER)
        self._drain()
        return RECV

    # ---- long-lived protocols (websocket.py, events.py) ----

    def opened(self, state, handler=None):
        """The protocol took over: WS or STREAM; handler: its object (wake(), ended())."""
        self.handler = handler
        self.enter(state)

    def alive(self):
        """A WebSocket's client sent a frame: it is there, its ping timer starts again."""
        self.enter(_WS)

    def ping_due(self):
        """A WebSocket ping goes out now: the client has ws_pong_timeout_ms to answer."""
        self.enter(_WS_PING)

    def closing(self, answered):
        """A WebSocket's close frame went out: wait for the client's (LINGER), or, the handshake
        done or failed (answered), for its TCP close (WS_CLOSED)."""
        self.enter(_WS_CLOSED if answered else _LINGER)

    def long_done(self, eof):
        """The protocol returned; eof: the client closed TCP. A close handshake lingers."""
        self.resp = None
        st = self.state
        if eof or (st != _LINGER and st != _WS_CLOSED):
            self.reason = CLIENT
        else:
            self._drain()

    def buffered(self, n):
        """A protocol's receive put n bytes into the buffer (its reader takes them from there)."""
        self.reader.added(n)

    def drop(self):
        """What the client sent is of no use (an event stream's client): dropped."""
        self.reader.reset()

    def overdue(self):
        """The state's deadline has passed (STREAM: a heartbeat is due)."""
        return ticks_diff(self.pool.clock(), self.deadline) >= 0

    def writing(self):
        """A long-lived write must wait for the client: WRITE (write_timeout_ms) meanwhile;
        returns the state to resume()."""
        st = self.state
        self.enter(_WRITE)
        return st

    def resume(self, state):
        self.enter(state)

    def progress(self):
        # a send that had to wait moved on: WRITE's deadline counts from the last progress
        if self.state == _WRITE:
            self.enter(_WRITE)

