"""Worse Wi-Fi than the promise is made for, to know what still holds (issue 16): 10 % of the
frames lost each way, and 3 % loss with 300 ms delay spikes (half a second in every two, as a
busy channel or a background scan gives). lwIP never holds a TIME_WAIT pcb and nothing leaks;
the figures say how slow it gets, how many requests were answered (at 10 % loss one segment
lost again and again may outlast write_timeout_ms: the board then resets, as for a client gone)
and whether the board closed first (only with a reset). `--weather-count` / 10 requests per case
(100 by default), the four cases on four boards side by side."""

import contextlib
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


def test_heavier_weather(request, lab, figure):
    # four boards side by side: 10 % loss, and 3 % with 300 ms spikes, each per request and kept-alive
    count = max(20, request.config.getoption("--weather-count") // 10)
    cases = [("Wi-Fi 10 % loss", "loss=10,delay=20,jitter=10", False), ("Wi-Fi 10 % loss", "loss=10,delay=20,jitter=10", True),
             ("Wi-Fi 3 % loss with 300 ms delay spikes", BASE, False), ("Wi-Fi 3 % loss with 300 ms delay spikes", BASE, True)]
    boards = [lab.board(weather=weather, seed=18 + i) for i, (_, weather, _) in enumerate(cases)]
    with contextlib.ExitStack() as stack:
        for t, (_, weather, _) in zip(boards, cases):
            if weather == BASE:
                stack.enter_context(Spikes(t.emu))
        reports = lossy.run_all([(t, {"count": count, "session": session}) for t, (_, _, session) in zip(boards, cases)],
                                lab.ns_path)
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    for r, (what, _, _) in zip(reports, cases):
        with capman.global_and_fixture_disabled():
            print("\n%s: %s" % (what, lossy.summary(r)))
        figure(*lossy.figure_row(r, what))
    for r in reports:
        # what must hold even here: no TIME_WAIT on the board and nothing leaked. A request may
        # fail (a segment lost again and again outlasts write_timeout_ms: the board resets) and
        # the board may close first, but only with a reset: after the answer was acknowledged
        # (linger_timeout), for a client that took nothing (write_timeout), or, at the cap, for a
        # newcomer in place of a slot still waiting for a client's lost FIN (evicted_stalled: with
        # 4 clients each on a new connection per request, slots still lingering fill the pool)
        held = [f for f in lossy.check(r) if not f.startswith(("the board closed first", "%d requests failed"
                                                                % (r["sent"] - r["ok"])))]
        assert not held, (held, lossy.summary(r))
        assert r["server_resets"] == sum(r["closed_first"].values()), (r["server_resets"], r["closed_first"])
        assert r["ok"] >= 0.95 * r["count"], lossy.summary(r)
