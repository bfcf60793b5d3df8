"""Pollers on lossy Wi-Fi (3 % of the frames lost each way, 20 +- 10 ms of delay): one board
polled at once by a script's requests.Session and Home Assistant's aiohttp session (each every
second, over kept-alive connections) and scraped by a real Prometheus (Debian's package) every
5 s with its 5 s timeout, for NOSTALL_WEATHER_POLL_S seconds (default 45). Every poll and every
scrape is answered, the board never closes first and lwIP never holds a TIME_WAIT pcb."""

import os
import time

import pytest

from harness import prometheus
from harness.pollers import AiohttpPoller, SessionPoller

pytestmark = pytest.mark.abuse

WIFI = "loss=3,delay=20,jitter=10"
DURATION_S = int(os.environ.get("NOSTALL_WEATHER_POLL_S", "45"))
SCRAPE_S = 5


def _pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")


def test_pollers_and_prometheus_on_lossy_wifi(lab, figure):
    if prometheus.binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus missing on CI: .ci/run installs Debian's prometheus package")
        pytest.skip("prometheus not found: apt-get install prometheus")
    t = lab.board(weather=WIFI, seed=17)
    pollers = [SessionPoller(t.host, t.port, interval_s=1.0, count=DURATION_S, ns_path=lab.ns_path),
               AiohttpPoller(t.host, t.port, interval_s=1.0, count=DURATION_S, ns_path=lab.ns_path)]
    target = "%s:%d" % (t.host, t.port)
    with prometheus.Prometheus(lab.ns, [target], SCRAPE_S, timeout_s=SCRAPE_S) as prom:
        t0 = time.monotonic()
        for p in pollers:
            p.start()
        for p in pollers:
            p.join(DURATION_S + 60)
        time.sleep(max(0.0, t0 + DURATION_S + SCRAPE_S - time.monotonic()))
        window = int(time.monotonic() - t0)
        up = prom.samples('up{job="boards"}', window).get(target, [])
        durations = prom.samples('scrape_duration_seconds{job="boards"}', window).get(target, [])
    st = t.status()
    emu = t.emu.stats()
    w = emu["weather"]
    dropped = sum(w[d]["dropped_loss"] for d in ("to_client", "from_client"))
    frames = sum(w[d]["frames"] for d in ("to_client", "from_client"))
    for p, name in zip(pollers, ("requests.Session", "aiohttp (Home Assistant)")):
        lat = [1000 * q.latency_s for q in p.polls if q.ok]
        figure("Wi-Fi 3 %% loss: %s polling every 1 s" % name, "%d s, kept-alive" % DURATION_S,
               "%d/%d answered, p50 %.0f ms, p99 %.0f ms, max %.0f ms" % (
                   len(lat), len(p.polls), _pct(lat, 0.5), _pct(lat, 0.99), max(lat or [0])),
               "nothing" if not p.failed else "%d polls: %s" % (len(p.failed), p.failed[:2]))
    ms = [1000 * d for d in durations]
    figure("Wi-Fi 3 %% loss: Prometheus scraping /metrics every %d s" % SCRAPE_S, "%d s" % window,
           "%d scrapes, %d not up; p50 %.0f ms, p99 %.0f ms; board closed first %d, lwIP TIME_WAIT %d; "
           "the gateway dropped %d of %d frames" % (
               len(up), up.count(0.0), _pct(ms, 0.5), _pct(ms, 0.99), st["closes_by_server_total"],
               emu["time_wait_max"], dropped, frames))
    for p in pollers:
        assert not p.failed and len(p.polls) == DURATION_S, (p.summary(), p.failed[:3])
    assert up and up.count(0.0) == 0 and len(up) >= window // SCRAPE_S - 2, up
    assert st["closes_by_server_total"] == 0, st["closes_by_server"]
    assert emu["time_wait_max"] == 0 and emu["active_closes"] == 0, emu
    assert dropped > 0, w
