# Newcomers that find no slot: a short queue (max_turnaways) where each waits up to
# stall_evict_ms for one, then gets a 503 with Retry-After, after which the server again waits
# (bounded) for the client to close.
#
# A request beats silence. A newcomer whose request is already waiting may take the slot of the
# connection silent longest at once (pool.evict); one without takes a slot only from an idle
# connection or one stalled for stall_evict_ms. A full queue makes room for a newcomer by dropping
# its oldest silent entry (silent for SILENT_GRACE_MS at least); when there is none the newcomer
# is closed instead.
# So sockets that connect and send nothing (preconnects, scans, floods) cannot keep a client
# with a request waiting from being answered.

# pyright: reportGeneralTypeIssues=false
# (it says a Waiter "is not awaitable": MicroPython awaits anything with __next__, see waiter.py)

import asyncio
from asyncio import core  # pyright: ignore[reportAttributeAccessIssue] - MicroPython's asyncio.core

from nostall import sockets
from nostall.pool import SILENT_GRACE_MS, WRITE_TIMEOUT
from nostall.stats import CLIENT, RESET
from nostall.ticks import ticks_add, ticks_diff, ticks_ms
from nostall.waiter import Waiter, drain

CancelledError = core.CancelledError

_CLAIM_RETRY_MS = 20  # how often a waiting newcomer looks for a slot (it has no deadline task)
_DRAIN_BUF_BYTES = 64  # what a turned-away client still sends is read into this and dropped


class TurnAway:
    """One newcomer without a slot."""

    def __init__(self, sock):
        self.sock = sock
        self.task = None  # type: asyncio.Task | None
        self.answered = False  # the 503 went out: lingering for the client's EOF
        self.since = ticks_ms()

    def silent(self, now):
        # silent for a while: a client that just connected may have its request still on the way
        return (not self.answered and self.sock is not None and ticks_diff(now, self.since) >= SILENT_GRACE_MS
                and not sockets.readable(self.sock))


class TurnAways:
    def __init__(self, server):
        self.server = server
        self.queue = []  # oldest first

    def __len__(self):
        return len(self.queue)

    def add(self, cs):
        """Queue cs (the server found no slot for it); a full queue drops its oldest silent entry
        for it. False when it cannot: then cs is closed (a plain close: a client whose request
        already came sees the stack's reset; one still sending sees the close, EOF)."""
        if len(self.queue) >= self.server.cfg.max_turnaways and not self.shed():
            self.server.stats.ended("overflow", sockets.close(cs))
            return False
        t = TurnAway(cs)
        t.task = asyncio.create_task(self._wait(t))  # first: it may raise MemoryError
        self.queue.append(t)
        return True

    def shed(self):
        """Drop the oldest entry that has sent nothing for SILENT_GRACE_MS; True if there was one."""
        now = ticks_ms()
        for t in self.queue:
            if t.silent(now):
                self._close(t, "overflow", True)
                t.task.cancel()  # if it never ran, its finally will not: _close did its part
                return True
        return False

    def cancel(self):
        """At shutdown, once they have had shutdown_timeout_ms: they close their own sockets."""
        for t in self.queue:
            t.task.cancel()

    def _close(self, t, reason, abortive):
        if t in self.queue:
            self.queue.remove(t)
        s = t.sock
        if s is not None:
            t.sock = None
            # a client that took nothing of the 503 for write_timeout_ms: forced, as a connection's
            self.server.stats.ended(reason, sockets.close(s, abortive, reason == WRITE_TIMEOUT))

    async def _wait(self, t):
        server = self.server
        cfg = server.cfg
        cs = t.sock
        reason = "shutdown"
        abortive = True
        try:
            deadline = ticks_add(ticks_ms(), cfg.stall_evict_ms)
            while ticks_diff(deadline, ticks_ms()) > 0 and not server.stopping:
                await asyncio.sleep_ms(_CLAIM_RETRY_MS)
                if t.sock is None:
                    return  # dropped for a newcomer
                if await server.claim(cs):
                    t.sock = None  # the slot owns cs now
                    return
            if server.stopping or t.sock is None:
                return
            server.stats.rejected_busy += 1
            server.stats.answered(503)
            t.answered = True
            reason = "busy_linger_timeout"
            await Waiter().send(cs, server.busy_answer)
            reason = await self._linger(cs, cfg)
            abortive = reason != CLIENT
        except asyncio.TimeoutError:
            pass
        except CancelledError:  # shutdown, or dropped for a newcomer (then already closed)
            reason = "shutdown"
            raise
        except OSError:
            reason = RESET
            abortive = False
        except MemoryError:
            reason = "memory"
        finally:
            self._close(t, reason, abortive)

    async def _linger(self, cs, cfg):
        # the 503 went out: wait for the client's EOF, linger_timeout_ms from the 503's
        # acknowledgement, as a connection's LINGER does (pool.py, "after acks"): looked for every
        # tick_ms (the client cannot close before it has the 503), for at most write_timeout_ms
        since = ticks_ms()
        buf = bytearray(_DRAIN_BUF_BYTES)
        acked = False
        while True:
            eof = drain(Waiter(), cs, buf, cfg.linger_drain_bytes)
            try:
                wait = cfg.linger_timeout_ms if acked else cfg.tick_ms
                return CLIENT if await asyncio.wait_for_ms(eof, wait) else "linger_overflow"
            except asyncio.TimeoutError:
                if acked:
                    raise
                acked = not sockets.unacked(cs)
                if not acked and ticks_diff(ticks_ms(), since) >= cfg.write_timeout_ms:
                    return WRITE_TIMEOUT
