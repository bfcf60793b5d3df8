"""Pollers through lwIP: a client polling over keep-alive, slower than the old 5 s idle timeout or
as slow as every 5 minutes, is never closed by the board while slots are free; so it never
stalls, the board closes first 0 times and lwIP holds 0 TIME_WAIT pcbs. And where the board must
close first (eviction, idle expiry, shutdown), it resets: still 0 TIME_WAIT.

Slow intervals are scaled down on dedicated boards: the board's idle timeout and the poll
interval shrink together (x1/100: 330 s -> 3.3 s, a 5-minute poll -> 3 s), as do Home Assistant's
aiohttp keep-alive (15 s -> 1.5 s) and poll (30 s -> 3 s). One board keeps the defaults and is
polled every 6 s, slower than the idle timeout this firmware had before (5 s)."""

import socket
import time

import pytest

from harness.pollers import AiohttpPoller, KeepAlivePoller
from harness.target import wait_for

SCALE = 100
SCALED = {"idle_timeout_ms": 330000 // SCALE, "tick_ms": 50}
PORTS = iter(range(43300, 43400))  # pinned source ports, one per poller


def check_no_server_close(t, poller):
    """The board never closed first, lwIP never held TIME_WAIT, no poll stalled."""
    st = t.status()
    emu = t.emu.stats()
    assert not poller.stalls, (poller.summary(), poller.stalls)
    assert st["closes_by_server_total"] == 0, st["closes_by_server"]
    assert emu["active_closes"] == 0 and emu["time_wait_max"] == 0 and emu["syn_to_time_wait"] == 0, emu
    return "%s; closes by server %d, lwIP active closes %d, TIME_WAIT max %d" % (
        poller.summary(), st["closes_by_server_total"], emu["active_closes"], emu["time_wait_max"])


def test_keep_alive_pollers_are_never_closed_by_the_board(lab, figure):
    lab.sysctl("net.ipv4.tcp_max_tw_buckets", 0)  # pinned ports: the client's own TIME_WAIT off
    cases = []
    t = lab.board()  # the defaults
    cases.append(("every 6 s, defaults", t, KeepAlivePoller(
        t.host, t.port, interval_s=6.0, count=5, source_port=next(PORTS), ns_path=lab.ns_path)))
    t = lab.board(SCALED)
    cases.append(("every 5 min (x1/%d)" % SCALE, t, KeepAlivePoller(
        t.host, t.port, interval_s=300.0 / SCALE, count=8, source_port=next(PORTS), ns_path=lab.ns_path)))
    t = lab.board(SCALED)
    cases.append(("Home Assistant: aiohttp, keep-alive 15 s, every 30 s (x1/10)", t, AiohttpPoller(
        t.host, t.port, interval_s=3.0, count=8, keepalive_s=1.5, source_port=next(PORTS), ns_path=lab.ns_path)))
    for _, _, p in cases:
        p.start()
    for name, t, p in cases:
        p.join(60)
        result = check_no_server_close(t, p)
        figure("poller " + name, "%d polls, one pinned source port" % p.count, result)
    ka = cases[1][2]
    assert ka.reconnects == 0 and ka.closed_by_board == 0  # one connection all along
    ha = cases[2][0:2]
    assert ha[1].status()["closes_by_client"] >= 3  # aiohttp closed its idle connection itself


def _park(t, n, path="/api/led"):
    conns = []
    for _ in range(n):
        s = socket.create_connection((t.host, t.port), timeout=5)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        conns.append(s)
    return conns


def _reset_seen(s):
    s.settimeout(3)
    try:
        return s.recv(1) == b"" and "eof"
    except ConnectionResetError:
        return "rst"
    except socket.timeout:
        return "open"


@pytest.mark.parametrize("why", ["evicted", "idle_timeout", "shutdown"])
def test_when_the_board_closes_first_it_resets(lab, why, figure):
    """Eviction at the cap, idle expiry, shutdown: the board closes first, with a RST (the sim
    resets through SO_LINGER 0 and the gateway mirrors it as lwIP's tcp_abort): lwIP frees the
    pcb at once and holds 0 TIME_WAIT, the client sees the reset."""
    t = lab.board({"max_connections": 2, "idle_timeout_ms": 1500, "tick_ms": 50})
    with lab.client():
        parked = _park(t, 1 if why == "idle_timeout" else 2)
        if why == "evicted":
            newcomer = _park(t, 1)[0]  # takes the least recently used idle connection's slot
            newcomer.close()
        elif why == "idle_timeout":
            time.sleep(2.0)
        else:
            t.sim.stop()
        seen = [_reset_seen(s) for s in parked]
        for s in parked:
            s.close()
    emu = t.emu.wait_stats(lambda st: st["upstream_resets"] >= 1)
    assert "rst" in seen, seen
    assert emu["time_wait_max"] == 0 and emu["active_closes"] == 0, emu
    if why != "shutdown":
        st = t.status()
        assert st["closes_by_server"].get(why, 0) >= 1 and st["server_resets"] >= 1, st
    figure("board closes first: " + why, "%d parked keep-alive connections" % len(parked),
           "client saw %s; lwIP resets %d, TIME_WAIT max %d" % ("/".join(seen), emu["upstream_resets"],
                                                              emu["time_wait_max"]))
    assert wait_for(lambda: t.emu.stats()["pcbs_active"] == 0, timeout=3)
