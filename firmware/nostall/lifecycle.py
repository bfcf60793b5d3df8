# A session's life in its pool slot (pool.py), around the state machine that session.py runs
# (every state change is made there): what it holds (the request reader and its receive buffer,
# made once; the answer being sent, and its stream's pieces), attach() for each new connection,
# the pool's calls passed on to the shell, and the end: the close reasons a session gives, named
# here once, failed() (the reason when the shell's wait raised), the linger's drain (what the
# client still sends, dropped until its EOF) and ended() (the slot freed, and how the socket is
# closed). Nothing here changes the connection's state.

import gc

from micropython import const

from nostall.pool import ABORTIVE, WRITE_TIMEOUT, Slot
from nostall.proto import RequestReader
from nostall.response import close_stream, error_response, next_piece
from nostall.stats import CLIENT, RESET

# pool.py's states this module names, as consts (test_consts.py checks their numbers)
_WRITE = const(6)
_WS = const(8)
_STREAM = const(9)
_WS_PING = const(11)

# what it says, as numbers: their words are words.py's rows
_STREAM_FAILED = const(37)

# close reasons (stats.CLIENT and stats.RESET: the client's doing)
ERROR = "error"  # an OSError the client did not cause
SHUTDOWN = "shutdown"
PROTOCOL_ERROR = "protocol_error"  # a request refused for its framing: answered, then lingered
MEMORY = "memory"  # no heap for a request (answered with the prebuilt 503) or for the connection
LINGER_OVERFLOW = "linger_overflow"  # the client sent linger_drain_bytes more, not its EOF
EOF_DELIMITED_BODY = "eof_delimited_body"  # an HTTP/1.0 stream: the close ends its body
STREAM_ERROR = "stream_error"  # a stream failed after its head: the close cuts the body short
HANDLER_TIMEOUT = "handler_timeout"  # pool.py's reason at HANDLER's deadline: a 503, not a close

_RESETS = const((104, 32, 128))  # ECONNRESET, EPIPE, ENOTCONN: the same numbers on Linux and lwIP
_FETCH = object()  # a stream's next piece is still to be taken


class Lifecycle(Slot):
    """What a Session (session.py) holds and how it ends; the pool's slot."""

    # what only some connections set, as class attributes until then (as RequestReader's body
    # fields): each attribute an instance holds takes a place in its map, in every slot from
    # start-up. A long-lived protocol, a refusal or a linger grows the map of its slot once
    handler = None  # a long-lived protocol's object (a WebSocket): wake(), ended()
    resp = None  # a long-lived protocol's response (LONG: resp.protocol runs)
    _budget = 0  # linger: bytes still dropped before linger_overflow (set by _drain)
    _why = None  # after a refusal: the reason unless the client closes first

    def __init__(self, server, pool, conn=None):
        Slot.__init__(self, pool)
        self.server = server  # cfg, stats, app, stopping, idle_s, busy_answer
        self.conn = conn  # the shell: asked in_flight(), woken by wake()/notify()
        app = getattr(server, "app", None)  # a test's server may have none
        self.reader = r = RequestReader(server.cfg, None, app.admit if app is not None else None)
        # space(): where the next receive goes (the reader's buffer; emptied while lingering)
        self.space = r.space
        self.out = b""
        self.req = None
        self.reason = None
        self.requests = 0
        self._body = None  # a body sent after the head
        self._stream = None
        self._piece = None
        self._chunked = False
        self._keep = False  # after this answer: IDLE (else LINGER, or the close for EOF)

    def attach(self):
        """A new connection in this slot."""
        self.reader.reset()
        self.requests = 0
        self.reason = None

    # ---- the shell's wait that raised ----

    def failed(self, e=None):
        """The close reason when the shell's wait raised e (None: the task was cancelled, by the
        pool, which said why in self.cancelled, or by the server stopping)."""
        if e is None:
            r = self.cancelled or SHUTDOWN
        elif isinstance(e, MemoryError):
            gc.collect()
            r = MEMORY
        else:
            r = self.cancelled or (RESET if e.args[0] in _RESETS else ERROR)
        self.reason = r
        return r

    # ---- the answer's stream ----

    def _first_piece(self, req, resp):
        # a streamed answer's (stream, first piece, resp), the piece taken before the head: a
        # stream that fails at once is closed, and resp becomes a 500 (req.error says why)
        stream = None
        try:
            if resp.stream is None:
                from nostall.static import file_pieces  # a file: static.py is loaded already

                stream = file_pieces(resp.file, self.server.cfg.send_chunk_bytes)
            else:
                stream = iter(resp.stream)
            return stream, next_piece(stream), resp
        except Exception as e:
            close_stream(stream)
            close_stream(resp.stream)
            req.error = e
            return None, None, error_response(500, _STREAM_FAILED)

    def _next_piece(self):
        # the stream's next piece that is not empty, taken (None at its end); raises what the
        # stream raised
        piece = self._piece
        stream = self._stream
        while piece is _FETCH or (piece is not None and not piece):
            piece = next_piece(stream)
        if piece is not None:
            self._piece = _FETCH
        return piece

    def _end_stream(self):
        s = self._stream
        if s is not None:
            self._stream = None
            self._piece = None
            close_stream(s)

    # ---- the pool's calls ----

    def in_flight(self):
        return self.conn.in_flight()

    def input_waiting(self):
        return self.conn.input_waiting()

    def wake(self):
        # the ticker at the deadline of a state that wakes (WS: a ping is due; STREAM: a heartbeat)
        h = self.handler
        if h is not None:
            h.wake()  # a WebSocket: a ping is due (ping_due(): WS_PING has the pong's deadline)
        self.conn.wake()

    def notify(self):
        # a channel this connection follows published a message
        self.conn.wake()

    # ---- the end ----

    def _drain(self):
        # LINGER (or WS_CLOSED): what the client still sends is dropped until its EOF, so it
        # closes first; at most linger_drain_bytes
        self.reader.reset()
        self._budget = self.server.cfg.linger_drain_bytes

    def ended(self, reason):
        """The connection ends for reason: the slot is freed; returns (abortive, forced) for
        the close. A close the server makes first with nothing of its own in flight is a reset
        (no TIME_WAIT on the board); so is one whose client stopped reading (forced); never one
        that ends the body or cuts it short (the client reads on and must see the end)."""
        self.reader.reset()  # a slot at rest keeps nothing of its last connection
        self._end_stream()
        self._body = None
        self.req = None
        self.out = b""
        if self.resp is not None:
            self.resp = None
        if self._why is not None:
            self._why = None
        h = self.handler
        if h is not None:
            self.handler = None
            h.ended()  # off its channel, its message buffer dropped
        state = self.state
        first = reason != CLIENT and reason != RESET and reason != EOF_DELIMITED_BODY
        force = first and (reason == WRITE_TIMEOUT or (reason != STREAM_ERROR and (state == _WRITE or state == _WS or state == _WS_PING or state == _STREAM)))
        self.pool.release(self)
        return first and (ABORTIVE >> state & 1 == 1 or force), force
