"""The firmware build's C module, played by the lwIP emulator: a sim board behind its own gateway
(harness.simboard.Lab) imports host_tests/sim/_nostall_tcp.py (SIM_LWIP), which asks the gateway's
control socket to decide on the gateway's lwIP pcb as boards/cmodules/nostall_tcp/tcp_abort_idle.c
does on a board: tcp_abort() (RST, no TIME_WAIT) only while nothing of the board's is unsent or
unacknowledged. Weather off unless a test sets it.

    abort PORT 0|1 -> aborted | unacked | no_conn | no_pcb | state;  unacked PORT -> 1 | 0
"""
import socket
import time

import pytest

from harness.simboard import Lab
from harness.target import RawConn


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path, "ctl")
    yield lab
    lab.close()


def _conn(t, lab):
    with lab.client():
        return RawConn(t.host, t.port, timeout=10.0)


def _reset_seen(c, wait_s):
    """'rst' if the board reset c within wait_s, 'eof' for a FIN, None if nothing came."""
    c.sock.settimeout(wait_s)
    try:
        return "eof" if c.sock.recv(1) == b"" else "data"
    except ConnectionResetError:
        return "rst"
    except socket.timeout:
        return None


def test_status_says_tcp_abort_and_the_gateway_answers(lab):
    t = lab.board()
    with lab.client():
        st = t.status()
    assert st["abortive_close"] == "tcp_abort", st["abortive_close"]
    emu = t.emu
    assert emu.ctl("ping") == "pong"
    assert emu.ctl("abort 1 0") == "no_conn" and emu.ctl("unacked 1") == "0"
    assert emu.ctl("frobnicate").startswith("error"), emu.ctl("frobnicate")
    assert emu.stats()["ctl_port"] == t.sim.port


def test_idle_expiry_and_eviction_reset_without_time_wait(lab):
    """An idle keep-alive connection that expires, and one evicted at the cap by a newcomer: both
    reset by the board (tcp_abort on lwIP's pcb: the client sees RST), no TIME_WAIT in lwIP."""
    t = lab.board({"idle_timeout_ms": 1000, "max_connections": 2, "tick_ms": 50})
    emu = t.emu
    # expiry
    c = _conn(t, lab)
    with c:
        assert c.request("GET", "/status").status == 200
        t0 = time.monotonic()
        seen = _reset_seen(c, 5.0)
        took = time.monotonic() - t0
    st = emu.wait_stats(lambda s: s["firmware_aborts"] >= 1)
    assert seen == "rst", seen
    assert 0.8 <= took <= 3.0, took
    assert st["firmware_aborts"] == 1 and st["time_wait"] == 0 and st["active_closes"] == 0, st
    # eviction: two idle connections at the cap, a newcomer's request takes the older one's slot
    a, b = _conn(t, lab), _conn(t, lab)
    with a, b:
        assert a.request("GET", "/status").status == 200
        time.sleep(0.05)
        assert b.request("GET", "/status").status == 200
        with _conn(t, lab) as n:
            assert n.request("GET", "/status", headers={"Connection": "close"}).status == 200
        seen_a = _reset_seen(a, 3.0)
    st = emu.wait_stats(lambda s: s["firmware_aborts"] >= 2)
    with lab.client():
        status = t.status()
    print("\nexpired after %.2f s: %s; evicted: %s; lwIP: %s; board: closes %s, resets %s" % (
        took, seen, seen_a, {k: st[k] for k in ("firmware_aborts", "firmware_aborts_declined", "time_wait_max",
                                                "active_closes", "passive_closes")},
        status["closes_by_server"], status["server_resets"]))
    assert seen_a == "rst", seen_a
    assert st["firmware_aborts"] >= 2 and st["firmware_aborts_declined"] == 0, st
    assert st["time_wait_max"] == 0, st
    assert status["server_resets"] >= 2, status


def test_unacknowledged_answer_is_not_reset(lab):
    """The link toward the client fails right after a "Connection: close" request reached lwIP:
    the board's answer stays unacknowledged. Meanwhile the gateway says so (unacked 1), an abort
    without force is declined and changes nothing, and the board does not reset the connection:
    once the link is back lwIP's retransmission delivers the whole answer, the client closes
    first and lwIP keeps no TIME_WAIT."""
    t = lab.board({"linger_timeout_ms": 300, "tick_ms": 50})
    emu = t.emu
    c = _conn(t, lab)
    with c:
        up = emu.upstream_port(c.sock.getsockname()[1])
        assert up, emu.log_tail()
        emu.set_weather({"to_client": "loss=100"})  # every frame lwIP sends is lost
        c.send(b"GET /status HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        deadline = time.monotonic() + 5.0
        while emu.ctl("unacked %d" % up) != "1" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emu.ctl("unacked %d" % up) == "1", emu.log_tail()
        declined = emu.ctl("abort %d 0" % up)
        time.sleep(1.0)  # over three linger timeouts while the answer is unacknowledged
        during = emu.stats()
        still = emu.ctl("unacked %d" % up)
        emu.set_weather({"to_client": "off"})
        c.sock.settimeout(20.0)
        r = c.response()
        body_ok = r.status == 200 and b"abortive_close" in r.body
    st = emu.wait_stats(lambda s: s["open"] == 0, timeout_s=10.0)
    with lab.client():
        status = t.status()
    print("\nunacked while the link is out: %s; abort without force: %s; during: aborts %d, declined %d, "
          "ctl requests %d; after: %s; board closes %s" % (
              still, declined, during["firmware_aborts"], during["firmware_aborts_declined"], during["ctl_requests"],
              {k: st[k] for k in ("firmware_aborts", "passive_closes", "active_closes", "time_wait_max")},
              status["closes_by_server"]))
    assert declined == "unacked", declined
    assert still == "1" and during["firmware_aborts"] == 0, during
    assert body_ok, r
    assert st["firmware_aborts"] == 0 and st["time_wait_max"] == 0, st
    assert st["passive_closes"] >= 1 and st["active_closes"] == 0, st
    assert not status["closes_by_server"].get("linger_timeout"), status["closes_by_server"]
