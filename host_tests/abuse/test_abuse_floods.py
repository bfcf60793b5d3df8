"""Floods (issue 5): more sockets than connection slots, held by clients that park, never send,
trickle a head (slowloris) or stop reading. Each runs on a dedicated sim board with short timeouts
(so a flood lasts seconds, not minutes) while a well-behaved client keeps asking; see
harness/abuse.py for the flood and the good client's retry policy.

Every flood checks the same things:
- during: every request of the good client is answered within its budget (5 s, retries included)
  the server never holds more than max_connections sockets, nor more fds than its slots, the
  turn-aways (two waiting, two answered beside them) and the listener allow;
- after the flood stops (its sockets still open, silent): within 2 s a request is answered with
  normal latency (5x the worst resting latency, at least 100 ms), and the server drops the stalled
  sockets by itself within its timeouts;
- after the flood's sockets close: connections_open, fds and free heap (after gc) come back to
  their baseline, taken after a one-second warm-up of the same flood. Heap tolerance
  HEAP_TOL_BYTES (2 KB): what may legitimately differ is what the conservative GC keeps through a
  stale word on the stack (a freed 1 KB file buffer, a few request objects); measured after the
  warm-up: -1 KB..+0.5 KB, with no trend over repeated floods. A leak of anything per connection
  would lose far more: each flood opens 60-300 connections (a socket object alone is > 16 B).

Through lwIP (--board=emu) each sim board has a gateway whose listen backlog is the firmware's (2)
and ends at the firmware's accept(), as on a board: SYNs beyond it are dropped without a pcb, so
the good client sometimes waits for its SYN retransmission (1 s; 2.1 s at most over 9 floods,
where a second one was needed).

What the server does at the cap (see server.py): evict the least recently used idle keep-alive
connection, else the one stalled longest on its client (stall_evict_ms, 250 here), else let the
newcomer wait up to stall_evict_ms for that (two at a time; a third makes the one waiting longest
get its 503 at once), dropping ("overflow") a silent one or one whose 503 is acknowledged for it.
"""

import threading
import time

import pytest

from harness.abuse import PATIENCE_S, Baseline, Flood, GoodClient, ms, recovery
from harness.target import wait_for

pytestmark = pytest.mark.abuse


HEAP_TOL_BYTES = 2048
FLOOD_S = 4.0
FAST = {"idle_timeout_ms": 1000, "header_timeout_ms": 1000, "linger_timeout_ms": 1000,
        "write_timeout_ms": 500, "stall_evict_ms": 250, "tick_ms": 50}

# what the server does at the cap: evict an idle or a stalled connection, drop a silent waiting
# newcomer or a 503'd one for another (or answer a newcomer past them all and close it), or drop
# a 503'd one that does not close
AT_CAP = ("evicted", "evicted_stalled", "evicted_silent", "overflow", "busy_linger_timeout")


class FdWatch:
    """Samples the sim's fd count and /status connections_open while a flood runs."""

    def __init__(self, t):
        self.t = t
        self.max_fds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.max_fds = max(self.max_fds, self.t.fd_count())
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self.max_fds


def run_flood(t, flood, figure, abuse, load, reasons, fds_per_slot=1, holds_pcbs=False):
    """The common shape: baseline, flood + good client, stop, recovery, resources back. reasons:
    the only closes_by_server reasons the flood may cause (what the server does to it, bounded).

    holds_pcbs: each of the flood's sockets keeps a TCP pcb on the board while it stays open,
    whatever the server does. Through lwIP (--board=emu, as on a board) the 12 pcbs then run out:
    the good client's SYNs are dropped until the flood's sockets close, and that is all it may
    suffer: its failed requests must all be timeouts while lwIP had no pcb (never a reset or a
    wrong answer), and recovery is measured once the flood's sockets are closed."""
    cap = t.status(retry_s=PATIENCE_S)["limits"]["max_connections"]
    locked_out = holds_pcbs and t.emu is not None
    good = GoodClient(t)
    # warm-up: one second of the same flood, so fixed tables reach their high-water mark (and the
    # file system its caches) before the baseline. Locked out by lwIP, one second lets too few of
    # them in for that (measured: free heap 4-6 KB lower after the first 4 s flood than after the
    # warm-up, then no trend over 3 more floods), so there the warm-up is as long as the flood.
    warm_s = FLOOD_S if locked_out or flood.kind == "nonreader" else 1.0
    warm = flood.copy().start(warm_s)
    good.run_for(warm_s)
    warm.stop()
    warm.close()
    # the warm-up's sockets are closed: the server sees each one's EOF or reset at its next read,
    # once the EOF gets there. Not always soon, on the sim: in 1 of 40 such warm-ups (2026-12-05)
    # five slots stayed NEW with their clients' EOF unseen until first_request_timeout_ms (20 s,
    # not shortened here) closed them. Linux's, not the server's: a flood overflows the sim's
    # listen queue (TcpExtListenOverflows: 2376 over 4 slowloris warm-ups), the kernel drops the
    # ACKs and FINs of connections it cannot queue, and the clients' FINs are retransmitted with
    # backoff: after the warm-up's close 45-64 of its sockets were still in FIN-WAIT-1 at 1 s,
    # 26-44 at 25 s (ss; a connection the sim accepts meanwhile is NEW until its FIN comes). The
    # server drops such slots within its timeouts, which is what is checked; the figures if not
    settled = wait_for(lambda: t.status(retry_s=PATIENCE_S)["connections_open"] <= 1, timeout=25)
    if not settled:
        st = t.status(retry_s=PATIENCE_S)
        raise AssertionError("after the warm-up: %r" % {k: st[k] for k in (
            "connections_open", "connections_accepted", "closes_by_client", "resets_by_client", "closes_by_server",
            "rejected_busy", "accept_errors")})
    good = GoodClient(t)
    base = Baseline(t, good)
    good.latencies.clear()
    good.retries = 0
    watch = FdWatch(t)
    flood.start(FLOOD_S)
    good.start(FLOOD_S)
    good.join()
    flood.stop()
    max_fds = watch.stop()
    if locked_out:
        flood.close()  # only their close (a reset: unread data) frees their pcbs
    # the flood has stopped but its sockets are still open (silent): back to normal at once
    # (locked out: once they are closed)
    rec = recovery(good, base.normal_s)
    flood.close()
    back = base.recovered(t, HEAP_TOL_BYTES)
    st = t.status(retry_s=PATIENCE_S)
    figure(abuse, "%s; %s" % (load, flood.summary()),
           "%s; after: answered in %s" % (good.summary(), ms(rec) if rec is not None else "NEVER"),
           "%d requests; %s" % (good.failed, base.lost(back)))
    if locked_out:
        lwip = t.emu.stats()
        assert all(kind == "TimeoutError" for kind, _ in good.errors), (good.summary(), good.errors[-10:])
        assert not good.failed or lwip["syns_dropped_no_pcb"] > 0, (good.summary(), lwip)
    else:
        assert good.failed == 0 and good.latencies, (good.summary(), good.errors[-10:])
    assert rec is not None, "no answer with normal latency within 2 s after the flood"
    assert set(st["closes_by_server"]) <= set(reasons), st["closes_by_server"]
    assert st["connections_peak"] <= cap
    # slots (a socket, and a file for a static download) + two waiting for a slot and two
    # answered beside them until their 503 is acknowledged (turnaway.py) + one just accepted +
    # one evicted whose task has not closed it yet (claim() yields once for that; with
    # listen_backlog 4 newcomers come often enough through lwIP to meet one), over the resting
    # count (listener, stdio...). Afterwards every one is closed: back["fds"] below
    turnaways = 2 * st["limits"]["max_turnaways"]
    assert max_fds <= base.fds + cap * fds_per_slot + turnaways + 2, (max_fds, base.fds)
    assert back["open_ok"] and back["fds"] <= base.fds and back["heap_ok"], back
    return st


# parked: 64 browser-like clients each make a keep-alive request and park the connection; each
# one the server drops (eviction, idle timeout) comes back at the next tick. silent: connect and
# never send. slowloris: a byte every 0.5 s on each socket, header_timeout_ms 1000.
@pytest.mark.parametrize("n,kind,abuse,extra_reasons,expect", [
    (64, "park", "64 simultaneous connections, parked after a request", ("idle_timeout",), "evicted"),
    (50, "silent", "50 clients connect and never send", ("first_request_timeout",),
     ("evicted_silent", "evicted_stalled")),
    (100, "slowloris", "100 slowloris sockets, a byte every 0.5 s", ("header_timeout", "first_request_timeout"),
     "evicted_stalled"),
], ids=["64-parked", "50-silent", "100-slowloris"])
def test_flood(make_sim, figure, n, kind, abuse, extra_reasons, expect):
    t = make_sim(FAST)
    st = run_flood(t, Flood(t, n, kind), figure, abuse, "%d sockets for %.0f s" % (n, FLOOD_S),
                   reasons=AT_CAP + extra_reasons)
    expect = expect if isinstance(expect, tuple) else (expect,)
    assert sum(st["closes_by_server"].get(e, 0) for e in expect) > 0, st["closes_by_server"]


def test_clients_that_stop_reading(make_sim, figure, tmp_path):
    """Clients download a 4 MB static file with a 4 KB receive buffer and stop reading; 8 new ones
    per tick. write_timeout_ms 500.

    The server drops each with a reset (forced: data is still unsent), so its pcb is freed at
    once: on the firmware build through _nostall_tcp.abort(sock, force=True), on the sim through
    SO_LINGER 0, mirrored by the lwIP gateway as tcp_abort. (On stock MicroPython a plain close
    leaves each pcb in FIN_WAIT_1 behind data the client does not take, for 12 persist probes,
    about 7.5 min: 12 of them would lock a board out until they close.)"""
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.bin").write_bytes(b"x" * (4 << 20))
    (www / "index.html").write_text("<h1>hi</h1>")
    t = make_sim(FAST, www=www)
    flood = Flood(t, 8, "nonreader", path="/big.bin", max_open=8 * 10)
    st = run_flood(t, flood, figure, "clients that stop reading mid-response (4 MB file)",
                   "8 new sockets per %.1f s for %.0f s" % (0.5, FLOOD_S), fds_per_slot=2,
                   reasons=AT_CAP + ("write_timeout",))
    assert st["closes_by_server"].get("evicted_stalled", 0) + st["closes_by_server"].get("write_timeout", 0) > 0
