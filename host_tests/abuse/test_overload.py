"""Overload without resets: while sockets that connect and send nothing hold every slot and more
wait to be accepted, a client that sends a complete request, and does not retry (as
`requests.get` does not), gets its answer, or a 503 with Retry-After, within 2 s: never a reset,
never a timeout. A connection with a request waiting wins over a silent one (turnaway.py)."""

import select
import socket
import time

import pytest

from harness.abuse import resting_fds
from harness.target import wait_for

pytestmark = pytest.mark.abuse

DEADLINE_S = 2.0
SLOTS = 6  # max_connections, the default
GOOD_REQUESTS = 8


def _silent(t, n):
    """n sockets that connect and never send; the connects are not waited for (past the board's
    capacity its stack may hold their SYNs back, as a board's backlog does)."""
    socks = []
    with t.client():
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((t.host, t.port))
            except BlockingIOError:
                pass
            socks.append(s)
    return socks


def _connected(socks, timeout_s):
    """Wait until every socket's connect has completed (or failed); the board's backlog lets a few
    in at a time, the rest retry their SYN."""
    pending = list(socks)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        _, done, _ = select.select([], pending, [], max(0.0, deadline - time.monotonic()))
        pending = [s for s in pending if s not in done]
    return len(socks) - len(pending)


def _holder(t):
    """() -> how many client connections the board holds, read without connecting to it: the
    sim's fds beyond those it had at rest, or lwIP's open connections through the emulator."""
    if t.emu is not None:
        return lambda: t.emu.stats()["open"]
    base = resting_fds(t)
    return lambda: t.fd_count() - base


def _one_request(t):
    """One plain request on a new connection, no retry: (status or error, seconds, retry-after)."""
    t0 = time.monotonic()
    try:
        with t.client(), socket.create_connection((t.host, t.port), timeout=DEADLINE_S) as s:
            s.settimeout(max(0.05, DEADLINE_S - (time.monotonic() - t0)))
            s.sendall(b"GET /api/temperature HTTP/1.1\r\nHost: board\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return "closed before an answer", time.monotonic() - t0, None
                buf += chunk
            head = buf.split(b"\r\n\r\n")[0].decode().split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in head[1:])
            return int(head[0].split(" ")[1]), time.monotonic() - t0, headers.get("retry-after")
    except ConnectionResetError:
        return "reset", time.monotonic() - t0, None
    except socket.timeout:
        return "timeout", time.monotonic() - t0, None


@pytest.mark.parametrize("n", [40, 100])
def test_a_waiting_request_beats_silent_sockets(make_sim, figure, n):
    t = make_sim()  # the defaults: SLOTS slots, 2 turn-aways
    held = _holder(t)
    silent = []
    try:
        for _ in range(SLOTS):  # one at a time, until every slot holds a silent socket
            silent += _silent(t, 1)
            assert wait_for(lambda: held() >= len(silent), timeout=3), (held(), len(silent))
        silent += _silent(t, n - SLOTS)  # and more wait to be accepted
        _connected(silent, timeout_s=3)
        time.sleep(0.3)  # all silent for longer than the board's grace for a request on its way
        results = [_one_request(t) for _ in range(GOOD_REQUESTS)]
    finally:
        for s in silent:
            s.close()
    assert wait_for(lambda: t.status()["connections_open"] <= 1, timeout=5)
    st = t.status()
    worst = max(r[1] for r in results)
    figure("%d sockets connect and send nothing" % n, "%d plain requests, no retry, one after another" % GOOD_REQUESTS,
           "%s; slowest %.0f ms" % (", ".join("%s" % r[0] for r in results), 1000 * worst),
           "nothing" if all(r[0] in (200, 503) for r in results) else "some")
    for status, took, retry_after in results:
        assert status in (200, 503), results
        assert took < DEADLINE_S, results
        assert status == 200 or retry_after == "1", results
    # the first request took the place of a silent socket: at once when its request was already
    # waiting, or as a socket stalled for stall_evict_ms when it came a moment after the connect
    # (through lwIP the gateway relays it then); the next ones may take their predecessors',
    # idle until their client's close arrives
    by = st["closes_by_server"]
    assert by.get("evicted_silent", 0) + by.get("evicted_stalled", 0) >= 1, by
