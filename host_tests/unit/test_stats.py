# The counters (firmware/nostall/stats.py) and the /status document and live figures made of
# them (status.py).
# Runs on CPython and on MicroPython.

import gc

from nostall.config import Config
from nostall.stats import CLIENT, RESET, Stats
from nostall.status import document, live


class FakePool:
    in_use = 2
    peak = 5

    def long_lived(self):
        return 1


def test_how_connections_ended_is_counted_by_side():
    st = Stats()
    for reason in (CLIENT, CLIENT, RESET, "idle_timeout", "evicted", "evicted", "overflow"):
        st.ended(reason)
    assert st.closes_by_client == 2 and st.resets_by_client == 1
    assert st.closes_by_server == {"idle_timeout": 1, "evicted": 2, "overflow": 1}


def test_only_error_statuses_are_counted_by_class():
    st = Stats()
    for status in (200, 204, 304, 400, 404, 431, 500, 503):
        st.answered(status)
    assert (st.status_4xx, st.status_5xx) == (3, 2)


def test_handler_errors_by_kind():
    st = Stats()
    st.handler_error("exception", "/a", ValueError("x"))
    st.handler_error("timeout", "/b", None)
    st.handler_error("exception", "/c", KeyError("k"))
    assert st.handler_errors == 3 and st.handler_errors_by_kind == {"exception": 2, "timeout": 1}


class FakeServer:
    def __init__(self, st, cfg):
        self.stats = st
        self.pool = FakePool()
        self.cfg = cfg
        self.info = {"board": "test", "firmware_version": "9"}
        self.vitals = lambda: {"wifi_rssi": -60}


def _heap_figures():
    if not hasattr(gc, "mem_free"):  # CPython: MicroPython's heap figures, stood in for
        gc.mem_free = lambda: 1000
        gc.mem_alloc = lambda: 2000


def test_status_document():
    _heap_figures()
    st = Stats()
    st.accepted = 9
    st.ended("idle_timeout")
    st.ended("evicted")
    d = document(FakeServer(st, Config(max_connections=4)), collect=True)
    assert d["connections_open"] == 2 and d["connections_peak"] == 5 and d["connections_accepted"] == 9
    assert d["closes_by_server_total"] == 2 and d["limits"]["max_connections"] == 4
    assert d["board"] == "test" and d["firmware_version"] == "9" and d["long_lived_open"] == 1
    assert d["heap_free"] > 0 and d["heap_alloc"] > 0 and d["uptime_ms"] >= 0 and d["wifi_rssi"] == -60
    for key in ("requests", "closes_by_client", "resets_by_client", "status_4xx", "status_5xx",
                "handler_errors", "handler_errors_by_kind", "turned_away", "rejected_busy", "accept_errors"):
        assert key in d, key


def test_live_figures_carry_the_apps_own_and_survive_its_failure():
    import json

    from nostall.channel import STATUS

    _heap_figures()
    st = Stats()
    st.requests = 7
    srv = FakeServer(st, Config())
    old = STATUS.extra
    try:
        STATUS.extra = lambda: {"led": True}
        d = json.loads(live(srv, 1234, 3))
        assert d["uptime_ms"] == 1234 and d["requests_per_s"] == 3 and d["requests"] == 7
        assert d["led"] is True and d["connections_open"] == 2 and "limits" not in d
        STATUS.extra = lambda: 1 // 0  # the app's hook fails: counted, the figures still go out
        d = json.loads(live(srv, 1300, 0))
        assert d["uptime_ms"] == 1300 and st.handler_errors_by_kind == {"exception": 1}
    finally:
        STATUS.extra = old
