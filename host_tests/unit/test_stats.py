# The counters and the /status document (firmware/nostall/stats.py).
# Runs on CPython and on MicroPython.

import gc

from nostall.config import Config
from nostall.stats import CLIENT, RESET, Stats


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


def test_status_document():
    if not hasattr(gc, "mem_free"):  # CPython: MicroPython's heap figures, stood in for
        gc.mem_free = lambda: 1000
        gc.mem_alloc = lambda: 2000
    st = Stats()
    st.accepted = 9
    st.ended("idle_timeout")
    st.ended("evicted")
    limits = Config(max_connections=4).as_dict()
    d = st.document(FakePool(), limits, {"board": "test", "firmware_version": "9"}, collect=True)
    assert d["connections_open"] == 2 and d["connections_peak"] == 5 and d["connections_accepted"] == 9
    assert d["closes_by_server_total"] == 2 and d["limits"]["max_connections"] == 4
    assert d["board"] == "test" and d["firmware_version"] == "9" and d["long_lived_open"] == 1
    assert d["heap_free"] > 0 and d["heap_alloc"] > 0 and d["uptime_ms"] >= 0
    for key in ("requests", "closes_by_client", "resets_by_client", "status_4xx", "status_5xx",
                "handler_errors", "handler_errors_by_kind", "rejected_busy", "accept_errors"):
        assert key in d, key
