# One client connection in one pool slot: read requests, run the app, send each answer as
# framing.plan() says, and when the connection must end, wait (bounded) for the client to close
# first (linger), so the TIME_WAIT lands on the client. The socket is closed in one place,
# Connection.close(), on every path.
#
# Waits cost no task and no allocation: each connection has one Waiter (waiter.py), reused for
# every read and write, and its deadlines are the pool's (one ticker cancels the task whose
# state has lasted too long). MicroPython's asyncio streams are not used: their close() does not
# close, and a failing handler leaves the socket open until GC.

# pyright: reportGeneralTypeIssues=false
# (it says a Waiter "is not awaitable": MicroPython awaits anything with __next__, see waiter.py)

import gc

from asyncio import core  # pyright: ignore[reportAttributeAccessIssue] - MicroPython's asyncio.core

from nostall import sockets
from nostall.framing import CHUNKED, COALESCE_BYTES, CONTINUE, EOF, LAST_CHUNK, NONE, chunk, closing, plan, response_head
from nostall.pool import ABORTIVE, BODY, HANDLER, HEAD, IDLE, LINGER, NEW, STREAM, WRITE, WRITE_TIMEOUT, WS, WS_CLOSED, Slot
from nostall.proto import RequestReader
from nostall.request import HTTPError
from nostall.response import close_stream, error_kind, error_response, next_piece
from nostall.static import file_pieces
from nostall.stats import CLIENT, RESET
from nostall.waiter import DONE, Waiter

CancelledError = core.CancelledError

_RESETS = (104, 32, 128)  # ECONNRESET, EPIPE, ENOTCONN: the same numbers on Linux and lwIP
# the long-lived cap's 503: a WebSocket or stream slot frees when a tab closes, rarely within
# a second; browsers' own reconnects then wait longer anyway
_RETRY_LATER = (("Retry-After", "5"),)

class _Closed(Exception):
    """The connection ends now, for the reason in args[0]; nothing more is sent."""


class Connection(Slot):
    """A pool slot with its connection: receive buffer and reader, Waiter, socket."""

    def __init__(self, server, pool):
        Slot.__init__(self, pool)
        self.server = server
        self.reader = RequestReader(server.cfg)
        self.io = Waiter(self._progress)
        self.sock = None
        self.requests = 0
        self.ws = None

    def attach(self, sock):
        self.sock = sock
        self.reader.reset()
        self.requests = 0
        self.ws = None
        self.io.task = None
        self.io.woken = False  # a channel's wake() for the connection before this one

    def in_flight(self):
        # the pool asks this every tick while a state that waits for the client to close once it
        # has our last bytes (LINGER, WS_CLOSED) looks for their acknowledgement
        return sockets.unacked(self.sock)

    def _progress(self):
        if self.state == WRITE:
            self.enter(WRITE)  # its deadline counts from the last progress

    async def serve(self):
        # one coroutine for the connection's requests (a nested one would cost every open
        # connection another frame on the heap, and every request a generator); only its end
        # (_linger, _refuse) has frames of its own. Every path ends in close(reason)
        reason = "error"
        reader = self.reader
        try:
            self.started = True
            if self.cancelled is not None:  # evicted or timed out before this task first ran
                reason = self.cancelled
                return
            while True:
                try:
                    req = reader.next()
                except HTTPError as e:
                    # its framing is lost: answer, then end the connection as after "Connection: close"
                    reason = await self._refuse(e.status, closing(error_response(e.status, e.reason)), "protocol_error")
                    return
                except MemoryError:
                    # no room to take this head apart now: the same, with the 503 built at start-up
                    gc.collect()
                    reason = await self._refuse(503, self.server.busy_answer, "memory")
                    return
                if req is not None:
                    await self._respond(req)
                    if self.state == LINGER or self.state == WS_CLOSED:
                        reason = await self._linger()
                        return
                    self.enter(IDLE)
                    continue
                if reader.body_due():
                    # the head may have come in the same read as the request's first byte: the
                    # body's timeout applies now, not the head's
                    if self.state != BODY:
                        self.enter(BODY)
                    if reader.take_continue():
                        await self.io.send(self.sock, CONTINUE)
                elif self.state == NEW or self.state == IDLE:
                    if reader.pending():
                        self.enter(HEAD)
                    elif self.server.stopping:
                        reason = "shutdown"
                        return
                # space() is never empty here: the reader refuses a head before it fills the buffer
                n = await self.io.recv(self.sock, reader.space())
                if n == 0:
                    reason = CLIENT  # the client closed first: the close we want (mid-request: it gave up)
                    return
                reader.added(n)
        except CancelledError:
            reason = self.cancelled or "shutdown"
        except _Closed as e:
            reason = e.args[0]
        except OSError as e:
            reason = self.cancelled or (RESET if e.args[0] in _RESETS else "error")
        except MemoryError:
            reason = "memory"
            gc.collect()
        finally:
            self.close(reason)

    async def _refuse(self, status, answer, why):
        # a request refused: answer, then linger; why: the close reason unless the client closes
        self.server.stats.answered(status)
        self.enter(WRITE)
        await self.io.send(self.sock, answer)
        self.enter(LINGER)
        reason = await self._linger()
        return reason if reason == CLIENT else why

    async def _linger(self):
        # LINGER (or WS_CLOSED): drop what the client still sends until its EOF, so it closes
        # first. A frame of its own only while a connection ends
        reader = self.reader
        reader.reset()
        space = reader.space()
        budget = self.server.cfg.linger_drain_bytes
        while budget > 0:
            n = await self.io.recv(self.sock, space)
            if n == 0:
                return CLIENT
            budget -= n
        return "linger_overflow"

    def close(self, reason):
        """Close the socket (the one place it is closed), free the slot, count how it ended.
        A close the server makes first with nothing of its own in flight is a reset: no
        TIME_WAIT on the board (sockets.py)."""
        s = self.sock
        if s is None:
            return
        self.sock = None
        self.io.clear()
        self.reader.reset()  # a slot at rest keeps nothing of its last connection (its request)
        ws = self.ws
        if ws is not None:
            # however it ended (a reset, EOF, a timeout): off its channel, or the channel would
            # wake the next connection in this slot mid-request; and its message buffer goes now
            self.ws = None
            if ws.channel is not None:
                ws.channel.unfollow(self)
        state = self.state
        # a reset where the server closes first with nothing of its own in flight, or where its
        # client stopped reading (then forced); never where the close itself ends the body or
        # cuts it short (stream_error: the client reads on and must see the cut, after the data)
        first = reason != CLIENT and reason != RESET and reason != "eof_delimited_body"
        force = first and (reason == WRITE_TIMEOUT or (reason != "stream_error" and (state == WRITE or state == WS or state == STREAM)))
        self.pool.release(self)
        self.server.stats.ended(reason, sockets.close(s, first and (ABORTIVE[state] or force), force))

    async def _respond(self, req):
        server = self.server
        stats = server.stats
        self.requests += 1
        self.pool.touch(self)
        self.enter(HANDLER)
        try:
            resp = await server.app.dispatch(req)
            if self.cancelled == "handler_timeout":  # the handler swallowed the cancellation
                self.cancelled = None
        except CancelledError:
            if self.cancelled != "handler_timeout":
                raise
            self.cancelled = None
            stats.handler_error("timeout", req.path, None)
            resp = error_response(503, "handler took too long")
        if resp.websocket is not None or resp.events is not None:
            cfg = server.cfg
            if self.pool.long_lived() < min(cfg.max_long_lived_connections, len(self.pool.slots) - 1):
                stats.requests += 1
                return await self._long_lived(req, resp)
            resp = error_response(503, "too many WebSocket and event-stream clients", _RETRY_LATER)
        stream = None
        first = None
        if resp.streamed and req.method != "HEAD":
            # the first piece before the head: a stream that fails at once still gets a 500
            try:
                if resp.stream is None:
                    stream = file_pieces(resp.file, server.cfg.send_chunk_bytes)
                else:
                    stream = iter(resp.stream)
                first = next_piece(stream)
            except Exception as e:
                close_stream(stream)
                close_stream(resp.stream)
                stream = None
                req.error = e
                resp = error_response(500, "handler's stream failed")
        elif resp.stream is not None:
            close_stream(resp.stream)
        stats.requests += 1
        if resp.status >= 400:
            stats.answered(resp.status)
            if req.error is not None and resp.status == 500:
                stats.handler_error(error_kind(req.error), req.path, req.error)
        cap = server.cfg.max_requests_per_connection
        left = 0 if server.stopping else (cap - self.requests if cap else None)
        head, mode, keep = plan(req, resp, left, server.idle_s)
        self.enter(WRITE)
        io = self.io
        sock = self.sock
        if mode == NONE:
            await io.send(sock, head)
        elif stream is None:
            body = resp.body
            if len(body) <= COALESCE_BYTES:
                await io.send(sock, head + body)
            else:
                await io.send(sock, head)
                await io.send(sock, body)
        else:
            await io.send(sock, head)
            await self._send_stream(stream, first, mode == CHUNKED)
            if mode == EOF:
                raise _Closed("eof_delimited_body")  # the close is the end of this body
        if not keep:
            self.enter(LINGER)

    async def _long_lived(self, req, resp):
        # a WebSocket (after its 101) or an event stream, until it ends: the connection then
        # lingers (WebSocket: the close handshake) or is over (the client went away)
        self.long_lived = True
        io = self.io
        self.enter(WRITE)
        if resp.websocket is not None:
            from nostall.websocket import WebSocket  # imported by the first WebSocket: RAM only then

            await io.send(self.sock, response_head(101, resp.headers, None, NONE, True))
            ws = self.ws = WebSocket(self, req)
            self.enter(WS)
            try:
                await resp.websocket(req, ws, **resp.params)
            except (CancelledError, OSError):
                raise
            except Exception as e:  # the app's fault: 1011, and the connection ends as usual
                self.server.stats.handler_error(error_kind(e), req.path, e)
                await ws.close(1011)
            await ws.close(1000)
            if ws.eof or (self.state != LINGER and self.state != WS_CLOSED):
                raise _Closed(CLIENT)  # the client closed TCP (without a close frame, or after it)
            return
        from nostall.events import serve_events  # imported by the first event stream

        await serve_events(self, req, resp)
        raise _Closed(CLIENT)  # an event stream ends only when its client goes

    async def send_long(self, data):
        # a WebSocket's or event stream's write: a client slow to read gets write_timeout_ms
        # (WRITE) while it is awaited, then the connection is back in its state
        w = self.io.send(self.sock, data)
        if w is not DONE:
            state = self.state
            self.enter(WRITE)
            await w
            self.enter(state)

    def wake(self):
        # the ticker, at the deadline of a WebSocket (a ping, or the client is gone) or of an
        # event stream (a heartbeat is due)
        if self.state == WS:
            if not self.ws.timeout():
                self.cancel("ws_timeout")
        else:
            self.io.wake()  # its deadline stays passed until the heartbeat goes out (events.py)

    def notify(self):
        # a channel this connection follows published a message
        self.io.wake()

    async def _send_stream(self, stream, piece, chunked):
        io = self.io
        sock = self.sock
        try:
            while piece is not None:
                if piece:
                    await io.send(sock, chunk(piece) if chunked else piece)
                    self.enter(WRITE)  # a slow client must not look like a stalled handler
                piece = next_piece(stream)
            if chunked:
                await io.send(sock, LAST_CHUNK)
        except (CancelledError, OSError):
            raise
        except Exception as e:  # the stream's own fault after the head went out: cut it short
            self.server.stats.handler_error("stream", "-", e)
            raise _Closed("stream_error")
        finally:
            close_stream(stream)
