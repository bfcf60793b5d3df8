# Connection slots: a fixed pool, each slot in one state of an explicit table.
#
# A slot's state says what its connection is waiting for. The table gives each state the limit
# that bounds the wait, the reason a connection is closed with when that runs out, whether the
# wait is on the client (then, at the cap, a newcomer may evict it once it has lasted
# stall_evict_ms) and the states that may follow. Every state may also go to FREE (the close).
# Any other step raises StateError: a bug in the shell, never a client's doing. The timeouts are
# read from the Config once, when the pool is built.
#
# At the cap a newcomer takes the slot of the least recently used IDLE connection (a kept-alive
# one, between requests), else of the one stalled longest on its client. The pool only cancels
# the victim's task (with the reason in slot.cancelled); the task closes its own socket.
#
# Time comes from pool.clock (time.ticks_ms on a board): tests pass a fake clock. Nothing here
# imports asyncio or socket: a slot's task only needs .cancel().

from nostall.ticks import ticks_add, ticks_diff, ticks_ms

FREE = 0
NEW = 1  # accepted, no request yet (a browser's preconnect, or the first request in flight)
IDLE = 2  # kept alive after a response, no request in flight
HEAD = 3  # part of a request head received
BODY = 4  # the head is in, the body is due (a streamed one: the handler waits for more of it)
HANDLER = 5  # the app is producing the response (a streamed body's handler: between its reads)
WRITE = 6  # the response is being sent
LINGER = 7  # sent "Connection: close": waiting for the client's EOF
WS = 8  # an open WebSocket: waiting for the client's frames (and sending the app's)
STREAM = 9  # an event stream: waiting for something to send
WS_CLOSED = 10  # a WebSocket's close handshake done: waiting (briefly) for the client's TCP close
WS_PING = 11  # a WebSocket pinged its silent client: waiting for any frame back

# A connection that has sent nothing this long counts as silent, so a newcomer whose request is
# waiting may take its place: a client's request follows its connect by one round trip (ms on a
# LAN, tens of ms on busy Wi-Fi), so a silent one is a preconnect, a scan or a flood.
SILENT_GRACE_MS = 100

# The close reason of a client that takes nothing of the answer for write_timeout_ms: while the
# server writes (WRITE), and in a state that waits after acks while the acknowledgement does
# not come. Such a close is forced (sockets.close): the client is gone or stopped reading.
WRITE_TIMEOUT = "write_timeout"

# HANDLER's timeout interrupts the handler (the request gets a 503), the connection goes on.
# "abortive": when the server closes first in this state nothing of its own is in flight, so the
# close may be a reset (sockets.close): no TIME_WAIT on the board. "wakes": at its deadline the
# connection is woken (slot.wake(): a WebSocket's ping, an event stream's heartbeat), not closed.
# "after acks": the state waits for the client to close once it has the server's last bytes, so
# its time counts from their acknowledgement, not from their hand-over to the stack (see
# Pool._overdue): on a lossy link lwIP retransmits a lost segment 1.5 s or more later, and a
# linger that ran out meanwhile made the board close first while its answer was unacknowledged,
# a close that cannot be a reset (lwIP would drop the answer) and so left TIME_WAIT on the board.
_TABLE = (
    # state   name  timeout limit  reason at timeout  on client  abortive  wakes  after acks  may go to (and FREE)
    (FREE, "free", None, None, False, False, False, False, (NEW,)),
    (NEW, "new", "first_request_timeout_ms", "first_request_timeout", True, True, False, False, (HEAD, BODY, HANDLER, WRITE)),
    (IDLE, "idle", "idle_timeout_ms", "idle_timeout", False, True, False, False, (HEAD, BODY, HANDLER, WRITE)),
    (HEAD, "head", "header_timeout_ms", "header_timeout", True, False, False, False, (BODY, HANDLER, WRITE)),
    (BODY, "body", "body_timeout_ms", "body_timeout", True, False, False, False, (HANDLER, WRITE)),
    (HANDLER, "handler", "handler_timeout_ms", "handler_timeout", False, False, False, False, (WRITE, BODY)),
    (WRITE, "write", "write_timeout_ms", WRITE_TIMEOUT, True, False, False, False, (WRITE, IDLE, LINGER, WS, STREAM, WS_PING)),
    (LINGER, "linger", "linger_timeout_ms", "linger_timeout", True, True, False, True, (WS_CLOSED,)),
    (WS, "ws", "ws_ping_interval_ms", "ws_timeout", False, True, True, False, (WS, WRITE, LINGER, WS_CLOSED, WS_PING)),
    (STREAM, "stream", "sse_heartbeat_ms", "stream_timeout", False, True, True, False, (STREAM, WRITE)),
    (WS_CLOSED, "ws_closed", "ws_close_wait_ms", "ws_close_timeout", True, True, False, True, ()),
    (WS_PING, "ws_ping", "ws_pong_timeout_ms", "ws_timeout", False, True, False, False, (WS, WRITE, LINGER, WS_CLOSED, WS_PING)),
)
# the table's columns, each a tuple indexed by state (the yes/no ones made masks below); the rows
# themselves are not kept
_STATES, NAMES, TIMEOUT_LIMITS, TIMEOUT_REASONS, _ON_CLIENT, ABORTIVE, _WAKES, AFTER_ACKS, _FOLLOW = zip(*_TABLE)
assert _STATES == tuple(range(len(_TABLE)))  # the rows are in state order


def _mask(states, m):
    for s in states:
        m |= 1 << s
    return m


_NEXT = tuple(_mask(f, 1 << FREE) for f in _FOLLOW)  # bit s set: state s may follow
# the yes/no columns as one int each, bit s for state s (ABORTIVE >> s & 1): four tuples of 12
# were half a KB of every board's heap
_ON_CLIENT, ABORTIVE, _WAKES, AFTER_ACKS = (_mask((s for s in _STATES if c[s]), 0) for c in (_ON_CLIENT, ABORTIVE, _WAKES, AFTER_ACKS))
del _TABLE, _STATES, _FOLLOW, _mask


class StateError(RuntimeError):
    pass


class Slot:
    """One connection's place in the pool: its state, deadline, LRU stamp and task."""

    long_lived = False  # a WebSocket or event stream (also while it writes); set only on those

    def __init__(self, pool):
        self.pool = pool
        self.state = FREE
        self.since = 0  # when it entered its state (for WRITE: its last progress)
        self.deadline = 0
        self.used = 0  # LRU stamp: bumped per request
        self.task = None
        self.started = False  # its task has run: cancelling it now runs its finally (the close)
        self.cancelled = None  # why the pool cancelled its task; None: it has not
        self.acked = True  # False while a state after acks waits for them (its time not yet begun)

    def enter(self, state):
        """Move to state, with that state's timeout from now; StateError if the table forbids it."""
        if not _NEXT[self.state] & (1 << state):
            raise StateError("connection state %s -> %s" % (NAMES[self.state], NAMES[state]))
        pool = self.pool
        self.state = state
        self.since = now = pool.clock()
        # after acks: first a look for the acknowledgement, one tick from now (Pool._overdue)
        self.acked = not AFTER_ACKS >> state & 1
        self.deadline = ticks_add(now, pool.timeouts[state] if self.acked else pool.tick_ms)

    def wake(self):
        """Its deadline passed in a state that wakes (WS, STREAM): what to do is the connection's."""
        self.enter(self.state)

    def in_flight(self):
        """True while bytes the server sent on this connection are not yet acknowledged by the
        client (lwIP still holds them to retransmit). The connection asks its socket; a bare
        slot has none."""
        return False

    def input_waiting(self):  # type: () -> bool
        """True while bytes the client sent wait unread in the socket: its task has not run
        since they came (an event loop held up by a long step). The connection asks its
        socket; a bare slot has none."""
        return False

    def cancel(self, reason):
        """End this slot's connection for reason: its task is cancelled and closes the socket."""
        self.cancelled = reason
        t = self.task
        # A task cancelled before its first step never enters its try/finally, so its slot would
        # never be freed: one not yet started sees .cancelled when it starts.
        if t is not None and self.started:
            t.cancel()


class Pool:
    """A fixed set of slots (Slots, or a subclass carrying a connection), with cfg's timeouts.

    Example::

        pool = Pool(Config(), clock=fake_clock)
        for _ in range(2):
            pool.add(Slot(pool))
        slot = pool.free()        # None at the cap: then pool.evict() and try again
        pool.open(slot, task)
    """

    def __init__(self, cfg, clock=ticks_ms):
        self.clock = clock
        self.timeouts = tuple(getattr(cfg, name) if name else 0 for name in TIMEOUT_LIMITS)
        self.stall_ms = cfg.stall_evict_ms
        self.ack_wait_ms = cfg.write_timeout_ms  # the longest wait for an acknowledgement
        self.tick_ms = cfg.tick_ms  # how often an awaited acknowledgement is looked for
        self.slots = []
        # newcomers waiting without a slot, then lingering after their busy 503 (turnaway.py):
        # never evicted, but timed by expire() on this clock as the slots are
        self.turned_away = []
        self.cap = cfg.max_connections
        self.in_use = 0
        self.peak = 0
        self._lru = 0

    def add(self, slot):
        self.slots.append(slot)

    def free(self):
        """A FREE slot, or None when all are in use."""
        for slot in self.slots:
            if slot.state == FREE:
                return slot
        return None

    def open(self, slot, task):
        """A new connection, served by task, takes slot."""
        slot.enter(NEW)
        slot.task = task
        slot.started = False
        slot.cancelled = None
        self.touch(slot)
        self.in_use += 1
        if self.in_use > self.peak:
            self.peak = self.in_use

    def release(self, slot):
        """The connection in slot is closed: the slot is FREE again."""
        if slot.state != FREE:
            slot.enter(FREE)
            slot.task = None
            if slot.long_lived:
                slot.long_lived = False
            self.in_use -= 1

    def touch(self, slot):
        """slot served a request: it is now the most recently used."""
        self._lru += 1
        slot.used = self._lru

    def evict(self, request_waiting=False):
        """Cancel the connection a newcomer may take the place of, True if there was one: the
        least recently used IDLE one; else, for a newcomer whose request is already waiting,
        the one silent longest (NEW: nothing received for SILENT_GRACE_MS at least, nothing
        unread in its socket: slot.input_waiting()); else the one stalled longest
        (>= stall_evict_ms) on its client."""
        victim = None
        for slot in self.slots:
            if slot.state == IDLE and slot.cancelled is None:
                if victim is None or slot.used - victim.used < 0:
                    victim = slot
        if victim is not None:
            victim.cancel("evicted")
            return True
        now = self.clock()
        if request_waiting:
            victim = self._longest(now, NEW, SILENT_GRACE_MS)
            if victim is not None:
                victim.cancel("evicted_silent")
                return True
        victim = self._longest(now, None, self.stall_ms)
        if victim is not None:
            victim.cancel("evicted_stalled")
            return True
        return False

    def _longest(self, now, state, at_least_ms):
        # the slot waiting longest, at least at_least_ms, in state (None: in any state on the client)
        victim = None
        longest = at_least_ms - 1
        for slot in self.slots:
            s = slot.state
            # not one whose last bytes are in flight: it waits on the link, not on its client,
            # and a close now would leave a TIME_WAIT (no reset with bytes unacknowledged); not
            # a NEW one whose request is in its socket, unread yet: it is not silent
            if ((s == state if state is not None else _ON_CLIENT >> s & 1) and slot.cancelled is None and slot.acked
                    and not (s == NEW and slot.input_waiting())):
                waited = ticks_diff(now, slot.since)
                if waited > longest:
                    victim = slot
                    longest = waited
        return victim

    def expire(self):
        """Cancel every connection whose state's deadline has passed (the ticker's job); the
        turned-away newcomers too: one waiting for a slot (NEW) is woken at its deadline (its
        wait is over: the busy 503), one in WRITE or LINGER is timed as a slot would be."""
        now = self.clock()
        for slot in self.slots:
            if slot.state != FREE and slot.cancelled is None and ticks_diff(now, slot.deadline) >= 0:
                self._overdue(slot, now)
        for t in self.turned_away:
            if t.cancelled is None and ticks_diff(now, t.deadline) >= 0:
                if t.state == NEW:
                    t.wake()
                else:
                    self._overdue(t, now)

    def _overdue(self, slot, now):
        s = slot.state
        if _WAKES >> s & 1:
            slot.wake()
            return
        if not slot.acked:
            # a state after acks whose time has not begun: its bytes were in flight at the last
            # look. Still so: look again next tick, for at most ack_wait_ms since the state began
            # (then the client took nothing for write_timeout_ms: gone, or not reading).
            # Acknowledged now: the state's whole time from now
            if slot.in_flight():
                if ticks_diff(now, slot.since) < self.ack_wait_ms:
                    slot.deadline = ticks_add(now, self.tick_ms)
                else:
                    slot.cancel(WRITE_TIMEOUT)
                return
            slot.acked = True
            slot.deadline = ticks_add(now, self.timeouts[s])
            return
        slot.cancel(TIMEOUT_REASONS[s])

    def long_lived(self):
        """How many connections are WebSockets or event streams now."""
        n = 0
        for slot in self.slots:
            if slot.long_lived:
                n += 1
        return n

    def waiting(self, state):
        """The slots in state, e.g. pool.waiting(IDLE) at shutdown."""
        return [slot for slot in self.slots if slot.state == state]
