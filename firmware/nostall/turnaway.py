# Newcomers that find no slot: a short queue (max_turnaways) where each waits up to
# stall_evict_ms for one, then gets a 503 with Retry-After, after which the server again waits
# (bounded) for the client to close.
#
# Every newcomer gets an answer, a slot or the busy 503, never a close without one: its request
# may be in its socket already, or still on its way. A request beats silence: a newcomer whose
# request is already waiting may take the slot of the connection silent longest at once
# (pool.evict); one without takes a slot only from an idle connection or one stalled for
# stall_evict_ms. A full queue makes room for a newcomer by dropping (a reset) its oldest entry
# silent for SILENT_GRACE_MS, else its oldest one whose 503 is acknowledged (its client has its
# answer; it lingers only for the client's EOF). With neither (every entry waits with a request,
# and a trickler's first byte looks like one, or for its 503's acknowledgement), the newcomer
# still waits, and if max_turnaways already wait, the one waiting longest gets its 503 now: up
# to max_turnaways entries answered may linger beside those waiting until their 503 is
# acknowledged. Past that the newcomer gets the 503 and the close at once (a board's 10 sockets
# run out before).
# So sockets that connect and send nothing (preconnects, scans, floods) and sockets that trickle
# a head (slowloris) cannot keep a client's request from its answer.
#
# The entries' deadlines are the pool's: a TurnAway is timed by pool.expire() on pool.clock,
# as a slot is (NEW while it waits for a slot, WRITE while its 503 goes out, LINGER after it,
# its time counted from the 503's acknowledgement: pool.py's "after acks").

# pyright: reportGeneralTypeIssues=false
# (it says a Waiter "is not awaitable": MicroPython awaits anything with __next__, see waiter.py)

import asyncio
from asyncio import core  # pyright: ignore[reportAttributeAccessIssue] - MicroPython's asyncio.core

from nostall import sockets
from nostall.pool import LINGER, NEW, SILENT_GRACE_MS, WRITE, WRITE_TIMEOUT, Slot
from nostall.stats import CLIENT, RESET
from nostall.ticks import ticks_add, ticks_diff
from nostall.waiter import Waiter, drain

CancelledError = core.CancelledError

_CLAIM_RETRY_MS = 20  # how often a waiting newcomer looks for a slot (its deadline is the pool's)
_DRAIN_BUF_BYTES = 64  # what a turned-away client still sends is read into this and dropped

OVERFLOW = "overflow"  # dropped from a full queue, or answered at once and closed there
BUSY_LINGER_TIMEOUT = "busy_linger_timeout"  # LINGER's deadline after the busy 503
_SHUTDOWN = "shutdown"
_LINGER_TIMEOUT = "linger_timeout"  # pool.py's reason at LINGER's deadline


class TurnAway(Slot):
    """One newcomer without a slot. Not one of the pool's slots (never evicted, never counted
    in use), but timed by pool.expire() like one: NEW while it waits for a slot, with
    stall_evict_ms for that (then wake(): its 503 is due); WRITE while the 503 goes out; LINGER
    while it waits for the client's EOF."""

    def __init__(self, pool, sock):
        Slot.__init__(self, pool)
        self.sock = sock
        self.task = None  # type: asyncio.Task | None
        self.enter(NEW)
        self.deadline = ticks_add(pool.clock(), pool.stall_ms)
        self.due = False  # its wait for a slot is over: the busy 503 now

    def wake(self):
        # pool.expire(), at the end of its wait for a slot
        self.due = True

    def in_flight(self):
        return sockets.unacked(self.sock)

    def input_waiting(self):
        return sockets.readable(self.sock)

    def droppable(self, now, silent_only):
        """Its socket may be closed for a newcomer: it has sent nothing for SILENT_GRACE_MS
        while waiting for a slot, or (not silent_only) it lingers after its 503 and the pool
        has seen the 503 acknowledged (a tick after it went out at the earliest): its client
        has its answer, and the close is a reset."""
        if self.sock is None or self.cancelled is not None:
            return False
        if self.state == NEW:
            return not self.due and ticks_diff(now, self.since) >= SILENT_GRACE_MS and not self.input_waiting()
        return not silent_only and self.state == LINGER and self.acked


class TurnAways:
    def __init__(self, server):
        self.server = server
        self.queue = server.pool.turned_away  # oldest first; the pool times them
        self._scratch = bytearray(_DRAIN_BUF_BYTES)  # what a newcomer answered at once sent

    def __len__(self):
        return len(self.queue)

    def add(self, cs):
        """Take in cs (the server found no slot for it) to wait for one, while fewer than
        twice max_turnaways entries are queued (see the module comment); a full queue first
        drops what it may, and max_turnaways waiting already makes the longest waiting one's
        503 due. False if cs was not taken in (answered and closed at once)."""
        server = self.server
        server.stats.turned_away += 1
        limit = server.cfg.max_turnaways
        queue = self.queue
        while len(queue) >= limit and self._drop():
            pass
        if len(queue) >= 2 * limit:
            self._refuse(cs)
            return False
        t = TurnAway(server.pool, cs)
        t.task = asyncio.create_task(self._wait(t))  # first: it may raise MemoryError
        waiting = [w for w in queue if w.state == NEW and not w.due]
        if len(waiting) >= limit:
            # no room to wait: the entry waiting longest gets its 503 now and cs waits in its
            # stead (the newest request is the likeliest still wanted)
            waiting[0].due = True
        queue.append(t)
        return True

    def shed(self):
        """Out of sockets: drop the oldest entry that may go for a newcomer; True if there was
        one."""
        return self._drop()

    def _drop(self):
        # the oldest silent entry, else the oldest answered one
        now = self.server.pool.clock()
        for silent_only in (True, False):
            for t in self.queue:
                if t.droppable(now, silent_only):
                    self._close(t, OVERFLOW, True)
                    t.cancel(OVERFLOW)  # its task ends (never started: it sees .cancelled)
                    return True
        return False

    def _refuse(self, cs):
        # Past twice max_turnaways, with nothing to drop (a board runs out of sockets before:
        # this is for a host's burst of connects): the busy 503 and the close at once. What came
        # of the request is read first (a close with unread bytes is a reset, which may destroy
        # the answer), and the close is a FIN, the 503 being in flight (a reset right behind it
        # can reach a client before it has seen its own connect complete).
        server = self.server
        stats = server.stats
        stats.rejected_busy += 1
        stats.answered(503)
        try:
            buf = self._scratch
            budget = server.cfg.linger_drain_bytes
            while budget > 0:
                n = cs.readinto(buf)
                if not n:  # None: nothing more yet; 0: the client's EOF
                    break
                budget -= n
            cs.write(server.busy_answer)
        except OSError:
            pass
        stats.ended(OVERFLOW, sockets.close(cs))

    def cancel(self):
        """At shutdown, once they have had shutdown_timeout_ms: they close their own sockets."""
        for t in self.queue:
            t.cancel(_SHUTDOWN)

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
        reason = _SHUTDOWN
        abortive = True
        try:
            t.started = True
            if t.cancelled is not None:  # dropped or shut down before this task first ran
                return
            while not t.due and not server.stopping:
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
            io = Waiter()
            t.enter(WRITE)
            await io.send(cs, server.busy_answer)
            # the client's EOF, linger_timeout_ms from the 503's acknowledgement (pool.expire)
            t.enter(LINGER)
            eof = await drain(io, cs, bytearray(_DRAIN_BUF_BYTES), cfg.linger_drain_bytes)
            reason = CLIENT if eof else "linger_overflow"
            abortive = not eof
        except CancelledError:  # the pool's deadline, shutdown, or dropped (then already closed)
            r = t.cancelled
            reason = BUSY_LINGER_TIMEOUT if r == _LINGER_TIMEOUT else (r or _SHUTDOWN)
            raise
        except OSError:
            reason = RESET
            abortive = False
        except MemoryError:
            reason = "memory"
        finally:
            self._close(t, reason, abortive)
