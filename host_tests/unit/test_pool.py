# The connection pool (firmware/nostall/pool.py): its state table, deadlines, LRU and stall
# eviction, with a fake clock and fake tasks. Runs on CPython and on MicroPython.

from unitcheck import Clock, Task, raises

from nostall.config import Config
from nostall.pool import (
    ABORTIVE,
    AFTER_ACKS,
    BODY,
    FREE,
    HANDLER,
    HEAD,
    IDLE,
    LINGER,
    NAMES,
    NEW,
    SILENT_GRACE_MS,
    STREAM,
    WS_CLOSED,
    TIMEOUT_LIMITS,
    TIMEOUT_REASONS,
    WRITE,
    WS,
    Pool,
    Slot,
    StateError,
)

ALL = (FREE, NEW, IDLE, HEAD, BODY, HANDLER, WRITE, LINGER, WS, STREAM, WS_CLOSED)

# every legal step; the table in pool.py must allow exactly these (and X -> FREE from anywhere)
LEGAL = {
    FREE: (NEW,),
    NEW: (HEAD, BODY, HANDLER, WRITE),
    IDLE: (HEAD, BODY, HANDLER, WRITE),
    HEAD: (BODY, HANDLER, WRITE),
    BODY: (HANDLER, WRITE),
    HANDLER: (WRITE, BODY),  # BODY: a streamed body's handler waits for more of it
    WRITE: (WRITE, IDLE, LINGER, WS, STREAM),
    LINGER: (WS_CLOSED,),
    WS: (WS, WRITE, LINGER, WS_CLOSED),
    STREAM: (STREAM, WRITE),
    WS_CLOSED: (),
}


def make(n=3, clock=None, **limits):
    cfg = Config(**limits)
    pool = Pool(cfg, clock or Clock())
    for _ in range(n):
        pool.add(Slot(pool))
    return pool


def opened(pool, started=True):
    """Open a connection in a free slot, as the server does; returns the slot."""
    slot = pool.free()
    pool.open(slot, Task())
    slot.started = started
    return slot


def put(slot, *states):
    for s in states:
        slot.enter(s)
    return slot


def test_table_allows_exactly_the_legal_steps():
    pool = make(1)
    for a in ALL:
        for b in ALL:
            slot = Slot(pool)
            slot.state = a
            ok = b == FREE or b in LEGAL[a]
            if ok:
                slot.enter(b)
                assert slot.state == b
            else:
                with raises(StateError, "%s -> %s" % (NAMES[a], NAMES[b])):
                    slot.enter(b)
                assert slot.state == a, "an illegal step must not move the slot"


def test_only_states_with_nothing_of_the_servers_in_flight_close_abortively():
    assert [NAMES[s] for s in ALL if ABORTIVE >> s & 1] == ["new", "idle", "linger", "ws", "stream", "ws_closed"]


def test_every_state_but_free_has_a_timeout_limit_and_a_close_reason():
    names = Config().as_dict()
    for s in ALL:
        if s == FREE:
            assert TIMEOUT_LIMITS[s] is None and TIMEOUT_REASONS[s] is None
        else:
            assert TIMEOUT_LIMITS[s] in names, NAMES[s]
            assert TIMEOUT_REASONS[s].endswith("_timeout"), NAMES[s]


def test_deadlines_come_from_the_config_read_once():
    clock = Clock(5000)
    pool = make(1, clock, first_request_timeout_ms=3000, header_timeout_ms=700, write_timeout_ms=900)
    slot = opened(pool)
    assert slot.deadline == 8000 and slot.since == 5000
    clock.advance(100)
    slot.enter(HEAD)
    assert slot.deadline == 5100 + 700
    slot.enter(HANDLER)
    slot.enter(WRITE)
    clock.advance(50)
    slot.enter(WRITE)  # progress while writing: its deadline counts from now
    assert slot.deadline == 5150 + 900


def test_expire_cancels_each_connection_past_its_deadline_with_its_states_reason():
    clock = Clock()
    pool = make(3, clock, first_request_timeout_ms=1000, header_timeout_ms=300, handler_timeout_ms=2000)
    a = opened(pool)  # NEW: no first request yet
    b = put(opened(pool), HEAD)
    c = put(opened(pool), HANDLER)
    clock.advance(299)
    pool.expire()
    assert [s.cancelled for s in (a, b, c)] == [None, None, None]
    clock.advance(1)
    pool.expire()
    assert b.cancelled == "header_timeout" and b.task.cancelled == 1
    clock.advance(700)
    pool.expire()
    pool.expire()  # a cancelled connection is not cancelled again
    assert a.cancelled == "first_request_timeout" and a.task.cancelled == 1 and b.task.cancelled == 1
    clock.advance(1000)
    pool.expire()
    assert c.cancelled == "handler_timeout"


def test_a_task_that_has_not_run_is_marked_not_cancelled():
    # cancelling a task before its first step skips its finally: it must see .cancelled instead
    pool = make(1)
    slot = opened(pool, started=False)
    slot.cancel("evicted")
    assert slot.cancelled == "evicted" and slot.task.cancelled == 0


def test_open_release_and_the_gauges():
    pool = make(2)
    a = opened(pool)
    b = opened(pool)
    assert pool.free() is None and pool.in_use == 2 and pool.peak == 2
    pool.release(a)
    pool.release(a)  # twice is once
    assert pool.in_use == 1 and pool.free() is a and a.task is None and a.state == FREE
    assert b.state == NEW


def test_eviction_takes_the_least_recently_used_idle_connection():
    pool = make(3)
    a = put(opened(pool), HANDLER, WRITE, IDLE)
    b = put(opened(pool), HANDLER, WRITE, IDLE)
    c = put(opened(pool), HANDLER, WRITE, IDLE)
    pool.touch(a)  # a served a request since: b is now the least recently used
    assert pool.evict()
    assert b.cancelled == "evicted" and a.cancelled is None and c.cancelled is None
    assert pool.evict()
    assert c.cancelled == "evicted"
    assert pool.evict() and a.cancelled == "evicted"
    assert not pool.evict()


def test_a_new_connection_is_not_idle_but_may_be_stalled():
    # no first request yet: maybe in flight (not LRU-evictable), maybe a preconnect that never
    # sends (evictable as stalled once stall_evict_ms has passed)
    clock = Clock()
    pool = make(1, clock, stall_evict_ms=1000)
    slot = opened(pool)
    assert not pool.evict()
    clock.advance(999)
    assert not pool.evict()
    clock.advance(1)
    assert pool.evict() and slot.cancelled == "evicted_stalled"


def test_stall_eviction_takes_the_longest_stalled_and_never_the_handler():
    clock = Clock()
    pool = make(4, clock, stall_evict_ms=500)
    handler = put(opened(pool), HANDLER)  # waiting on the app, not on the client
    clock.advance(100)
    head = put(opened(pool), HEAD)
    clock.advance(100)
    write = put(opened(pool), HANDLER, WRITE)
    clock.advance(100)
    linger = put(opened(pool), HANDLER, WRITE, LINGER)
    clock.advance(350)  # head stalled 550, write 450, linger 350, handler 650
    assert pool.evict()
    assert head.cancelled == "evicted_stalled"
    assert not pool.evict()  # none other has lasted 500 ms yet
    clock.advance(50)
    assert pool.evict() and write.cancelled == "evicted_stalled"
    assert handler.cancelled is None and linger.cancelled is None


def test_idle_is_evicted_before_any_stalled_one():
    clock = Clock()
    pool = make(2, clock, stall_evict_ms=10)
    stalled = put(opened(pool), HEAD)
    idle = put(opened(pool), HANDLER, WRITE, IDLE)
    clock.advance(1000)
    assert pool.evict() and idle.cancelled == "evicted" and stalled.cancelled is None


def test_waiting_lists_the_slots_in_a_state():
    pool = make(3)
    a = opened(pool)
    b = put(opened(pool), HANDLER, WRITE, IDLE)
    assert pool.waiting(NEW) == [a] and pool.waiting(IDLE) == [b] and len(pool.waiting(FREE)) == 1


def test_a_waiting_request_takes_the_place_of_the_longest_silence():
    clock = Clock()
    pool = make(3, clock, stall_evict_ms=1000)
    first = opened(pool)
    clock.advance(30)
    second = opened(pool)
    clock.advance(30)
    trickle = put(opened(pool), HEAD)
    assert not pool.evict(request_waiting=True)  # 60 ms of silence: a request may be on its way
    clock.advance(SILENT_GRACE_MS - 60)
    assert not pool.evict()  # a silent newcomer waits for a stall of 1000 ms
    assert pool.evict(request_waiting=True)  # one with a request does not
    assert first.cancelled == "evicted_silent" and second.cancelled is None and trickle.cancelled is None
    clock.advance(30)
    assert pool.evict(request_waiting=True) and second.cancelled == "evicted_silent"
    assert not pool.evict(request_waiting=True)  # a head in progress is not silence
    clock.advance(1000)
    assert pool.evict(request_waiting=True) and trickle.cancelled == "evicted_stalled"


def test_idle_goes_before_silent_even_for_a_waiting_request():
    pool = make(2)
    silent = opened(pool)
    idle = put(opened(pool), HANDLER, WRITE, IDLE)
    assert pool.evict(request_waiting=True) and idle.cancelled == "evicted" and silent.cancelled is None


class Waker(Slot):
    def __init__(self, pool):
        Slot.__init__(self, pool)
        self.woken = 0

    def wake(self):
        self.woken += 1
        Slot.wake(self)


def test_long_lived_states_are_woken_at_their_deadline_not_closed():
    clock = Clock()
    pool = Pool(Config(ws_ping_interval_ms=500, sse_heartbeat_ms=300), clock)
    ws, sse = Waker(pool), Waker(pool)
    pool.add(ws)
    pool.add(sse)
    for slot, state in ((ws, WS), (sse, STREAM)):
        pool.open(slot, Task())
        slot.started = True
        put(slot, HANDLER, WRITE, state)
        slot.long_lived = True
    assert pool.long_lived() == 2
    clock.advance(300)
    pool.expire()
    assert (ws.woken, sse.woken) == (0, 1) and sse.deadline == clock() + 300 and sse.cancelled is None
    clock.advance(200)
    pool.expire()
    assert (ws.woken, sse.woken) == (1, 1) and ws.cancelled is None
    pool.release(ws)
    assert pool.long_lived() == 1


class Unacked(Slot):
    """A slot whose connection's last bytes are in flight while .unacked is True, and whose
    client's bytes wait unread in its socket while .unread is True."""

    def __init__(self, pool):
        Slot.__init__(self, pool)
        self.unacked = False
        self.unread = False

    def in_flight(self):
        return self.unacked

    def input_waiting(self):
        return self.unread


def waiting_for_close(clock, states, **limits):
    """A pool of one Unacked slot whose connection went through states (ending in LINGER or
    WS_CLOSED: the board waits for the client's close)."""
    pool = Pool(Config(**limits), clock)
    slot = Unacked(pool)
    pool.add(slot)
    pool.open(slot, Task())
    slot.started = True
    return put(slot, *states)


def test_only_the_states_waiting_for_the_clients_close_count_from_the_acknowledgement():
    assert [NAMES[s] for s in ALL if AFTER_ACKS >> s & 1] == ["linger", "ws_closed"]


def test_a_linger_counts_from_the_acknowledgement_of_the_answer_not_from_its_hand_over():
    # a lost segment of the answer is retransmitted seconds later: the client cannot close
    # before it has it, so the linger must not run out meanwhile
    clock = Clock()
    slot = waiting_for_close(clock, (HANDLER, WRITE, LINGER), linger_timeout_ms=2000, write_timeout_ms=10000, tick_ms=100)
    pool = slot.pool
    assert slot.deadline == clock() + 100 and not slot.acked, "first a look for the acknowledgement"
    slot.unacked = True
    for _ in range(19):  # retransmitted 1.9 s later: the linger's own 2 s would have run out
        clock.advance(100)
        pool.expire()
        assert slot.cancelled is None and slot.deadline == clock() + 100
    slot.unacked = False  # acknowledged between two looks
    clock.advance(50)
    pool.expire()  # not due yet
    assert slot.cancelled is None and not slot.acked
    clock.advance(50)
    pool.expire()  # due: acknowledged now, so the whole linger from here
    assert slot.cancelled is None and slot.acked and slot.state == LINGER and slot.deadline == clock() + 2000
    clock.advance(1999)
    pool.expire()
    assert slot.cancelled is None
    clock.advance(1)
    pool.expire()
    assert slot.cancelled == "linger_timeout"


def test_an_answer_acknowledged_at_once_gets_the_linger_from_the_first_look():
    clock = Clock()
    slot = waiting_for_close(clock, (HANDLER, WRITE, LINGER), linger_timeout_ms=2000, tick_ms=100)
    pool = slot.pool
    clock.advance(100)
    pool.expire()
    assert slot.cancelled is None and slot.acked and slot.deadline == clock() + 2000
    clock.advance(2000)
    pool.expire()
    assert slot.cancelled == "linger_timeout"


def test_an_answer_never_acknowledged_ends_at_write_timeout_forced():
    # the client vanished (its link is down for good): what it did not take for write_timeout_ms
    # since the linger began ends the connection as a client that stopped reading does
    clock = Clock()
    slot = waiting_for_close(clock, (HANDLER, WRITE, WS, WS_CLOSED), ws_close_wait_ms=200, write_timeout_ms=3000,
                             tick_ms=50)
    pool = slot.pool
    slot.unacked = True
    for _ in range(100):
        clock.advance(50)
        pool.expire()
        if slot.cancelled is not None:
            break
    assert slot.cancelled == "write_timeout" and clock() - slot.since == 3000


def test_a_close_wait_with_its_bytes_in_flight_is_not_evicted_as_stalled():
    # it waits on the link, not on its client; closing it now would leave the board a TIME_WAIT
    clock = Clock()
    slot = waiting_for_close(clock, (HANDLER, WRITE, LINGER), stall_evict_ms=1000, tick_ms=100)
    pool = slot.pool
    slot.unacked = True
    for _ in range(20):
        clock.advance(100)
        pool.expire()
    assert not pool.evict() and slot.cancelled is None
    slot.unacked = False
    clock.advance(100)
    pool.expire()
    assert pool.evict() and slot.cancelled == "evicted_stalled"


class Newcomer(Unacked):
    """A turned-away newcomer as turnaway.py makes one: not a slot of the pool, but timed by it
    (pool.turned_away): NEW with stall_evict_ms to wait for a slot, then WRITE and LINGER."""

    def __init__(self, pool):
        Unacked.__init__(self, pool)
        self.due = 0
        self.enter(NEW)
        self.deadline = self.since + pool.stall_ms
        self.task = Task()
        self.started = True
        pool.turned_away.append(self)

    def wake(self):
        self.due += 1


def test_a_turned_away_newcomer_is_woken_for_its_503_at_its_deadline_on_the_pools_clock():
    clock = Clock()
    pool = make(1, clock, stall_evict_ms=1000, first_request_timeout_ms=300)
    t = Newcomer(pool)
    clock.advance(999)
    pool.expire()  # not at NEW's own timeout: its wait for a slot is stall_evict_ms
    assert t.due == 0 and t.cancelled is None
    clock.advance(1)
    pool.expire()
    assert t.due == 1 and t.cancelled is None and t.task.cancelled == 0


def test_a_turned_away_newcomer_is_neither_evicted_nor_counted_as_a_slot():
    clock = Clock()
    pool = make(1, clock, stall_evict_ms=100)
    t = Newcomer(pool)
    clock.advance(5000)
    assert not pool.evict(request_waiting=True) and t.cancelled is None
    assert pool.in_use == 0 and pool.free() is not None and pool.waiting(NEW) == []


def test_a_turned_away_503s_linger_counts_from_its_acknowledgement():
    clock = Clock()
    pool = make(1, clock, stall_evict_ms=1000, linger_timeout_ms=2000, write_timeout_ms=10000, tick_ms=100)
    t = Newcomer(pool)
    clock.advance(1000)
    pool.expire()
    assert t.due == 1
    put(t, WRITE, LINGER)  # the 503 went out
    t.unacked = True
    for _ in range(15):  # retransmitted 1.5 s later
        clock.advance(100)
        pool.expire()
        assert t.cancelled is None
    t.unacked = False
    clock.advance(100)
    pool.expire()
    assert t.acked and t.deadline == clock() + 2000 and t.cancelled is None
    clock.advance(2000)
    pool.expire()
    assert t.cancelled == "linger_timeout" and t.task.cancelled == 1  # turnaway.py: busy_linger_timeout


def test_a_turned_away_503_never_acknowledged_or_never_sent_ends_at_write_timeout():
    clock = Clock()
    pool = make(1, clock, stall_evict_ms=100, write_timeout_ms=3000, tick_ms=100)
    lingering, writing = Newcomer(pool), Newcomer(pool)
    put(lingering, WRITE, LINGER)
    lingering.unacked = True
    put(writing, WRITE)  # the client takes nothing: the 503 stays in the socket's buffer
    clock.advance(2900)
    pool.expire()
    assert lingering.cancelled is None and writing.cancelled is None
    clock.advance(100)
    pool.expire()
    assert lingering.cancelled == "write_timeout" and writing.cancelled == "write_timeout"


Unread = Unacked  # its .unread: the client's bytes wait unread in its socket

def test_a_new_connection_with_its_request_unread_is_not_silent():
    # its task has not run since the request came (the event loop was held up): a newcomer with
    # a request must not take its place as if it had sent nothing, nor as stalled
    clock = Clock()
    pool = Pool(Config(stall_evict_ms=1000), clock)
    late, quiet = Unread(pool), Unread(pool)
    for slot in (late, quiet):
        pool.add(slot)
        pool.open(slot, Task())
        slot.started = True
    late.unread = True
    clock.advance(1000)
    assert pool.evict(request_waiting=True) and quiet.cancelled == "evicted_silent"
    assert not pool.evict(request_waiting=True) and late.cancelled is None
    late.unread = False  # read, and still nothing of a request: silent after all
    assert pool.evict(request_waiting=True) and late.cancelled == "evicted_silent"
