# One WebSocket connection (RFC 6455), in the connection's own task: the handshake, then the app's
# handler, which reads with receive() and writes with send(). There is no task per WebSocket
# beyond the connection's: receive() reads frames, answers pings, takes part in the close
# handshake, and, for a WebSocket that follows a Channel, sends the channel's new messages
# whenever it is woken. A handler therefore keeps calling receive() for as long as it wants the
# connection (a push-only handler: follow a channel and loop on receive()).
#
# Dead and slow clients: the server pings a client silent for ws_ping_interval_ms and drops it
# when nothing comes back within ws_pong_timeout_ms; a send that waits longer than
# write_timeout_ms on a client that stopped reading drops it too (a reset).

# pyright: reportGeneralTypeIssues=false
# (it says a Waiter "is not awaitable": MicroPython awaits anything with __next__, see waiter.py)

from nostall.framing import COALESCE_BYTES, NONE, response_head
from nostall.pool import WS
from nostall.response import Response, error_kind
from nostall.wsproto import BINARY, CLOSE, PING, PONG, TEXT, FrameReader, WSError, close_frame, frame, frame_head


async def serve_websocket(conn, req, resp):
    """The 101, then the route's handler with its WebSocket, then the close handshake; True when
    the client closed TCP (without a close frame, or after it)."""
    session = conn.session
    await conn.send(response_head(101, resp.headers, None, NONE, True))
    ws = WebSocket(conn, req)
    session.opened(WS, ws)
    try:
        await resp.handler(req, ws, **resp.params)
    except OSError:
        raise
    except Exception as e:  # the app's fault: 1011, and the connection ends as usual
        session.server.stats.handler_error(error_kind(e), req.path, e)
        await ws.close(1011)
    await ws.close(1000)
    return ws.eof


class Upgrade(Response):
    """The 101 answer of a WebSocket route: the connection then runs handler(req, ws, **params)."""

    protocol = staticmethod(serve_websocket)

    def __init__(self, handler, params, headers):
        Response.__init__(self, b"", 101, headers)
        self.handler = handler
        self.params = params


class WebSocket:
    """The app's end of one WebSocket connection.

    Example::

        @app.websocket("/ws/echo")
        async def echo(req, ws):
            while True:
                msg = await ws.receive()      # str, bytes, or None once closed
                if msg is None:
                    return
                await ws.send(msg)
    """

    def __init__(self, conn, req):
        self.conn = conn
        self.session = session = conn.session
        self.req = req
        self.frames = FrameReader(session.reader, session.server.cfg.ws_max_message_bytes)
        self.closed = False  # no more messages either way
        self.close_code = None  # what the client's close frame said (1005: nothing)
        self.channel = None
        self.seen = 0  # id of the channel's last message sent
        self.ping_due = False  # the ticker asked for a ping (sent from within receive())
        self.ping_sent = False  # it went out, and no frame came back since
        self.eof = False  # the client closed TCP: nothing more to read (lwIP: a second recv() fails)

    # ---- the app's API ----

    async def receive(self):
        """The next message from the client (str for text, bytes for binary), or None once the
        connection is closed. Pings are answered and a followed channel's messages sent meanwhile."""
        conn = self.conn
        while not self.closed:
            try:
                ev = self.frames.next()
            except WSError as e:
                await self._fail(e.code, e.reason)
                return None
            if ev is None:
                if self.channel is not None:
                    await self._send_channel()
                if self.ping_due:
                    self.ping_due = False
                    self.ping_sent = True
                    await conn.send(frame(PING, b""))
                n = await conn.recv()
                if n == 0:
                    self.closed = self.eof = True  # the client went away without a close frame
                    return None
                if n:
                    self._alive()
                continue
            op, data = ev
            if op == TEXT or op == BINARY:
                return data
            if op == PING:
                await self.conn.send(frame(PONG, data))
            elif op == CLOSE:
                self.close_code = data[0]
                await self._closing(1000 if data[0] == 1005 else data[0], answered=True)
                return None
            # PONG: the client is alive; that is all
        return None

    async def send(self, data):
        """Send a message: str as text, bytes as binary. Waits while the client is slow to take
        it (up to write_timeout_ms: then the client is dropped)."""
        if self.closed:
            raise OSError(32, "WebSocket closed")  # EPIPE
        op = BINARY
        if isinstance(data, str):
            data = data.encode()
            op = TEXT
        if len(data) <= COALESCE_BYTES:
            await self.conn.send(frame(op, data))
        else:  # head and payload apart: a large message is not copied once more
            await self.conn.send(frame_head(op, len(data)))
            await self.conn.send(data)

    async def ping(self, data=b""):
        await self.conn.send(frame(PING, data))

    async def close(self, code=1000, reason=""):
        """The close handshake: our close frame, then the client's answer (what it sends before
        that is dropped), awaited at most linger_timeout_ms; the connection then ends."""
        if not self.closed:
            await self._closing(code, reason)
            await self._answer()

    def follow(self, channel, replay=False):
        """Send this client every message the channel publishes from now on (replay: the kept
        ones too), from within receive()."""
        self.channel = channel
        self.seen = 0 if replay else channel.last_id
        channel.follow(self.session)  # publish() calls session.notify()

    # ---- inside ----

    def _alive(self):
        # any frame from the client: it is there; the ping timer starts again
        self.ping_sent = False
        self.session.alive()

    def wake(self):
        """The session, at WS's deadline (ws_ping_interval_ms of silence): a ping is due; the
        client then has WS_PING's ws_pong_timeout_ms to send anything (the pool's deadline)."""
        if not self.ping_sent and not self.ping_due:
            self.ping_due = True
            self.session.ping_due()

    def ended(self):
        """The connection ended, however (a reset, EOF, a timeout): off its channel, or the
        channel would wake the next connection in this slot mid-request."""
        if self.channel is not None:
            self.channel.unfollow(self.session)
            self.channel = None

    async def _send_channel(self):
        for mid, _, data in self.channel.since(self.seen):
            self.seen = mid
            await self.conn.send(frame(TEXT, data.encode() if isinstance(data, str) else data))

    async def _fail(self, code, reason):
        # RFC 6455 7.1.7: after a protocol error nothing more the client sends is read (not even
        # its close frame): our close frame, then ws_close_wait_ms for the client's TCP close
        self.session.server.stats.ws_protocol_errors += 1
        await self._closing(code, reason, True)

    async def _answer(self):
        # our close frame is out (LINGER): the client's close frame ends the handshake, then
        # WS_CLOSED gives it ws_close_wait_ms to close TCP first. Without this a client that
        # answers and waits for the server's TCP close (as RFC 6455 7.1.1 has it: browsers and
        # websockets do) held its slot for all of linger_timeout_ms.
        while True:
            try:
                ev = self.frames.next()
            except WSError:
                return  # garbage after our close frame: LINGER drains it until the client's EOF
            if ev is None:
                if await self.conn.recv() == 0:
                    self.eof = True
                    return
            elif ev[0] == CLOSE:
                self.session.closing(True)
                return

    async def _closing(self, code, reason="", answered=False):
        # our close frame (answering the client's, starting the handshake, or failing), then the
        # connection waits for the client's TCP close: in LINGER (for its close frame first, at
        # most linger_timeout_ms: _answer), or, the handshake done (answered) or failed, in
        # WS_CLOSED for ws_close_wait_ms; a client that waits for the server to close (as RFC
        # 6455 7.1.1 has it: browsers and websockets do) then gets a reset, so neither side
        # keeps a TIME_WAIT
        self.closed = True
        if self.channel is not None:
            self.channel.unfollow(self.session)
        try:
            await self.conn.send(close_frame(code, reason))
        except OSError:
            pass
        self.session.closing(answered)

