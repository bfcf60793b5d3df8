"""Leaks (issue 5): 10 000 requests as fast as one client can send them, mixing every way a
connection ends - a new connection per request, keep-alive sessions, resets mid-request (RST via
SO_LINGER 0, in the head and in the body) and handler exceptions (500, Connection: close) - then
free heap (after gc.collect()) and the sim's fd count against their baseline after a warm-up.

Tolerances, and why:
- fds: none. Every socket the server opened must be closed; the sim's other fds (listener,
  stdio, the poll object) do not change.
- heap: HEAP_TOL_BYTES (2 KB) below the baseline, at every checkpoint and at the end. What may
  legitimately differ: the GC is conservative, so a stale word on the C stack can keep a few
  freed blocks (a request's 1 KB buffers) alive until the next request overwrites it; fixed
  tables (asyncio's I/O map, the poll array) may have grown to their high-water mark. Measured:
  within about +-1 KB with no trend. A leak of one 16-byte block per 50 requests would lose
  3.2 KB over the 10 000 and fail; one of a socket object per connection would fail after a few
  hundred requests (checkpoints every 2 000 show where).
"""

import socket
import struct
import time

import pytest

from harness.abuse import PATIENCE_S, resting_fds, warm_slots
from harness.paths import APPS
from harness.target import wait_for

pytestmark = pytest.mark.abuse

HEAP_TOL_BYTES = 2048
TOTAL = 10000
ROUND = 100  # requests per round: 40 new connections, 40 keep-alive, 10 resets, 10 exceptions
TIME_LIMIT_S = 90  # bounded in time as well as in count
GET = b"GET /api/led HTTP/1.1\r\nHost: t\r\n\r\n"
RAISE = b"GET /fault/raise HTTP/1.1\r\nHost: t\r\n\r\n"
PARTIAL = (b"GET /api/led HTTP/1.1\r\nHost: t\r\nX-Part", b"POST /api/led HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab")
LINGER_0 = struct.pack("ii", 1, 0)


class Client:
    """A minimal raw client: responses carry Content-Length (the routes used here all do)."""

    def __init__(self, t):
        self.addr = (t.host, t.port)
        self.statuses = {}

    def connect(self):
        s = socket.create_connection(self.addr, timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def exchange(self, s, req, buf=b""):
        s.sendall(req)
        while b"\r\n\r\n" not in buf:
            data = s.recv(4096)
            assert data, "server closed before answering"
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        code = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        while len(rest) < length:
            data = s.recv(4096)
            assert data, "server closed mid-body"
            rest += data
        self.statuses[code] = self.statuses.get(code, 0) + 1
        return code, rest[length:]

    def round(self):
        n = 0
        for _ in range(40):  # new connection per request, closed by us after the answer
            with self.connect() as s:
                assert self.exchange(s, GET)[0] == 200
            n += 1
        with self.connect() as s:  # one keep-alive session
            left = b""
            for _ in range(40):
                code, left = self.exchange(s, GET, left)
                assert code == 200
                n += 1
        for i in range(10):  # reset mid-request
            s = self.connect()
            s.sendall(PARTIAL[i % 2])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
            s.close()
            n += 1
        for _ in range(10):  # handler exception: 500 and Connection: close
            with self.connect() as s:
                assert self.exchange(s, RAISE)[0] == 500
            n += 1
        return n


def settled(t, open_base):
    """/status once every connection the client ended has been closed by the server too."""
    assert wait_for(lambda: t.status(retry_s=PATIENCE_S)["connections_open"] <= open_base, timeout=5)
    return t.status(gc=True, retry_s=PATIENCE_S)


def test_10000_requests_leak_no_heap_and_no_fds(make_sim, figure):
    # a longer accept queue than the board's 2: ten resets in a millisecond would otherwise fill
    # it and cost the next connect a 1 s SYN retransmit (bursts are the floods' subject, not this)
    t = make_sim({"tick_ms": 50, "listen_backlog": 16}, app_dir=APPS)
    c = Client(t)
    for _ in range(2):  # warm-up: every path once, so lazily built state exists before the baseline
        c.round()
    with c.connect() as s:  # a whole body (the rounds cut theirs): body.py loads at the first
        c.exchange(s, b"PUT /api/led HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}")
    warm_slots(t)  # and every connection slot
    c.statuses.clear()
    open_base = t.status(retry_s=PATIENCE_S)["connections_open"]
    st = settled(t, open_base)
    heap0, fds0 = st["heap_free"], resting_fds(t)
    before = st
    points = []  # (requests, heap delta, fds)
    done = 0
    t0 = time.monotonic()
    while done < TOTAL and time.monotonic() - t0 < TIME_LIMIT_S:
        done += c.round()
        if done % 2000 == 0:
            st = settled(t, open_base)
            points.append((done, st["heap_free"] - heap0, resting_fds(t)))
    took = time.monotonic() - t0
    st = settled(t, open_base)
    heap_delta, fds = st["heap_free"] - heap0, resting_fds(t)
    d = {k: st[k] - before[k] for k in ("requests", "resets_by_client", "handler_errors", "closes_by_client")}
    figure("leaks: 10 000 requests, every way a connection ends",
           "%d requests in %.0f s (%d/s): 40%% new connections, 40%% keep-alive, 10%% resets mid-request, "
           "10%% handler exceptions" % (done, took, done / took),
           "all answered (%s); server counted %d requests, %d resets, %d handler errors" % (
               ", ".join("%d: %d" % kv for kv in sorted(c.statuses.items())), d["requests"],
               d["resets_by_client"], d["handler_errors"]),
           "fds %d->%d, heap %+d B (checkpoints %s)" % (
               fds0, fds, heap_delta, ", ".join("%+d" % p[1] for p in points)))
    assert done == TOTAL, "only %d requests within %d s" % (done, TIME_LIMIT_S)
    assert d["resets_by_client"] == TOTAL // ROUND * 10  # every reset seen as a reset
    assert d["handler_errors"] == TOTAL // ROUND * 10
    assert st["closes_by_server_total"] == 0  # all closes were the client's
    assert fds == fds0, points
    for n, delta, f in points:
        assert delta >= -HEAP_TOL_BYTES and f == fds0, (n, delta, f, points)
    assert heap_delta >= -HEAP_TOL_BYTES, points
