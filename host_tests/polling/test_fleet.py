"""A fleet of boards watched by one host, through lwIP, for at least 2 minutes:

- a real Prometheus (Debian's package) scrapes /metrics on 16 boards every second over its
  kept-alive connections: every scrape must be up, the boards never close first, and neither
  side holds a TIME_WAIT;
- one host polls 16 other boards every second with a new connection per poll, the way users
  report "240 devices polled with connect/close": the client closes first, so the TIME_WAIT
  piles up on the host (Linux keeps it 60 s) and none on the boards.

NOSTALL_FLEET_S changes the length (default 120 s); the two fleets run at the same time."""

import os
import time

import pytest

from harness import prometheus
from harness.pollers import ConnectPoller, time_wait_to

BOARDS = 16
DURATION_S = int(os.environ.get("NOSTALL_FLEET_S", "120"))
INTERVAL_S = 1


def _pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def _boards_clean(targets):
    """Per board: closes by server, lwIP TIME_WAIT max, lwIP active closes (all should be 0)."""
    rows = []
    for t in targets:
        st = t.status()
        emu = t.emu.stats()
        rows.append((st["closes_by_server_total"], emu["time_wait_max"], emu["active_closes"]))
    return rows


def test_a_fleet_polled_by_one_host(make_lab, figure):
    if prometheus.binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus missing on CI: .ci/run installs Debian's prometheus package")
        pytest.skip("prometheus not found: apt-get install prometheus")
    ka_lab, cc_lab = make_lab("fleetka"), make_lab("fleetcc")
    ka = [ka_lab.board() for _ in range(BOARDS)]
    cc = [cc_lab.board() for _ in range(BOARDS)]
    pollers = [ConnectPoller(t.host, t.port, interval_s=INTERVAL_S, count=DURATION_S // INTERVAL_S,
                             ns_path=cc_lab.ns_path) for t in cc]
    with prometheus.Prometheus(ka_lab.ns, ["%s:%d" % (t.host, t.port) for t in ka], INTERVAL_S) as prom:
        t0 = time.monotonic()
        for p in pollers:
            p.start()
        for p in pollers:
            p.join(DURATION_S + 60)
        time.sleep(max(0.0, t0 + DURATION_S + 2 * INTERVAL_S - time.monotonic()))
        window = int(time.monotonic() - t0)
        up = prom.samples('up{job="boards"}', window)
        durations = prom.samples('scrape_duration_seconds{job="boards"}', window)
        host_tw_ka = time_wait_to(ka_lab.ns, [t.host for t in ka])
    host_tw_cc = time_wait_to(cc_lab.ns, [t.host for t in cc])

    # keep-alive fleet, scraped by Prometheus
    assert len(up) == BOARDS, sorted(up)
    scrapes = [len(v) for v in up.values()]
    failed = sum(v.count(0.0) for v in up.values())
    all_d = [1000 * d for v in durations.values() for d in v]
    ka_rows = _boards_clean(ka)
    figure("Prometheus scraping %d boards every %d s, kept-alive" % (BOARDS, INTERVAL_S), "%d s" % window,
           "%d scrapes, %d not up; scrape p50 %.1f ms, p99 %.1f ms; boards closed first %d times, "
           "TIME_WAIT on the boards %d, on the host %d" % (
               sum(scrapes), failed, _pct(all_d, 0.5), _pct(all_d, 0.99), sum(r[0] for r in ka_rows),
               max(r[1] for r in ka_rows), host_tw_ka))
    assert failed == 0 and min(scrapes) >= DURATION_S / INTERVAL_S - 5, (failed, scrapes)  # the first waits for its offset
    assert all(r == (0, 0, 0) for r in ka_rows), ka_rows
    assert host_tw_ka == 0

    # connect/close fleet
    polls = sum(len(p.polls) for p in pollers)
    stalls = sum(len(p.stalls) for p in pollers)
    lat = [1000 * q.latency_s for p in pollers for q in p.polls if q.ok]
    cc_rows = _boards_clean(cc)
    figure("one host polling %d boards every %d s, a new connection per poll" % (BOARDS, INTERVAL_S),
           "%d s" % (DURATION_S), "%d polls, %d failed or slower than 2 s; p50 %.1f ms, p99 %.1f ms; "
           "TIME_WAIT on the host %d, on the boards %d" % (
               polls, stalls, _pct(lat, 0.5), _pct(lat, 0.99), host_tw_cc, max(r[1] for r in cc_rows)))
    assert stalls == 0, [p.stalls[:3] for p in pollers if p.stalls]
    assert all(r == (0, 0, 0) for r in cc_rows), cc_rows
    assert host_tw_cc > 0  # the client closed first: the TIME_WAIT is the host's, as it should be
