"""Tools for the abuse tests (host_tests/abuse/): a selector-driven flood of misbehaving sockets,
a browser-like well-behaved client, and the before/after resource check. Loopback or the target's
address only; every loop is bounded in count and time."""

import errno
import selectors
import socket
import statistics
import threading
import time

from harness.target import wait_for

TICK_S = 0.5  # floods act (send a byte, reopen dropped sockets) once per tick, as slowloris.py does
HEAD = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: "  # a head that never ends (slowloris)
# /status with the good client's patience (Target.status(retry_s=PATIENCE_S)): under a flood it
# may be refused or get a 503 like anyone.
PATIENCE_S = 5.0


class Flood:
    """n sockets of one kind held against the server from one thread (a selector), for a bounded time.

    kinds:
      park       request GET path (keep-alive), read the answer, keep the socket open (a browser's
                 parked connections)
      silent     connect and never send (preconnects, port scanners)
      slowloris  send one byte of a head that never ends per tick
      nonreader  request GET path with a 4 KB receive buffer and never read (a stalled download);
                 these cannot tell when the server drops them, so `n` new ones are opened per tick
    A socket the server drops (EOF/reset) is opened again at the next tick, as slowloris.py does,
    so the load stays at n the whole time. The flood reads (and drops) what the server sends only
    to see what the server did; that changes nothing server-side.
    """

    def __init__(self, target, n, kind, path="/api/led", max_open=None):
        assert kind in ("park", "silent", "slowloris", "nonreader")
        self.target = target
        self.path = path
        self.addr = (target.host, target.port)
        self.n = n
        self.kind = kind
        self.request = ("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode()
        self.max_open = max_open or n * 40  # hard cap on sockets opened in one run
        self.socks = {}  # socket -> record dict
        self.opened = 0
        self.connect_failed = 0
        self.answered = 0  # got a response other than 503
        self.busy_503 = 0
        self.dropped = 0  # the server closed (EOF) or reset it
        self.dropped_unanswered = 0  # ... having sent a whole request and got no answer
        self.held = []  # seconds from connect to the server's drop, per dropped socket
        self.sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = None
        self.error = None

    def copy(self):
        """A new flood of the same kind and size (a Flood runs once)."""
        return Flood(self.target, self.n, self.kind, self.path, self.max_open)

    # ---- control ----

    def start(self, duration_s):
        self._deadline = time.monotonic() + duration_s
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop acting (no bytes, no new sockets); the open sockets stay open until close()."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            assert not self._thread.is_alive(), "flood thread did not stop"
        if self.error is not None:
            raise self.error

    def close(self):
        for s in list(self.socks):
            self._forget(s)
        self.sel.close()

    def live(self):
        return len(self.socks)

    # ---- the loop ----

    def _run(self):
        try:
            next_tick = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                now = time.monotonic()
                if now >= next_tick:
                    self._tick()
                    next_tick += TICK_S
                if not self.socks:
                    time.sleep(min(0.05, max(0.0, next_tick - now)))
                    continue
                for key, mask in self.sel.select(timeout=min(0.05, max(0.0, next_tick - now))):
                    self._event(key.fileobj, mask)
        except Exception as e:  # reported by stop()
            self.error = e

    def _tick(self):
        if self.kind == "slowloris":
            for s, rec in list(self.socks.items()):
                if rec["connected"]:
                    i = rec["sent"]
                    byte = HEAD[i:i + 1] or b"a"
                    try:
                        s.send(byte)
                        rec["sent"] = i + 1
                    except OSError:
                        self._dropped(s)
        want = self.n if self.kind == "nonreader" else self.n - len(self.socks)
        for _ in range(max(0, want)):
            if self.opened >= self.max_open:
                break
            self._open()

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.kind == "nonreader":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        err = s.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            self.connect_failed += 1
            s.close()
            return
        self.opened += 1
        self.socks[s] = {"t0": time.monotonic(), "connected": False, "sent": 0, "first": True}
        self.sel.register(s, selectors.EVENT_WRITE)

    def _event(self, s, mask):
        rec = self.socks.get(s)
        if rec is None:
            return
        if not rec["connected"]:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.connect_failed += 1
                self._forget(s)
                return
            rec["connected"] = True
            rec["t0"] = time.monotonic()
            try:
                if self.kind in ("park", "nonreader"):
                    s.send(self.request)
                elif self.kind == "slowloris":
                    s.send(HEAD[:1])
                    rec["sent"] = 1
            except OSError:
                self._dropped(s)
                return
            if self.kind == "nonreader":
                self.sel.unregister(s)  # never read: keep the socket, stop watching it
            else:
                self.sel.modify(s, selectors.EVENT_READ)
            return
        try:
            data = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        except BlockingIOError:
            return
        if not data:
            self._dropped(s)
            return
        if rec["first"]:
            rec["first"] = False
            if data.startswith(b"HTTP/1.1 503"):
                self.busy_503 += 1
            else:
                self.answered += 1

    def _dropped(self, s):
        rec = self.socks.get(s)
        if rec is not None and rec["connected"]:
            self.dropped += 1
            if self.kind == "park" and rec["first"]:
                self.dropped_unanswered += 1
            self.held.append(time.monotonic() - rec["t0"])
        self._forget(s)

    def _forget(self, s):
        if self.socks.pop(s, None) is not None:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
        s.close()

    def summary(self):
        held = max(self.held) if self.held else 0.0
        s = "%d opened, %d answered, %d got 503, %d dropped by the server (longest held %.2f s from connect)" % (
            self.opened, self.answered, self.busy_503, self.dropped, held)
        if self.kind == "park":
            s += ", %d of them before an answer (closed at once as a third waiting newcomer)" % self.dropped_unanswered
        return s + (", %d connects failed" % self.connect_failed if self.connect_failed else "")


class GoodClient:
    """A well-behaved client: one GET per new connection, every `interval` s, from its own thread.

    Retry policy (a browser's, stated): an attempt fails on a refused, reset or timed-out connection,
    on EOF before a whole response, or on a 503; after a 503 it waits the Retry-After seconds the
    server sent, after the others 0.1 s, then tries again on a new connection. A request that has
    no answer `budget_s` seconds after its first attempt counts as failed. Latency is from the first
    attempt to the answer, retries included.
    """

    def __init__(self, target, path="/api/led", interval=0.2, budget_s=5.0, attempt_timeout=2.0):
        self.target = target
        self.path = path
        self.interval = interval
        self.budget_s = budget_s
        self.attempt_timeout = attempt_timeout
        self.latencies = []
        self.failed = 0
        self.retries = 0
        self.errors = []  # (kind, detail) of every failed attempt, for the failure message
        self._stop = threading.Event()
        self._thread = None

    def get(self):
        """One request with the retry policy: latency in s, or None if the budget ran out."""
        t0 = time.monotonic()
        while True:
            wait = 0.1
            try:
                with self.target.connect(timeout=self.attempt_timeout) as c:
                    r = c.request("GET", self.path)
                if r.status == 200:
                    return time.monotonic() - t0
                if r.status == 503 and "retry-after" in r.headers:
                    wait = float(r.headers["retry-after"])
                    self.errors.append(("503", ""))
                else:
                    self.errors.append(("status", r.status))
                    return None  # a wrong answer is not retried: it fails the request
            except (OSError, EOFError) as e:
                self.errors.append((type(e).__name__, str(e)))
            if time.monotonic() + wait - t0 > self.budget_s:
                return None
            self.retries += 1
            time.sleep(wait)

    def run_for(self, duration_s, max_requests=200):
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline and len(self.latencies) + self.failed < max_requests:
            if self._stop.is_set():
                break
            lat = self.get()
            if lat is None:
                self.failed += 1
            else:
                self.latencies.append(lat)
            time.sleep(self.interval)

    def start(self, duration_s):
        self._thread = threading.Thread(target=self.run_for, args=(duration_s,), daemon=True)
        self._thread.start()
        return self

    def join(self):
        self._thread.join(30)
        assert not self._thread.is_alive(), "good client did not finish"

    def summary(self):
        n = len(self.latencies) + self.failed
        if not self.latencies:
            return "0/%d answered" % n
        return "%d/%d answered, p50 %s, max %s, %d retries" % (
            len(self.latencies), n, ms(statistics.median(self.latencies)), ms(max(self.latencies)), self.retries)


def ms(s):
    return "%d ms" % round(s * 1000)


def resting_fds(t, window_s=0.3):
    """The sim's fd count at rest: the fewest seen over window_s. The connection the last /status
    used may still be open for a moment after the client closed it; a leaked socket stays."""
    low = t.fd_count()
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline:
        time.sleep(0.05)
        low = min(low, t.fd_count())
    return low


def warm_slots(t):
    """Every connection slot serves a request at once: a slot and its receive buffer are made at
    their first connection and kept (as the body reader is loaded by the first body), so a
    baseline taken before would count them as lost heap.
    Each connection sends its request as it connects (a silent one may be evicted); one the
    server resets or evicts meanwhile has done its part: its slot exists."""
    n = t.status(retry_s=PATIENCE_S)["limits"]["max_connections"]
    conns = []
    answers = {}
    try:
        for i in range(n):
            c = t.connect()
            conns.append(c)
            try:
                c.send(_WARM_UPS.get(i, _WARM_UP_404)[0])  # see _WARM_UPS
            except OSError:
                pass
        for i, c in enumerate(conns):
            try:
                answers[i] = c.response().status
            except (OSError, ValueError):
                pass
    finally:
        for c in conns:
            c.close()
    # A connection reset or evicted before its request was read loaded nothing: the code its
    # request loads would load during the test (with the qstrs its source makes) and count as
    # heap lost. Its request again, alone (bounded).
    for i, (request, status) in _WARM_UPS.items():
        for _ in range(3):
            if answers.get(i) == status:
                break
            try:
                with t.connect() as c:
                    c.send(request)
                    answers[i] = c.response().status
            except (OSError, ValueError):
                time.sleep(0.1)
    wait_for(lambda: t.status(retry_s=PATIENCE_S)["connections_open"] <= 1, timeout=3)
    turn_one_away(t, n)


# warm_slots' requests that load code, by connection (request, the status it gets): the first has
# a body: the body reader, loaded by the first request with one (a 405); the second is refused
# for its bare LF: the words of the server's own refusals and failures (words.py) load at the
# first one. The rest: a 404 each. Connection: close: none of them idles into idle_timeout_ms
# meanwhile (a close of the server's, which a test's list of expected reasons may not have).
# Small answers (405, 400, 404): six /status documents at once made the real port's GC heap
# grow from ESP-IDF's (README, "The real firmware in QEMU")
_WARM_UPS = {
    0: (b"POST /status HTTP/1.1\r\nContent-Length: 2\r\nHost: x\r\nConnection: close\r\n\r\n{}", 405),
    1: (b"GET /warm-up HTTP/1.1\nHost: x\n\n", 400),
}
_WARM_UP_404 = (b"GET /warm-up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404)


def turn_one_away(t, n):
    """The first newcomer that finds no slot loads the turn-away queue's code (once), so a
    baseline taken before would count it as lost heap: n + 1 connections open at once, silent (a
    silent newcomer may take only an idle connection's slot, or that of one silent for
    stall_evict_ms), and close (the client's close: no server close is counted); again (bounded)
    until /status counts a newcomer turned away. Nothing asks /status meanwhile: a request would
    take a silent one's slot."""
    for _ in range(5):
        before = t.status(retry_s=PATIENCE_S).get("turned_away")
        if before is None:  # a firmware without the counter
            return
        conns = []
        try:
            for _ in range(n + 1):
                conns.append(t.connect())
            time.sleep(0.2)  # accepted, the last one queued
        finally:
            for c in conns:
                c.close()
        wait_for(lambda: t.status(retry_s=PATIENCE_S)["connections_open"] <= 1, timeout=3)
        if t.status(retry_s=PATIENCE_S)["turned_away"] > before:
            return


class Baseline:
    """The server's resting state: open connections, fds, free heap (after gc), normal latency."""

    def __init__(self, t, good):
        for _ in range(5):  # warm-up: first requests allocate lazily (route tables, buffers)
            good.get()
        warm_slots(t)
        lat = [good.get() for _ in range(10)]
        assert all(x is not None for x in lat), good.errors
        self.normal_s = max(0.1, 5 * max(lat))  # "normal latency": 5x the worst resting one, >= 100 ms
        # at rest first: a connection of the warm-up's still open holds heap the baseline would count
        wait_for(lambda: t.status(retry_s=PATIENCE_S)["connections_open"] <= 1, timeout=3)
        self.fds = resting_fds(t)
        st = t.status(gc=True, retry_s=PATIENCE_S)
        self.open = st["connections_open"]
        self.heap = st["heap_free"]

    def recovered(self, t, heap_tolerance):
        """Wait (bounded) for connections, fds and heap to come back; returns what came back."""
        open_ok = wait_for(lambda: t.status(retry_s=PATIENCE_S)["connections_open"] <= self.open, timeout=3)
        fds = wait_for(lambda: (lambda n: n if n <= self.fds else None)(resting_fds(t)), timeout=3) or resting_fds(t)
        # Heap held past the tolerance is read again (bounded, 2 s): what goes in that time was
        # not lost (MicroPython's GC is conservative: a stale word on the C stack can keep an
        # object until later steps overwrite it); a leak stays
        readings = []
        for _ in range(5):
            readings.append(t.status(gc=True, retry_s=PATIENCE_S)["heap_free"])
            if readings[-1] >= self.heap - heap_tolerance:
                break
            time.sleep(0.4)
        heap = readings[-1]
        return {"open_ok": bool(open_ok), "fds": fds, "heap_delta": heap - self.heap,
                "heap_ok": heap >= self.heap - heap_tolerance, "heap_readings": readings}

    def lost(self, back):
        return "fds %d->%d, heap %+d B, connections back to %d" % (
            self.fds, back["fds"], back["heap_delta"], self.open)


def recovery(good, normal_s, budget_s=2.0):
    """After the abuse stops: seconds until a request is answered with normal latency (None: not
    within budget_s)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < budget_s:
        lat = good.get()
        if lat is not None and lat <= normal_s:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None
