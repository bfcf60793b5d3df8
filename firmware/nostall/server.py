# The server: listen, accept into the connection pool, turn away what does not fit, tick the
# deadlines, shut down. Each connection is served by connection.py; the slots, their states and
# eviction are pool.py's; the counters and /status, stats.py's.
#
# Connection policy: the client closes first. HTTP/1.1 connections stay open; when a response
# carries "Connection: close" the server waits (bounded) for the client's EOF before closing, so
# the TIME_WAIT pcb lands on the client, never on the board. The server closes first only on
# idle timeout, eviction, protocol error, request cap timeouts, handler failure mid-stream and
# shutdown, and counts each close by reason in /status; where nothing of its own is in flight
# that close is a reset, so no TIME_WAIT stays on the board either (sockets.py).
#
# Resources are fixed: max_connections slots, each with a preallocated receive buffer. When all
# slots are busy a newcomer takes the slot of the least recently used idle keep-alive
# connection, else of the one stalled longest on its client once that stall has lasted
# stall_evict_ms, so slow or hostile sockets cannot lock everyone else out until their timeouts.
# A newcomer that finds neither waits for one in a short queue, where a request beats silence
# (turnaway.py). When sockets run out (a board has 10), a silent newcomer or an idle connection
# is dropped to accept the next one.

# pyright: reportGeneralTypeIssues=false
# (it says Waiter "is not awaitable": MicroPython awaits anything with __next__, see waiter.py)

import gc

import asyncio
import socket
import sys
from micropython import const

from nostall import sockets
from nostall.config import Config
from nostall.connection import Connection
from nostall.framing import closing
from nostall.pool import Pool
from nostall.response import Response, error_response
from nostall.session import MEMORY, SHUTDOWN
from nostall.stats import Stats
from nostall.ticks import ticks_add, ticks_diff, ticks_ms
from nostall.waiter import Waiter

# pool.py's states this module names, as consts (test_consts.py checks their numbers)
_NEW = const(1)
_IDLE = const(2)

_EAGAIN = const((11, 35))  # EAGAIN on Linux and lwIP, EAGAIN on BSD/macOS
_OUT_OF_SOCKETS = const((23, 24, 12))  # ENFILE, EMFILE, ENOMEM (the same numbers in lwIP/newlib)
_ACCEPT_BACKOFF_MS = const(100)  # out of sockets or memory: pause accepting, keep serving the others
_SHUTDOWN_POLL_MS = const(10)  # at shutdown, how often to look whether connections in flight are done
_STATUS_EVERY_MS = const(1000)  # the live figures (channel.STATUS) go out this often while followed
# the 503 after a turn-away waited stall_evict_ms in vain: slots free as requests end, so a
# second later one is likely free
_BUSY_RETRY_AFTER = const((("Retry-After", "1"),))
_NO_STORE = const((("Cache-Control", "no-store"),))


class Server:
    """Serves an App with bounded resources. See the module comment for the connection policy.

    Example::

        server = Server(app, Config(max_connections=4), port=80)
        asyncio.run(server.serve())
    """

    def __init__(self, app, cfg=None, host="0.0.0.0", port=80, info=None, vitals=None):
        self.app = app
        self.cfg = cfg = cfg or Config()
        self.host = host
        self.port = port
        self.info = info or {}
        self.vitals = vitals  # a callable: the board's health for /status and /metrics (board.py)
        self.stats = Stats()
        self.pool = pool = Pool(cfg)
        # every slot and its receive buffer at start-up: on the real port, made at a connection's
        # first need they landed in heap areas MicroPython had just grown from ESP-IDF's heap
        # (it doubles the GC heap when full), and kept 90 KB of it from lwIP and Wi-Fi for good
        for _ in range(cfg.max_connections):
            pool.add(Connection(self, pool).session)
        self.idle_s = max(1, cfg.idle_timeout_ms // 1000)  # Keep-Alive: timeout= is whole seconds
        self.sock = None
        self.stopping = False
        self._ready = Waiter()  # the accept loop's wait
        self._ticker_task = None
        self.turnaways = None  # turnaway.TurnAways, made at the first newcomer that finds no slot
        self.heap = None  # a heapkeep.HeapKeeper where the heap grows from the system's (keep_heap())
        # built once: when it is needed the heap may be short
        self.busy_answer = closing(error_response(503, "server busy, retry", _BUSY_RETRY_AFTER))
        if not app.has_route("/status"):
            app.route("/status")(self._status)
        if not app.has_route("/metrics"):
            app.route("/metrics")(self._metrics)

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
        self._ticker_task = asyncio.create_task(self._ticker())
        try:
            await self._accept_loop()
        finally:
            await self.shutdown()

    def stop(self):
        """Stop accepting; connections in flight get shutdown_timeout_ms to finish."""
        self.stopping = True
        if self.sock is not None:
            s = self.sock
            self.sock = None
            s.close()

    async def _accept_loop(self):
        ready = self._ready
        stats = self.stats
        while not self.stopping:
            s = self.sock
            await ready.readable(s)
            if self.stopping:
                break
            try:
                cs, _ = s.accept()
            except OSError as e:
                if e.args[0] in _EAGAIN:
                    continue
                stats.accept_errors += 1
                # out of sockets (a board has 10 in all) or memory: make room by dropping a
                # newcomer that sent nothing or an idle connection; else pause, serving the rest
                turnaways = self.turnaways
                if e.args[0] in _OUT_OF_SOCKETS and ((turnaways and turnaways.shed()) or self.pool.evict()):
                    await asyncio.sleep_ms(0)  # the evicted connection's task closes its socket
                else:
                    await asyncio.sleep_ms(_ACCEPT_BACKOFF_MS)
                continue
            except MemoryError:
                stats.accept_errors += 1
                gc.collect()
                await asyncio.sleep_ms(_ACCEPT_BACKOFF_MS)
                continue
            try:
                sockets.accepted(cs)
                stats.accepted += 1
                # a free slot: no await (a coroutine per accept would cost as much as a request)
                if not self._open(cs) and not await self.claim(cs):
                    self._turn_away(cs)
            except MemoryError:
                stats.accept_errors += 1
                stats.ended(MEMORY, sockets.close(cs, True))
                gc.collect()

    async def claim(self, cs):
        """Give cs a slot: a free one, else an evicted connection's (pool.evict: an idle one; for
        a request already waiting on cs, a silent one; else one stalled on its client). False if
        there is none."""
        if self._open(cs):
            return True
        if not self.pool.evict(sockets.readable(cs)):
            return False
        await asyncio.sleep_ms(0)  # the victim's task frees its slot when it handles the cancellation
        return self._open(cs)

    def _turn_away(self, cs):
        # the queue's code is loaded by the first newcomer that finds no slot: a board never
        # that busy keeps its heap (a MemoryError here closes cs, as one in accept())
        t = self.turnaways
        if t is None:
            from nostall.turnaway import TurnAways

            t = self.turnaways = TurnAways(self)
        t.add(cs)

    def _open(self, cs):
        """cs in a free slot, served by a task of its own; False if no slot is free."""
        slot = self.pool.free()
        if slot is None:
            return False
        conn = slot.conn
        task = asyncio.create_task(conn.serve())  # first: it may raise MemoryError
        conn.attach(cs)
        self.pool.open(slot, task)
        return True

    def keep_heap(self, system_free):
        """Where the heap grows from the system's (the esp32 port): system_free() is its free
        bytes, read every tick; frequent collections only while it is down (heapkeep.py)."""
        from nostall.heapkeep import HeapKeeper

        cfg = self.cfg
        self.heap = HeapKeeper(system_free, cfg.gc_every_bytes, cfg.heap_grown_bytes)

    async def _ticker(self):
        pool = self.pool
        stats = self.stats
        next_status = 0
        requests = 0
        channel = None  # nostall.channel, once an app has loaded it (it stays)
        while True:
            await asyncio.sleep_ms(self.cfg.tick_ms)
            pool.expire()
            if self.heap is not None:
                self.heap.tick()
            up = stats.uptime_ms()  # often enough that ticks_ms never wraps between two readings
            # the live figures, once a second, while a dashboard follows them (channel.STATUS:
            # loaded by an app that offers them, as app.py's /ws/live and /events; no other can
            # have followers, and keeps the module's heap)
            if channel is None:
                channel = sys.modules.get("nostall.channel")
            if channel is not None and channel.STATUS.followers and up >= next_status:
                next_status = up + _STATUS_EVERY_MS
                try:
                    from nostall.status import live  # loaded by the first follower

                    channel.STATUS.publish(live(self, up, (stats.requests - requests) * 1000 // _STATUS_EVERY_MS))
                except MemoryError:  # no room for this second's figures: the ticker's deadlines go on
                    gc.collect()
                requests = stats.requests

    async def shutdown(self):
        """Stop accepting; give connections in flight shutdown_timeout_ms, reset idle ones."""
        self.stop()
        if self._ticker_task is not None:
            self._ticker_task.cancel()
        pool = self.pool
        deadline = ticks_add(ticks_ms(), self.cfg.shutdown_timeout_ms)
        while ticks_diff(deadline, ticks_ms()) > 0:
            for slot in pool.waiting(_NEW) + pool.waiting(_IDLE):
                if slot.cancelled is None:
                    slot.cancel(SHUTDOWN)
            if not pool.in_use and not self.turnaways:
                break
            await asyncio.sleep_ms(_SHUTDOWN_POLL_MS)
        for slot in pool.slots:
            if slot.conn.sock is not None:
                slot.cancel(SHUTDOWN)
                slot.conn.close(SHUTDOWN)
        # turn-aways still lingering have run for shutdown_timeout_ms: cancelled, they close
        # their sockets themselves (a task cancelled before it first ran would not)
        if self.turnaways is not None:
            self.turnaways.cancel()
        await asyncio.sleep_ms(0)  # let cancelled tasks unwind

    def _status(self, req):
        # live figures: no cache may show them later as now
        from nostall.status import document  # loaded by the first /status

        return document(self, req.args.get("gc") == "1"), 200, _NO_STORE

    def _metrics(self, req):
        # imported at the first scrape: a board nobody scrapes keeps its 6 KB (from source or .mpy)
        from nostall import metrics

        return Response(stream=metrics.families(self, self.vitals), headers=_NO_STORE, content_type=metrics.CONTENT_TYPE)
