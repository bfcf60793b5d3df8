# The asyncio socket shell around proto.py and web.py: accept, read, dispatch, write, close.
#
# Connection policy: the client closes first. HTTP/1.1 connections stay open; when a response
# carries "Connection: close" the server waits (bounded) for the client's EOF before closing, so
# the TIME_WAIT pcb lands on the client, never on the board. The server closes first only on
# idle timeout, eviction, protocol error, request cap timeouts, handler failure mid-stream and
# shutdown, and counts each close by reason in stats.
#
# Resources are fixed: max_connections slots, each with a preallocated receive buffer. When all
# slots are busy a new connection evicts the least recently used idle keep-alive one; when none is
# idle, the one stalled longest on its client (no first request yet, a head or body trickling in,
# a client not reading, no EOF after "Connection: close") once that stall has lasted
# stall_evict_ms, so slow or hostile sockets cannot lock everyone else out until their timeouts.
# A newcomer that finds neither waits up to stall_evict_ms for one, then gets a 503 with
# Retry-After (and again the server waits for the client to close).
#
# Timeouts cost no task per await: each slot has a deadline, and one ticker task cancels the
# connection task whose deadline has passed. MicroPython's asyncio streams are not used: their
# close() does not close, and a failing handler leaves the socket open until GC. Sockets here are
# closed in exactly one place, Server._release().

import gc
import sys
from time import ticks_add, ticks_diff, ticks_ms

import asyncio
from asyncio import core  # pyright: ignore[reportAttributeAccessIssue] - MicroPython's asyncio.core
import socket

from nostall.config import Config
from nostall.proto import HTTPError, RequestReader, chunk, error_body, response_head
from nostall.web import BYTES_TYPES, BadResponse, error_response

_ioq = core._io_queue  # the one place asyncio's I/O wait is reached; streams use it the same way
CancelledError = core.CancelledError

# slot states
FREE = 0
IDLE = 1  # open, no request in flight (new or kept alive)
HEAD = 2  # part of a request head received
BODY = 3
HANDLER = 4
WRITE = 5
LINGER = 6  # response sent with "Connection: close": waiting for the client's EOF

_IPPROTO_TCP = 6  # same numbers on Linux and lwIP; MicroPython's unix port lacks the names
_TCP_NODELAY = 1
_EAGAIN = (11, 35)  # EAGAIN on Linux and lwIP, EAGAIN on BSD/macOS
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_OVERFLOW_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 20\r\nConnection: close\r\n\r\nserver busy, retry\r\n"
)


class _Ready:
    """await ready(sock) / ready(sock, True): park the task until sock is readable / writable.

    One per slot, reused for every wait: the pattern of asyncio's own SingletonGenerator
    (MicroPython awaits anything with __iter__/__next__), so a wait allocates nothing.
    """

    def __init__(self):
        self.sock = None
        self.write = False
        self.armed = False

    def __call__(self, sock, write=False):
        self.sock = sock
        self.write = write
        self.armed = True
        return self

    def __iter__(self):
        return self

    __await__ = __iter__  # the CPython spelling, for type checkers

    def __next__(self):
        if self.armed:
            self.armed = False
            if self.write:
                _ioq.queue_write(self.sock)
            else:
                _ioq.queue_read(self.sock)
            return None
        raise StopIteration


class _Closed(Exception):
    """The peer went away (EOF or reset); nothing more to send."""


class Slot:
    def __init__(self, cfg, index):
        self.index = index
        self.reader = RequestReader(cfg)
        self.ready = _Ready()
        self.sock = None
        self.task = None  # type: asyncio.Task | None
        self.state = FREE
        self.deadline = 0
        self.since = 0  # when it entered its state (for WRITE: its last progress)
        self.expired = None  # why the ticker cancelled this connection
        self.started = False  # its task has run: cancelling it now runs its finally (release)
        self.used = 0  # LRU stamp: bumped per request
        self.requests = 0


class Server:
    """Serves an App with bounded resources. See the module comment for the connection policy.

    Example::

        server = Server(app, Config(max_connections=4), port=80)
        asyncio.run(server.serve())
    """

    def __init__(self, app, cfg=None, host="0.0.0.0", port=80, info=None):
        self.app = app
        self.cfg = cfg or Config()
        self.host = host
        self.port = port
        self.info = info or {}
        app.chunk_bytes = self.cfg.send_chunk_bytes
        self.slots = [Slot(self.cfg, i) for i in range(self.cfg.max_connections)]
        self.sock = None
        self._ready = _Ready()  # the accept loop's wait
        self.stopping = False
        self.overflow = 0  # connections being turned away with a 503
        self._lru = 0
        self._tasks = []
        self._idle_s = max(1, self.cfg.idle_timeout_ms // 1000)  # Keep-Alive: timeout= is whole seconds
        self.started_ms = ticks_ms()
        self.stats = {
            "accepted": 0,
            "open": 0,
            "peak_open": 0,
            "requests": 0,
            "closes_by_client": 0,
            "resets_by_client": 0,
            "closes_by_server": {},
            "status_4xx": 0,
            "status_5xx": 0,
            "handler_errors": 0,
            "handler_errors_by_kind": {},
            "rejected_busy": 0,
            "accept_errors": 0,
        }
        if not app.has_route("/status"):
            app.route("/status")(self._status)

    # ---- listening ----

    def listen(self):
        """Bind and listen now (so a caller can report the address before serving)."""
        ai = socket.getaddrinfo(self.host, self.port)[0]
        s = socket.socket(ai[0], socket.SOCK_STREAM)
        try:
            # a restarted server must bind at once, even with old connections in TIME_WAIT
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(ai[-1])
            s.listen(self.cfg.listen_backlog)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        self.sock = s
        return s

    async def serve(self):
        if self.sock is None:
            self.listen()
        self._tasks = [asyncio.create_task(self._ticker())]
        try:
            await self._accept_loop()
        finally:
            await self._shutdown()

    def stop(self):
        """Stop accepting; connections in flight get shutdown_timeout_ms to finish."""
        self.stopping = True
        if self.sock is not None:
            s = self.sock
            self.sock = None
            s.close()

    async def _accept_loop(self):
        ready = self._ready
        while not self.stopping:
            s = self.sock
            await ready(s)  # pyright: ignore[reportGeneralTypeIssues] - awaitable by __iter__, as MicroPython awaits
            if self.stopping:
                break
            try:
                cs, _ = s.accept()
            except OSError as e:
                if e.args[0] not in _EAGAIN:
                    # out of sockets or memory: keep serving the connections we have
                    self.stats["accept_errors"] += 1
                    await asyncio.sleep_ms(100)
                continue
            except MemoryError:
                self.stats["accept_errors"] += 1
                gc.collect()
                await asyncio.sleep_ms(100)
                continue
            try:
                cs.setblocking(False)
                try:
                    # a head and a body written separately must not wait for the client's
                    # delayed ACK (Nagle): 40 ms per response on Linux, 100+ ms on lwIP
                    cs.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
                except OSError:
                    pass
                self.stats["accepted"] += 1
                if await self._claim(cs):
                    continue
                if self.overflow < 2:
                    asyncio.create_task(self._turn_away(cs))  # first: it may raise MemoryError
                    self.overflow += 1
                else:
                    self._count_close("overflow")
                    cs.close()
            except MemoryError:
                self.stats["accept_errors"] += 1
                cs.close()
                gc.collect()

    async def _claim(self, cs):
        """Give cs a slot (a free one, else the LRU idle or longest stalled one's); False if none."""
        slot = self._free_slot()
        if slot is None and (self._evict_idle() or self._evict_stalled()):
            # the victim's task releases its slot when it handles the cancellation
            await asyncio.sleep_ms(0)
            slot = self._free_slot()
        if slot is None:
            return False
        task = asyncio.create_task(self._serve_slot(slot))  # first: it may raise MemoryError
        self._open(slot, cs)
        slot.task = task
        return True

    def _free_slot(self):
        for slot in self.slots:
            if slot.state == FREE:
                return slot
        return None

    def _evict_idle(self):
        """Close the least recently used idle keep-alive connection; True if one was closed."""
        victim = None
        for slot in self.slots:
            # a new connection (no request yet) is not idle but waiting for its first request,
            # which may be in flight: see _evict_stalled
            if slot.state == IDLE and slot.requests and not slot.reader.pending() and slot.expired is None:
                if victim is None or slot.used - victim.used < 0:
                    victim = slot
        if victim is None:
            return False
        self._expire(victim, "evicted")
        return True

    def _evict_stalled(self):
        """Close the connection waiting longest (>= stall_evict_ms) on its client; True if one was."""
        now = ticks_ms()
        victim = None
        longest = self.cfg.stall_evict_ms - 1
        for slot in self.slots:
            state = slot.state
            if (state in _STALLS or (state == IDLE and not slot.requests)) and slot.expired is None:
                waited = ticks_diff(now, slot.since)
                if waited > longest:
                    victim = slot
                    longest = waited
        if victim is None:
            return False
        self._expire(victim, "evicted_stalled")
        return True

    def _open(self, slot, cs):
        slot.sock = cs
        slot.reader.reset()
        slot.requests = 0
        slot.expired = None
        slot.started = False
        self._lru += 1
        slot.used = self._lru
        self._enter(slot, IDLE, self.cfg.idle_timeout_ms)
        st = self.stats
        st["open"] += 1
        if st["open"] > st["peak_open"]:
            st["peak_open"] = st["open"]

    def _enter(self, slot, state, timeout_ms):
        slot.state = state
        slot.since = now = ticks_ms()
        slot.deadline = ticks_add(now, timeout_ms)

    def _expire(self, slot, reason):
        slot.expired = reason
        t = slot.task
        # A task cancelled before its first step never enters its try/finally, so its slot
        # would never be released: one not yet started sees slot.expired when it starts.
        if t is not None and t is not core.cur_task and slot.started:
            t.cancel()

    def _release(self, slot):
        """Close the slot's socket and count the close (by slot.expired, or by the client)."""
        s = slot.sock
        if s is None:
            return
        slot.sock = None
        slot.state = FREE
        slot.task = None
        self._count_close(slot.expired or "error")
        self.stats["open"] -= 1
        try:
            s.close()
        except OSError:
            pass

    def _count_close(self, reason):
        """Count how a connection ended: the client closed, the client reset, or the server closed
        (by reason)."""
        st = self.stats
        if reason == "client":
            st["closes_by_client"] += 1
        elif reason == "reset":
            st["resets_by_client"] += 1
        else:
            d = st["closes_by_server"]
            d[reason] = d.get(reason, 0) + 1

    async def _ticker(self):
        cfg = self.cfg
        while True:
            await asyncio.sleep_ms(cfg.tick_ms)
            now = ticks_ms()
            for slot in self.slots:
                if slot.state != FREE and slot.expired is None and ticks_diff(now, slot.deadline) >= 0:
                    self._expire(slot, _TIMEOUT_REASONS[slot.state])

    # ---- one connection ----

    async def _serve_slot(self, slot):
        cfg = self.cfg
        reader = slot.reader
        sock = slot.sock
        try:
            slot.started = True
            if slot.expired is not None:  # evicted or timed out before this task first ran
                return
            while True:
                try:
                    req = reader.next()
                except HTTPError as e:
                    await self._refuse(slot, e)
                    return
                if req is None:
                    if reader.need_continue:
                        reader.need_continue = False
                        await self._send(slot, _CONTINUE)
                    if reader.state:
                        # a body is due (its head may have come in the same read as the
                        # request's first byte): the body timeout applies, not the header's
                        if slot.state != BODY:
                            self._enter(slot, BODY, cfg.body_timeout_ms)
                    elif slot.state == IDLE:
                        if reader.pending():
                            self._enter(slot, HEAD, cfg.header_timeout_ms)
                        elif self.stopping:
                            slot.expired = "shutdown"
                            return
                    space = reader.space()
                    if not space:  # cannot happen while max_header_bytes <= recv_buffer_bytes
                        await self._refuse(slot, HTTPError(431, "request head too large"))
                        return
                    await slot.ready(sock)
                    n = sock.readinto(space)
                    if n is None:
                        continue
                    if n == 0:
                        # the client closed first: the close we want (mid-request: it gave up)
                        slot.expired = "client"
                        return
                    reader.added(n)
                    continue
                await self._handle(slot, req)
                if slot.state == LINGER:
                    await self._linger(slot)
                    return
                self._enter(slot, IDLE, cfg.idle_timeout_ms)
        except CancelledError:
            if slot.expired is None:
                slot.expired = "shutdown"
        except _Closed:
            pass
        except OSError as e:
            if slot.expired is None:
                slot.expired = "reset" if e.args[0] in (104, 32, 128) else "error"
        except MemoryError:
            slot.expired = "memory"
            gc.collect()
        finally:
            self._release(slot)

    async def _handle(self, slot, req):
        cfg = self.cfg
        st = self.stats
        slot.requests += 1
        self._lru += 1
        slot.used = self._lru
        self._enter(slot, HANDLER, cfg.handler_timeout_ms)
        try:
            resp = await self.app.dispatch(req)
            if slot.expired == "handler_timeout":  # the handler caught our cancellation
                slot.expired = None
        except CancelledError:
            if slot.expired != "handler_timeout":
                raise
            slot.expired = None
            self._handler_error("timeout", req.path, None)
            resp = error_response(503, "handler took too long")
        stream = resp.stream
        first = b""
        if stream is not None and req.method != "HEAD":
            # the first piece before the head: a stream that fails at once still gets a 500
            try:
                stream = iter(stream)
                first = _piece(stream)
            except Exception as e:
                _close(stream)
                req.error = e
                resp = error_response(500, "handler's stream failed")
                stream = None
        st["requests"] += 1
        status = resp.status
        if status >= 400:
            if status >= 500:
                st["status_5xx"] += 1
                if status == 500 and req.error is not None:
                    self._handler_error(_error_kind(req.error), req.path, req.error)
            else:
                st["status_4xx"] += 1
        # after a handler failure, end the connection too (the client closes first, as always)
        keep = (
            req.keep_alive
            and slot.requests < cfg.max_requests_per_connection
            and not self.stopping
            and req.error is None
        )
        length = resp.length
        if stream is not None and length is None and req.version != "HTTP/1.1":
            keep = False  # an HTTP/1.0 client has no chunked coding: EOF must end the body
        self._enter(slot, WRITE, cfg.write_timeout_ms)
        ka = None
        if keep:
            ka = "timeout=%d, max=%d" % (self._idle_s, cfg.max_requests_per_connection - slot.requests)
        head = response_head(status, resp.headers, length, keep, ka)
        if req.method == "HEAD":
            if stream is not None:
                _close(stream)
            await self._send(slot, head)
        elif stream is None:
            body = resp.body
            # one write for small responses: one TCP segment, no Nagle/delayed-ACK wait
            await self._send(slot, head + body if len(body) <= 1460 else head)
            if len(body) > 1460:
                await self._send(slot, body)
        else:
            await self._send(slot, head)
            await self._send_stream(slot, stream, first, length is None and req.version == "HTTP/1.1")
            if length is None and not keep:
                slot.expired = "eof_delimited_body"  # EOF is the end of this body
                raise _Closed()
        if not keep:
            self._enter(slot, LINGER, cfg.linger_timeout_ms)

    async def _send_stream(self, slot, stream, piece, chunked):
        try:
            while piece is not None:
                if piece:
                    await self._send(slot, chunk(piece) if chunked else piece)
                    # a slow client must not look like a stalled handler
                    self._enter(slot, WRITE, self.cfg.write_timeout_ms)
                piece = _piece(stream)
            if chunked:
                await self._send(slot, b"0\r\n\r\n")
        except (CancelledError, OSError, _Closed):
            raise
        except Exception as e:  # the stream's own fault after the head went out: cut it short
            self._handler_error("stream", "-", e)
            slot.expired = "stream_error"
            raise _Closed()
        finally:
            _close(stream)

    async def _send(self, slot, data):
        sock = slot.sock
        n = sock.write(data)
        if n == len(data):
            return
        mv = memoryview(data)
        off = n or 0
        while off < len(data):
            await slot.ready(sock, True)
            n = sock.write(mv[off:])
            if n:
                off += n
                if slot.state == WRITE:  # progress: a slow but steady reader is not stalled
                    self._enter(slot, WRITE, self.cfg.write_timeout_ms)

    async def _linger(self, slot):
        """After "Connection: close": drop what the client still sends until its EOF."""
        sock = slot.sock
        budget = self.cfg.linger_drain_bytes
        reader = slot.reader
        while budget > 0:
            reader.reset()
            space = reader.space()
            await slot.ready(sock)
            n = sock.readinto(space)
            if n is None:
                continue
            if n == 0:
                slot.expired = "client"
                return
            budget -= n
        slot.expired = "linger_overflow"

    async def _refuse(self, slot, e):
        """Answer a request the reader refused, then close (its framing is lost)."""
        st = self.stats
        st["status_4xx" if e.status < 500 else "status_5xx"] += 1
        body = error_body(e.status, e.reason)
        head = response_head(e.status, [("Content-Type", "text/plain")], len(body), False)
        self._enter(slot, WRITE, self.cfg.write_timeout_ms)
        await self._send(slot, head + body)
        self._enter(slot, LINGER, self.cfg.linger_timeout_ms)
        await self._linger(slot)
        if slot.expired == "client":
            return
        slot.expired = "protocol_error"

    async def _turn_away(self, cs):
        """No slot to claim: wait up to stall_evict_ms for one (by then a connection stalled on its
        client can be evicted), else 503, then wait (bounded) for the client to close."""
        st = self.stats
        reason = None
        try:
            deadline = ticks_add(ticks_ms(), self.cfg.stall_evict_ms)
            while ticks_diff(deadline, ticks_ms()) > 0 and not self.stopping:
                await asyncio.sleep_ms(20)  # no slot, no ticker: poll the bounded wait
                if await self._claim(cs):
                    return  # the slot owns cs now
            st["rejected_busy"] += 1
            st["status_5xx"] += 1
            reason = "busy_linger_timeout"
            deadline = ticks_add(ticks_ms(), self.cfg.linger_timeout_ms)
            buf = bytearray(64)
            cs.write(_OVERFLOW_503)
            while ticks_diff(deadline, ticks_ms()) > 0:
                if self.stopping:
                    reason = "shutdown"
                    break
                await asyncio.sleep_ms(20)
                try:
                    n = cs.readinto(buf)
                except OSError:
                    reason = "reset"
                    break
                if n == 0:
                    reason = "client"
                    break
        except OSError:
            reason = "reset"
        except BaseException as e:  # cancelled, or out of memory while waiting for a slot
            reason = reason or ("memory" if isinstance(e, MemoryError) else "shutdown")
            raise
        finally:
            self.overflow -= 1
            if reason is not None:
                self._count_close(reason)
                cs.close()

    async def _shutdown(self):
        self.stop()
        for t in self._tasks:
            t.cancel()
        deadline = ticks_add(ticks_ms(), self.cfg.shutdown_timeout_ms)
        while ticks_diff(deadline, ticks_ms()) > 0:
            busy = self.overflow > 0  # turn-aways end within a 20 ms poll once stopping is set
            for slot in self.slots:
                if slot.state == IDLE:
                    self._expire(slot, "shutdown")
                elif slot.state != FREE:
                    busy = True
            if not busy:
                break
            await asyncio.sleep_ms(10)
        for slot in self.slots:
            if slot.state != FREE:
                self._expire(slot, "shutdown")
                self._release(slot)
        await asyncio.sleep_ms(0)  # let cancelled tasks unwind

    def _handler_error(self, kind, path, exc):
        """Count (by kind: exception, memory, bad_response, stream, timeout) and log a handler's failure."""
        st = self.stats
        st["handler_errors"] += 1
        d = st["handler_errors_by_kind"]
        d[kind] = d.get(kind, 0) + 1
        print("nostall: handler error (%s) on %s: %r" % (kind, path, exc))
        if exc is not None and hasattr(sys, "print_exception"):
            sys.print_exception(exc)

    # ---- /status ----

    def _status(self, req):
        if req.args.get("gc") == "1":
            gc.collect()
        st = self.stats
        d = {
            "uptime_ms": ticks_diff(ticks_ms(), self.started_ms),
            "heap_free": gc.mem_free(),
            "heap_alloc": gc.mem_alloc(),
            "connections_open": st["open"],
            "connections_peak": st["peak_open"],
            "connections_accepted": st["accepted"],
            "requests": st["requests"],
            "closes_by_client": st["closes_by_client"],
            "resets_by_client": st["resets_by_client"],
            "closes_by_server": st["closes_by_server"],
            "closes_by_server_total": sum(st["closes_by_server"].values()),
            "status_4xx": st["status_4xx"],
            "status_5xx": st["status_5xx"],
            "handler_errors": st["handler_errors"],
            "handler_errors_by_kind": st["handler_errors_by_kind"],
            "rejected_busy": st["rejected_busy"],
            "accept_errors": st["accept_errors"],
            "limits": self.cfg.as_dict(),
        }
        for k in self.info:
            d[k] = self.info[k]
        return d


def _piece(stream):
    """The stream's next piece (bytes-like), or None at its end."""
    try:
        p = next(stream)
    except StopIteration:
        return None
    if not isinstance(p, BYTES_TYPES):
        raise BadResponse("a stream yielded %s, not bytes" % type(p).__name__)
    return p


def _error_kind(e):
    if isinstance(e, MemoryError):
        return "memory"
    if isinstance(e, BadResponse):
        return "bad_response"
    return "exception"


def _close(stream):
    close = getattr(stream, "close", None)
    if close is not None:
        close()


# states in which a connection waits on its client, not on the server
_STALLS = (HEAD, BODY, WRITE, LINGER)

_TIMEOUT_REASONS = {
    IDLE: "idle_timeout",
    HEAD: "header_timeout",
    BODY: "body_timeout",
    HANDLER: "handler_timeout",
    WRITE: "write_timeout",
    LINGER: "linger_timeout",
}
