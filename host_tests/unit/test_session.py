# The sans-IO session (firmware/nostall/session.py) driven by a fake shell: bytes in as whole
# reads, byte by byte and in random splits, what it sends and how it closes, the state steps it
# makes (every one allowed by pool.py's table; together they cover every step but the pool's
# own), deadlines from the pool's fake clock. Runs on CPython and on MicroPython.

from unitcheck import Clock, Lcg, Task, splits

from nostall.config import Config
from nostall.framing import CONTINUE, closing
from nostall.pool import (
    ABORTIVE, BODY, FREE, HANDLER, HEAD, IDLE, LINGER, NEW, STREAM, WRITE, WS, WS_CLOSED, WS_PING, Pool,
)
from nostall.events import EventStream
from nostall.response import Response, error_response, make_response
from nostall.session import (
    CLOSE, EOF_DELIMITED_BODY, LINGER_OVERFLOW, LONG, PROTOCOL_ERROR, RECV, RUN, SEND, STREAM_ERROR, Session,
)
from nostall.request import HTTPError
from nostall.stats import CLIENT, Stats

CFG = Config(max_connections=2, max_long_lived_connections=1, linger_drain_bytes=64)
GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
CLOSE_GET = b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


class FakeServer:
    def __init__(self, app=None):
        if app is not None:
            self.app = app
        self.cfg = CFG
        self.stats = Stats()
        self.stopping = False
        self.idle_s = 5
        self.busy_answer = closing(error_response(503, "busy"))


class FakeConn:
    def __init__(self):
        self.woken = 0
        self.unacked = False

    def in_flight(self):
        return self.unacked

    def wake(self):
        self.woken += 1


class Logged(Session):
    def enter(self, state):
        self.steps.append((self.state, state))
        Session.enter(self, state)


def session(app=None):
    clock = Clock()
    pool = Pool(CFG, clock=clock)
    s = Logged(FakeServer(app), pool, FakeConn())
    s.steps = []
    pool.add(s)
    for _ in range(CFG.max_connections - 1):
        pool.add(Session(s.server, pool, FakeConn()))
    s.attach()
    pool.open(s, Task())
    return s


def answer(req):
    if req.path == "/stream":
        return Response(stream=iter([b"ab", b"", b"cd"]))
    if req.path == "/broken":
        return Response(stream=_broken())
    return make_response({"path": req.path, "body": len(req.body or b"")})


def _broken():
    yield b"first"
    raise ValueError("the stream's fault")


class Waits:
    """An async handler, as the fake shell sees it: it waits (HANDLER), then then() answers."""

    def __init__(self, then):
        self.then = then


def drive(s, reads, app=answer):
    """Run the session over reads (bytes each; the end: EOF; a list is consumed, so a fake
    shell's recv() may share it). Returns (sent, reason)."""
    sent = []
    if not isinstance(reads, list):
        reads = list(reads)
    a = s.next()
    while a != CLOSE:
        if a == RECV:
            data = reads.pop(0) if reads else b""
            space = s.space()
            assert len(data) <= len(space)
            space[: len(data)] = data
            a = s.next(len(data))
            continue
        if a == SEND:
            sent.append(bytes(s.out))
        elif a == RUN:
            resp = app(s.req)
            if isinstance(resp, Waits):  # what the shell does for an async handler
                s.handling()
                resp = resp.then()
            a = s.respond(resp)
            continue
        else:
            raise AssertionError("unexpected action %r" % a)
        a = s.next()
    return b"".join(sent), s.reason




def test_kept_alive_requests_whole_byte_by_byte_and_split():
    rnd = Lcg(7)
    data = GET + b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + GET
    results = []
    for how in ("whole", "bytes", "split", "split", "split"):
        s = session()
        sent, reason = drive(s, splits(data, how, rnd))
        assert reason == CLIENT, reason
        assert sent.count(b"HTTP/1.1 200 OK") == 3, sent
        assert b'"body": 5' in sent or b'"body":5' in sent, sent
        results.append(sent)
        assert s.requests == 3
        assert s.ended(reason) == (False, False)  # the client closed first: a plain close
        assert s.state == FREE
    assert all(r == results[0] for r in results)


def test_pipelined_requests_are_answered_without_another_read():
    s = session()
    sent, reason = drive(s, [GET + GET])
    assert sent.count(b"200 OK") == 2 and reason == CLIENT
    assert (IDLE, WRITE) in s.steps  # straight from the buffer, no HEAD in between


def test_connection_close_lingers_until_the_clients_eof():
    s = session()
    sent, reason = drive(s, [CLOSE_GET, b"late bytes"])
    assert b"Connection: close" in sent and reason == CLIENT
    assert (WRITE, LINGER) in s.steps


def test_a_refusal_is_answered_then_lingers_and_overflow_is_the_refusals_reason():
    s = session()
    sent, reason = drive(s, [b"GET / HTTP/1.1\r\n\r\n"])  # no Host
    assert sent.startswith(b"HTTP/1.1 400") and b"Connection: close" in sent and reason == CLIENT
    s = session()
    sent, reason = drive(s, [b"BAD\r\n\r\n", b"x" * 40, b"y" * 40])
    assert reason == PROTOCOL_ERROR, reason
    s = session()
    sent, reason = drive(s, [CLOSE_GET, b"x" * 40, b"y" * 40])
    assert reason == LINGER_OVERFLOW, reason
    assert s.ended(reason) == (True, False)  # LINGER: nothing of ours in flight, a reset


def test_expect_100_continue_is_sent_when_the_body_is_due():
    s = session()
    head = b"PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    sent, reason = drive(s, [head, b"abc"])
    assert sent.startswith(CONTINUE) and b"200 OK" in sent and reason == CLIENT
    assert (NEW, BODY) in s.steps or (HEAD, BODY) in s.steps


def test_streams_chunked_and_eof_delimited_and_a_failing_one():
    s = session()
    sent, reason = drive(s, [b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"])
    assert b"Transfer-Encoding: chunked" in sent and sent.endswith(b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"), sent
    s = session()
    sent, reason = drive(s, [b"GET /stream HTTP/1.0\r\n\r\n"])
    assert sent.endswith(b"abcd") and reason == EOF_DELIMITED_BODY
    assert s.ended(reason) == (False, False)  # the close ends the body: never a reset
    s = session()
    sent, reason = drive(s, [b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n"])
    assert b"5\r\nfirst\r\n" in sent and reason == STREAM_ERROR
    assert s.ended(reason) == (False, False)  # cut short: the client must see the cut after the data


def test_a_handler_that_runs_too_long_gets_a_503_and_the_connection_goes_on():
    s = session()

    def slow():
        assert s.state == HANDLER  # an async handler waits in HANDLER, with its deadline
        s.cancelled = "handler_timeout"  # what the ticker does at HANDLER's deadline
        return s.timed_out()

    sent, reason = drive(s, [GET, GET], lambda req: Waits(slow))
    assert sent.count(b"HTTP/1.1 503") == 2 and reason == CLIENT
    assert (IDLE, HANDLER) in s.steps and (HANDLER, WRITE) in s.steps
    s = session()
    sent, reason = drive(s, [GET], lambda req: Waits(lambda: answer(req)))  # one that answers in time
    assert b"200 OK" in sent and (NEW, HANDLER) in s.steps


class FakeProtocol:
    """A long-lived protocol as websocket.py drives the session: opened, alive, a ping, a write
    that waits, the close handshake."""

    def __init__(self):
        self.pings = 0
        self.ended_calls = 0

    def wake(self):
        self.pings += 1
        self.session.ping_due()

    def ended(self):
        self.ended_calls += 1


def test_a_long_lived_protocol_moves_the_session_only_through_its_interface():
    s = session()
    p = FakeProtocol()
    p.session = s
    resp = EventStream(None)
    s.next()
    space = s.space()
    space[: len(GET)] = GET
    assert s.next(len(GET)) == RUN
    s.handling()
    assert s.respond(resp) == LONG and s.resp is resp and s.state == WRITE
    s.opened(WS, p)
    s.pool.clock.advance(CFG.ws_ping_interval_ms)
    s.pool.expire()  # WS wakes at its deadline: the protocol asks for a ping
    assert p.pings == 1 and s.state == WS_PING and s.conn.woken == 1
    s.resume(s.writing())  # a write that had to wait: WRITE, then back
    s.alive()  # a frame came back
    assert s.state == WS
    s.ping_due()
    s.pool.clock.advance(CFG.ws_pong_timeout_ms)
    s.pool.expire()  # WS_PING does not wake: its deadline ends the connection
    assert s.cancelled == "ws_timeout"
    s.cancelled = None
    s.alive()
    s.closing(False)
    s.closing(True)
    s.long_done(False)
    assert s.next() == RECV  # the close handshake lingers
    assert s.next(0) == CLOSE and s.reason == CLIENT
    assert s.ended(CLIENT) == (False, False) and p.ended_calls == 1 and s.handler is None
    for a, b in ((HANDLER, WRITE), (WRITE, WS), (WS, WS_PING), (WS_PING, WRITE), (WRITE, WS_PING),
                 (WS_PING, WS), (WS, LINGER), (LINGER, WS_CLOSED)):
        assert (a, b) in s.steps, (a, b)


def test_the_long_lived_cap_answers_503_retry_after():
    s = session()
    s.pool.slots[1].long_lived = True  # the cap (1) is taken
    sent, reason = drive(s, [GET], lambda req: EventStream(None))
    assert sent.startswith(b"HTTP/1.1 503") and b"Retry-After: 5" in sent and reason == CLIENT


def test_a_stream_event_stream_session_is_woken_at_its_deadline():
    s = session()
    s.next()
    s.space()[: len(GET)] = GET
    assert s.next(len(GET)) == RUN
    s.respond(EventStream(None))
    s.opened(STREAM)
    s.pool.clock.advance(CFG.sse_heartbeat_ms)
    s.pool.expire()
    assert s.conn.woken == 1 and s.overdue() and s.cancelled is None  # a heartbeat, not a close


def test_how_the_server_closes_first_in_each_state():
    # (abortive, forced) for a close the server makes first: a reset where the state allows
    # (nothing of ours in flight) or where the client stopped reading (forced)
    for state in (NEW, IDLE, HEAD, BODY, HANDLER, LINGER):
        s = session()
        s.state = state
        assert s.ended("shutdown") == (ABORTIVE >> state & 1, False), state
    for state in (WRITE, WS, WS_PING, STREAM):
        s = session()
        s.state = state
        assert s.ended("shutdown") == (True, True), state
    s = session()
    s.state = WRITE
    assert s.ended(STREAM_ERROR) == (False, False)


def test_a_silent_newcomer_and_shutdown():
    s = session()
    s.server.stopping = True
    assert s.next() == CLOSE and s.reason == "shutdown"
    s = session()
    assert s.next(0) == CLOSE and s.reason == CLIENT


def test_a_head_in_pieces_steps_new_head_write_idle():
    s = session()
    drive(s, [b"G", b"ET / HTTP/1.1\r\nHost: x\r\n\r\n", b"G", b"ET / HTTP/1.1\r\nHost: x\r\n\r\n"])
    # a plain handler runs at once: no HANDLER (nothing could see it there)
    assert s.steps[1:6] == [(NEW, HEAD), (HEAD, WRITE), (WRITE, IDLE), (IDLE, HEAD), (HEAD, WRITE)], s.steps


# ---- streamed bodies (bodystream.py): the handler reads the body while it comes ----


class Streams:
    """An app whose /up route streams its body (limit 100): admit() as web.App's."""

    def admit(self, req):
        return 100 if req.path == "/up" else None


class StreamConn(FakeConn):
    """The shell's side a BodyStream uses: recv() into the session's buffer, and its io (a
    Waiter's recv(sock, into) and send(sock, data))."""

    def __init__(self, reads):
        FakeConn.__init__(self)
        self.reads = reads
        self.sent = []
        self.io = FakeIO(self)
        self.sock = None

    async def recv(self):
        n = self.io.take(self.session.space())
        self.session.buffered(n)
        return n


class FakeIO:
    def __init__(self, conn):
        self.conn = conn

    def take(self, into):
        reads = self.conn.reads
        data = reads.pop(0) if reads else b""
        k = min(len(data), len(into))
        into[:k] = data[:k]
        if k < len(data):
            reads.insert(0, data[k:])
        return k

    async def recv(self, sock, into):
        return self.take(into)

    def send(self, sock, data):
        self.conn.sent.append(bytes(data))
        return ()  # all sent (waiter.DONE)


def now(coro):
    # a coroutine that never has to wait, run to its end (the fake recv() never waits)
    try:
        coro.send(None)
    except StopIteration as e:
        return e.value
    raise AssertionError("it waited")


def streamed(reads, read=lambda st: now(st.read(7)), upto=None):
    """Drive a session whose handler reads the body of PUT /up piece by piece (the shell's
    handling() first, as for any async handler); returns (sent, reason, body, session)."""
    s = session(Streams())
    conn = StreamConn(reads)  # the one list the session's reads and the stream's come from
    conn.session = s
    s.conn = conn
    got = []

    def handler(req):
        if req.stream is None:
            return answer(req)
        req.stream._conn = conn
        s.handling()
        try:
            while upto is None or sum(len(p) for p in got) < upto:
                p = read(req.stream)
                if not p:
                    break
                got.append(p)
        except EOFError:
            return error_response(500, "cut")
        return make_response("ok")

    sent, reason = drive(s, reads, handler)
    return b"".join(conn.sent) + sent, reason, b"".join(got), s


def test_a_streamed_body_is_read_piece_by_piece_whole_byte_by_byte_and_split():
    body = bytes(range(48, 48 + 60))
    cl = b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n" + body
    te = b"PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"%x;ext=1\r\n" % len(body[i : i + 13]) + body[i : i + 13] + b"\r\n" for i in range(0, 60, 13)) + b"0\r\nT: 1\r\n\r\n"
    rnd = Lcg(19)
    for data in (cl, te):
        for how in ("whole", "bytes", "split", "split"):
            reads = splits(data + GET, how, rnd)
            sent, reason, got, s = streamed(reads)
            assert got == body, (how, got)
            assert sent.count(b"200 OK") == 2 and reason == CLIENT, sent
            # between reads HANDLER, waiting for bytes BODY (body_timeout_ms from the last ones)
            if how != "whole":
                assert (HANDLER, BODY) in s.steps and (BODY, HANDLER) in s.steps, s.steps


def test_readinto_fills_the_buffer_and_100_continue_goes_out_at_the_first_read():
    head = b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 25\r\nExpect: 100-continue\r\n\r\n"
    buf = bytearray(10)

    def read(st):
        n = now(st.readinto(buf))
        return bytes(buf[:n])

    sent, reason, got, s = streamed([head, b"0123", b"456789abcdefghijklmnopq"], read)
    assert got == b"0123456789abcdefghijklmno"
    assert sent.startswith(CONTINUE) and sent.count(CONTINUE) == 1 and b"200 OK" in sent


def test_a_streamed_body_over_its_limit_or_left_unread_or_cut():
    # Content-Length over the route's limit: 413 before the body
    sent, reason, got, s = streamed([b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"])
    assert sent.startswith(b"HTTP/1.1 413") and b"Connection: close" in sent and got == b""
    # chunked past it: the read raises the 413 (the handler's to answer), the connection ends
    big = b"PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n" + b"a" * 80 + b"\r\n50\r\n"
    try:
        streamed([big])
    except HTTPError as e:
        assert e.status == 413
    else:
        raise AssertionError("no 413")
    # left unread: what is in is dropped; the rest still to come -> Connection: close, then the linger
    head = b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n"
    sent, reason, got, s = streamed([head + b"x" * 20, b"y" * 30], upto=7)
    assert b"200 OK" in sent and b"Connection: close" in sent and (WRITE, LINGER) in s.steps
    # all of it already in: dropped, and the connection goes on
    sent, reason, got, s = streamed([head + b"x" * 50 + GET], upto=7)
    assert sent.count(b"200 OK") == 2 and b"Connection: close" not in sent and reason == CLIENT
    # the client's EOF mid-body: EOFError in the handler, nothing answered
    sent, reason, got, s = streamed([head + b"x" * 20])
    assert reason == CLIENT and b"HTTP/1.1" not in sent and got == b"x" * 20
