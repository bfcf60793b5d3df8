"""Worse Wi-Fi than the promise is made for, to know what still holds (issue 16): 10 % of the
frames lost each way, and 3 % loss with 300 ms delay spikes (half a second in every two, as a
busy channel or a background scan gives). Requests are still all answered and lwIP never holds a
TIME_WAIT pcb; the figures say how slow it gets and whether the board had to close first (it may,
on a client whose FIN is lost again and again: then its close is a reset, as the answer was
acknowledged). `--weather-count` / 5 requests per case (200 by default)."""

import threading

import pytest

from harness import lossy

pytestmark = pytest.mark.abuse

BASE = "loss=3,delay=20,jitter=10"
SPIKE = "loss=3,delay=300,jitter=10"
SPIKE_EVERY_S, SPIKE_S = 2.0, 0.5


class Spikes:
    """While in the with block: the link's delay 300 ms for SPIKE_S in every SPIKE_EVERY_S."""

    def __init__(self, emu):
        self.emu = emu
        self.stop = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(SPIKE_EVERY_S - SPIKE_S):
            self.emu.set_weather(SPIKE)
            self.count += 1
            self.stop.wait(SPIKE_S)
            self.emu.set_weather(BASE)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.emu.set_weather(BASE)


def _case(request, lab, figure, weather, what, session, spikes=False):
    count = max(20, request.config.getoption("--weather-count") // 5)
    t = lab.board(weather=weather, seed=18)
    if spikes:
        with Spikes(t.emu) as sp:
            r = lossy.run(t, lab.ns_path, clients=4, count=count, interval=0.02, session=session)
        what += " (%d spikes)" % sp.count
    else:
        r = lossy.run(t, lab.ns_path, clients=4, count=count, interval=0.02, session=session)
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print("\n%s: %s" % (what, lossy.summary(r)))
    fails = lossy.check(r)
    figure(what, "%d requests, 4 clients, %s" % (count, "kept-alive sessions" if session else "a new connection each"),
           "%d/%d answered, p50 %.0f ms, p99 %.0f ms, max %.1f s; board closed first %s; lwIP TIME_WAIT %d" % (
               r["ok"], count, r["latency_s"]["p50"] * 1e3, r["latency_s"]["p99"] * 1e3, r["latency_s"]["max"],
               r["closed_first"] or 0, r["time_wait_max"]),
           "nothing" if not fails else "; ".join(fails))
    # what must hold even here: every request answered, no TIME_WAIT on the board, nothing leaked
    held = [f for f in fails if not f.startswith("the board closed first")]
    assert not held, (held, lossy.summary(r))
    assert set(r["closed_first"]) <= {"linger_timeout"}, r["closed_first"]
    return r


@pytest.mark.parametrize("session", [False, True], ids=["per_request", "kept_alive"])
def test_ten_percent_loss(request, lab, figure, session):
    _case(request, lab, figure, "loss=10,delay=20,jitter=10", "Wi-Fi 10 % loss", session)


@pytest.mark.parametrize("session", [False, True], ids=["per_request", "kept_alive"])
def test_300_ms_delay_spikes(request, lab, figure, session):
    _case(request, lab, figure, BASE, "Wi-Fi 3 % loss with 300 ms delay spikes", session, spikes=True)
