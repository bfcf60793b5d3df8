"""Timeouts, the connection cap, eviction, busy 503s, the request cap and handler faults, each on
a dedicated sim board with small limits. Every path must end with the socket closed: the sim's
fd count returns to its baseline."""

import json
import socket
import subprocess
import time

import pytest

from harness import micropython
from harness.paths import APPS, FIRMWARE
from harness.simboard import SimBoard, free_port
from harness.target import wait_for

FAST = {"idle_timeout_ms": 600, "header_timeout_ms": 600, "linger_timeout_ms": 600, "tick_ms": 50}


def closes(t, reason):
    return t.status()["closes_by_server"].get(reason, 0)


def fds_back(t, baseline):
    return wait_for(lambda: t.fd_count() <= baseline, timeout=3)


def test_idle_keep_alive_connection_is_closed_and_counted(make_sim):
    t = make_sim(FAST)
    base = t.fd_count()
    with t.connect() as c:
        assert c.request("GET", "/api/led").status == 200
        assert c.closed_by_peer(2.0)
    assert closes(t, "idle_timeout") == 1
    assert fds_back(t, base)


def test_slow_head_is_cut_at_header_timeout(make_sim):
    t = make_sim(FAST)
    with t.connect() as c:
        c.send(b"GET / HTTP/1.1\r\nHo")
        assert c.closed_by_peer(2.0)
    assert closes(t, "header_timeout") == 1


def test_lru_idle_connection_is_evicted_at_the_cap(make_sim):
    t = make_sim({"max_connections": 2, "idle_timeout_ms": 30000})
    base = t.fd_count()
    a, b = t.connect(), t.connect()
    assert a.request("GET", "/api/led").status == 200
    assert b.request("GET", "/api/led").status == 200  # b used last: a is the LRU
    with t.connect() as c:
        assert c.request("GET", "/status").status == 200
        assert a.closed_by_peer(1.0)
        assert not b.closed_by_peer(0.2)
    a.close()
    b.close()
    assert fds_back(t, base)  # before asking: a /status connection at the cap would evict again
    s = t.status()
    assert s["closes_by_server"].get("evicted") == 1 and s["connections_peak"] == 2


def test_busy_server_answers_503_with_retry_after(make_sim):
    t = make_sim({"max_connections": 2, "stall_evict_ms": 300, "tick_ms": 50}, app_dir=APPS)
    base = t.fd_count()
    busy = [t.connect(), t.connect()]
    for c in busy:
        # in their handlers: the server is working for them, so neither may be evicted
        c.send(b"GET /fault/slow?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.2)
    with t.connect() as c:
        t0 = time.monotonic()
        r = c.response()
        waited = time.monotonic() - t0
        assert r.status == 503 and r.headers["retry-after"] == "1"
        assert 0.25 <= waited < 1.0  # it waited stall_evict_ms for a slot first
        assert not c.closed_by_peer(0.3)  # waits for us to close, even now
    for c in busy:
        assert c.response().status == 200
        c.close()
    assert fds_back(t, base)  # before asking: a /status connection at the cap would evict one
    s = wait_for(lambda: (lambda s: s if s["connections_open"] == 1 else None)(t.status()))
    # one newcomer found no slot: it waited (turned_away), then got the busy 503 (rejected_busy)
    assert s["turned_away"] == 1 and s["rejected_busy"] == 1 and s["closes_by_server_total"] == 0
    assert fds_back(t, base)


@pytest.mark.parametrize("stall", ["head", "silent", "nonreader"])
def test_connection_stalled_on_its_client_yields_its_slot(make_sim, stall):
    """At the cap with none idle, the connection stalled longest on its client (a head trickling
    in, not reading) is dropped for a newcomer once stalled stall_evict_ms; the newcomer waits for
    that instead of getting a 503. One that has sent nothing yet (silent) is dropped at once for
    a newcomer whose request is already waiting."""
    t = make_sim({"max_connections": 2, "stall_evict_ms": 400, "header_timeout_ms": 30000,
                  "idle_timeout_ms": 30000, "write_timeout_ms": 30000, "tick_ms": 50}, app_dir=APPS)
    base = t.fd_count()
    stalled = []
    for _ in range(2):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((t.host, t.port))
        if stall == "head":
            s.sendall(b"GET / HTTP/1.1\r\nHo")
        elif stall == "nonreader":
            s.sendall(b"GET /fault/big?kb=8192 HTTP/1.1\r\nHost: t\r\n\r\n")
        stalled.append(s)
        time.sleep(0.1)
    with t.connect() as c:
        t0 = time.monotonic()
        r = c.request("GET", "/api/led")
        waited = time.monotonic() - t0
    assert r.status == 200 and waited < 1.0
    st = t.status()
    if stall == "silent":
        assert waited < 0.3 and st["closes_by_server"].get("evicted_silent", 0) >= 1
    else:
        assert st["closes_by_server"].get("evicted_stalled", 0) >= 1
    assert st["rejected_busy"] == 0
    for s in stalled:
        s.close()
    assert fds_back(t, base)


def test_new_connection_is_not_evicted_before_its_first_request(make_sim):
    """A fresh connection whose request is still on its way is not "idle": a newcomer at the cap
    does not take its slot before stall_evict_ms."""
    t = make_sim({"max_connections": 1, "stall_evict_ms": 1000, "tick_ms": 50})
    base = t.fd_count()
    with t.connect() as a:
        time.sleep(0.1)
        b = t.connect()  # waits for a's slot
        a.send(b"GET /api/led HTTP/1.1\r\nHost: t\r\n\r\n")
        assert a.response().status == 200  # a kept its slot
    with b:
        # once a was answered (idle) or closed, b got the slot
        assert b.request("GET", "/api/led").status == 200
    assert fds_back(t, base)  # before asking: a /status connection at the cap would evict b
    assert "evicted_stalled" not in t.status()["closes_by_server"]


def test_request_cap_ends_connection_politely(make_sim):
    t = make_sim({"max_requests_per_connection": 3})
    with t.connect() as c:
        r = [c.request("GET", "/api/led") for _ in range(3)]
        assert "max=2" in r[0].headers["keep-alive"] and "max=1" in r[1].headers["keep-alive"]
        assert r[2].headers["connection"] == "close"
        assert not c.closed_by_peer(0.3)
    s = wait_for(lambda: (lambda s: s if s["closes_by_client"] >= 1 else None)(t.status()))
    assert s["closes_by_server_total"] == 0


def test_client_that_never_closes_after_close_is_dropped_at_linger_timeout(make_sim):
    t = make_sim(FAST)
    with t.connect() as c:
        assert c.request("GET", "/api/led", {"Connection": "close"}).status == 200
        assert c.closed_by_peer(2.0)
    assert closes(t, "linger_timeout") == 1


def test_client_that_stops_reading_is_dropped_at_write_timeout(make_sim):
    t = make_sim({"write_timeout_ms": 500, "tick_ms": 50}, app_dir=APPS)
    base = t.fd_count()
    s = socket.create_connection((t.host, t.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /fault/big?kb=8192 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert wait_for(lambda: closes(t, "write_timeout") == 1, timeout=5)
    s.close()
    assert fds_back(t, base)


@pytest.mark.parametrize(
    "path,status",
    [
        ("/fault/raise", 500),
        ("/fault/memory", 500),
        ("/fault/badtype", 500),
        ("/fault/badheader?v=a%0d%0aSet-Cookie:%20x", 500),
        ("/fault/keyerror", 422),
    ],
)
def test_handler_faults_cost_one_request(make_sim, path, status):
    t = make_sim(app_dir=APPS)
    base = t.fd_count()
    with t.connect() as c:
        r = c.request("GET", path)
        assert r.status == status and "set-cookie" not in r.headers
        if status == 500:
            # a failed handler ends its connection, and still the client closes first
            assert r.headers["connection"] == "close"
            assert not c.closed_by_peer(0.3)
    with t.connect() as c:
        assert c.request("GET", "/api/led").status == 200
    s = t.status()
    assert s["handler_errors"] == (1 if status == 500 else 0)
    assert s["closes_by_server_total"] == 0
    assert fds_back(t, base)


def test_slow_handler_gets_503_at_handler_timeout(make_sim):
    t = make_sim({"handler_timeout_ms": 300, "tick_ms": 50}, app_dir=APPS)
    with t.connect() as c:
        t0 = time.monotonic()
        r = c.request("GET", "/fault/slow?ms=3000")
        assert r.status == 503 and time.monotonic() - t0 < 2
        assert c.request("GET", "/api/led").status == 200  # same connection goes on


def test_stream_that_fails_midway_is_cut_short(make_sim):
    t = make_sim(app_dir=APPS)
    with t.connect() as c:
        c.send(b"GET /fault/stream HTTP/1.1\r\nHost: t\r\n\r\n")
        with pytest.raises(EOFError):
            c.response()  # the chunked body never ends cleanly: the client sees it was cut
    assert closes(t, "stream_error") == 1
    assert t.status()["handler_errors"] == 1


def test_client_reset_mid_request_is_counted_and_closed(make_sim):
    t = make_sim()
    base = t.fd_count()
    before = t.status()
    s = socket.create_connection((t.host, t.port))
    s.sendall(b"POST /api/led HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab")
    time.sleep(0.1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST
    assert fds_back(t, base)
    st = t.status()
    assert st["resets_by_client"] == before["resets_by_client"] + 1 and st["closes_by_server_total"] == 0


def test_settings_errors_are_one_clear_line(make_sim, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"limits": {"max_header_bytes": 99999}}))
    sim = SimBoard(settings=str(bad))
    out = subprocess.run(sim.argv, env=sim.env, cwd="/", capture_output=True, text=True, timeout=20)
    assert "nostall: settings: limits: limit max_header_bytes=99999 is above its maximum 16384" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


# Run on MicroPython against Server internals: a newcomer evicts a connection whose task has
# been created but has not run yet (the loop was busy >= stall_evict_ms in between, e.g. a
# blocking handler). Cancelling such a task skips its finally, so the slot was lost for good.
_EVICT_UNSTARTED = """
import asyncio, socket, time
from nostall.server import Server
from nostall.config import Config
from nostall.web import App

srv = Server(App(), Config(max_connections=1, stall_evict_ms=1), host="127.0.0.1", port=%(port)d)
ls = srv.listen()

def conn():
    c = socket.socket()
    c.connect(socket.getaddrinfo("127.0.0.1", %(port)d)[0][-1])
    time.sleep_ms(20)
    cs, _ = ls.accept()
    cs.setblocking(False)
    return c, cs

async def main():
    c1, cs1 = conn()
    c2, cs2 = conn()
    assert await srv.claim(cs1)  # its task is created, not yet run
    time.sleep_ms(5)  # the loop busy for longer than stall_evict_ms
    assert await srv.claim(cs2)  # evicts the first connection
    await asyncio.sleep_ms(100)
    s = srv.pool.slots[0]
    print(s.conn.sock is cs2, s.cancelled, srv.pool.in_use, srv.stats.closes_by_server)

asyncio.run(main())
"""


def test_evicting_a_connection_whose_task_has_not_run_frees_its_slot(tmp_path):
    script = tmp_path / "evict_unstarted.py"
    script.write_text(_EVICT_UNSTARTED % {"port": free_port()})
    out = micropython.run(script, path=[FIRMWARE], timeout=30)
    assert out.stdout.strip() == "True None 1 {'evicted_stalled': 1}", out.stdout + out.stderr
