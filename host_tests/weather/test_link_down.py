"""The Wi-Fi link drops: a client that vanishes mid-answer (its link down for good) costs the board
its slot only until write_timeout_ms, the close is a reset (no TIME_WAIT pcb in lwIP) and
nothing leaks; a link down for a few seconds mid-answer costs nothing at all: lwIP retransmits,
the client gets the whole answer and closes first."""

import socket
import time

import pytest

from harness.target import get_status, wait_for

pytestmark = pytest.mark.abuse

WRITE_TIMEOUT_MS = 3000
REQUEST = b"GET /api/samples?n=200 HTTP/1.1\r\nHost: board\r\nConnection: close\r\n\r\n"


def _home_status(t):
    # the sim's own /status on the home namespace's loopback: no lwIP, no weather in the way
    return get_status("http://%s:%d" % (t.sim.host, t.sim.port), gc=True)


def _read_answer(s, data, deadline):
    # up to the chunked answer's last chunk, as an HTTP client reads it (then it closes first)
    while time.monotonic() < deadline and not data.endswith(b"\r\n0\r\n\r\n"):
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            return data, "eof"
        data += chunk
    return data, "whole" if data.endswith(b"\r\n0\r\n\r\n") else "timeout"


def test_a_client_vanishing_mid_answer_frees_its_slot_at_write_timeout(lab, figure):
    t = lab.board({"write_timeout_ms": WRITE_TIMEOUT_MS, "tick_ms": 50}, weather="delay=5")
    before = _home_status(t)
    e0 = t.emu.stats()
    fd0 = t.fd_count()
    with lab.client():
        s = socket.create_connection((t.host, t.port), timeout=5)
    try:
        s.sendall(REQUEST)
        assert s.recv(64).startswith(b"HTTP/1.1 200")
        t.emu.link_down(60000)  # for good, as far as this test goes
        t0 = time.monotonic()
        end = wait_for(lambda: (lambda st: st if st["connections_open"] <= before["connections_open"] else None)(
            _home_status(t)), 3 * WRITE_TIMEOUT_MS / 1000 + 5, 0.1)
        freed_s = time.monotonic() - t0
    finally:
        s.close()
    assert end is not None, _home_status(t)
    e1 = t.emu.wait_stats(lambda e: e["pcbs_active"] <= e0["pcbs_active"], 5.0)
    first = {k: v - before["closes_by_server"].get(k, 0) for k, v in end["closes_by_server"].items()
             if v != before["closes_by_server"].get(k, 0)}
    t.emu.link_up()
    figure("a client vanishing mid-answer (link down for good)", "an 8 KB answer, write_timeout_ms %d" % WRITE_TIMEOUT_MS,
           "slot freed after %.1f s (%s), reset: %d; lwIP TIME_WAIT %d, pcbs back to %d" % (
               freed_s, ", ".join(first), end["server_resets"] - before["server_resets"], e1["time_wait_max"],
               e1["pcbs_active"]),
           "nothing: heap %+d B, fds %d -> %d" % (end["heap_alloc"] - before["heap_alloc"], fd0, t.fd_count()))
    assert first == {"write_timeout": 1}, first
    assert WRITE_TIMEOUT_MS / 1000 - 0.5 <= freed_s <= WRITE_TIMEOUT_MS / 1000 + 3, freed_s
    assert end["server_resets"] - before["server_resets"] == 1  # forced: no TIME_WAIT on the board
    assert e1["time_wait_max"] == 0 and e1["pcbs_active"] <= e0["pcbs_active"], e1
    assert e1.get("firmware_aborts", 0) - e0.get("firmware_aborts", 0) == 1, e1
    assert end["heap_alloc"] <= before["heap_alloc"] + 2048, (before["heap_alloc"], end["heap_alloc"])
    assert t.fd_count() <= fd0


def test_a_link_down_for_seconds_mid_answer_costs_nothing(lab, figure):
    # shorter than write_timeout_ms: lwIP's retransmissions carry the answer once the link is
    # back, the client closes first, the board keeps no TIME_WAIT
    t = lab.board({"tick_ms": 50}, weather="delay=5")
    before = _home_status(t)
    with lab.client():
        s = socket.create_connection((t.host, t.port), timeout=30)
    try:
        s.sendall(REQUEST)
        head = s.recv(64)
        assert head.startswith(b"HTTP/1.1 200")
        t.emu.link_down(4000)
        t0 = time.monotonic()
        body, how = _read_answer(s, head, time.monotonic() + 30)
        took = time.monotonic() - t0
    finally:
        s.close()
    assert how == "whole", (how, body[-80:])
    end = wait_for(lambda: (lambda st: st if st["connections_open"] <= before["connections_open"] else None)(
        _home_status(t)), 10, 0.1)
    e = t.emu.stats()
    figure("the link down 4 s mid-answer", "an 8 KB answer with Connection: close",
           "answered whole %.1f s after the drop; board closed first %d; lwIP TIME_WAIT %d" % (
               took, end["closes_by_server_total"] - before["closes_by_server_total"], e["time_wait_max"]))
    assert end["closes_by_server_total"] == before["closes_by_server_total"], end["closes_by_server"]
    assert e["time_wait_max"] == 0, e
