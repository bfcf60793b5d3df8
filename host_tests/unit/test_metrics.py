# The /metrics page (firmware/nostall/metrics.py): Prometheus text format 0.0.4, one family per
# piece, every /status counter under its Prometheus name. Runs on CPython and on MicroPython.
# (promtool lints the real page: host_tests/wire/test_metrics.py.)

import gc

from nostall.config import Config
from nostall.metrics import families
from nostall.pool import Pool, Slot
from nostall.stats import Stats

if not hasattr(gc, "mem_free"):  # CPython: MicroPython's heap figures, stood in for
    gc.mem_free = lambda: 1000
    gc.mem_alloc = lambda: 2000


class FakeServer:
    def __init__(self):
        self.cfg = Config(max_connections=3)
        self.stats = Stats()
        self.pool = Pool(self.cfg)
        for _ in range(3):
            self.pool.add(Slot(self.pool))
        self.info = {"firmware_version": "1.2", "board": 'odd "board"\\name'}




def parse(pieces):
    """{family: (type, help, [(labels, value)])}, checking the text format as it goes."""
    out = {}
    for piece in pieces:
        lines = piece.decode().split("\n")
        assert lines[-1] == "" and lines[0].startswith("# HELP ") and lines[1].startswith("# TYPE "), piece
        name = lines[0].split(" ")[2]
        kind = lines[1].split(" ")[3]
        assert lines[1].split(" ")[2] == name and kind in ("counter", "gauge"), piece
        assert name.startswith("nostall_") and (kind != "counter" or name.endswith("_total")), name
        samples = []
        for line in lines[2:-1]:
            series, _, value = line.rpartition(" ")
            assert series.startswith(name), line
            samples.append((series[len(name):], float(value)))
        out[name] = (kind, lines[0], samples)
    return out


def test_every_status_figure_has_a_family():
    srv = FakeServer()
    st = srv.stats
    st.accepted = 7
    st.requests = 5
    st.ws_protocol_errors = 2
    srv.pool.slots[1].long_lived = True
    st.ended("client")
    st.ended("reset")
    st.ended("idle_timeout", True)
    st.ended("evicted_silent", True)
    st.answered(404)
    st.answered(503)
    st.handler_error("timeout", "/x", None)
    m = parse(list(families(srv)))
    assert m["nostall_connections_accepted_total"][2] == [("", 7.0)]
    assert m["nostall_requests_total"][2] == [("", 5.0)]
    assert m["nostall_connection_slots"][2] == [("", 3.0)]
    assert m["nostall_long_lived_open"][2] == [("", 1.0)]
    assert m["nostall_ws_protocol_errors_total"][2] == [("", 2.0)]
    closes = dict(m["nostall_closes_total"][2])
    assert closes == {'{by="client",reason="close"}': 1.0, '{by="client",reason="reset"}': 1.0,
                      '{by="server",reason="evicted_silent"}': 1.0, '{by="server",reason="idle_timeout"}': 1.0}
    assert m["nostall_server_resets_total"][2] == [("", 2.0)]
    assert dict(m["nostall_error_responses_total"][2]) == {'{class="4xx"}': 1.0, '{class="5xx"}': 1.0}
    assert m["nostall_handler_errors_total"][2] == [('{kind="timeout"}', 1.0)]
    assert m["nostall_idle_timeout_seconds"][2] == [("", 330.0)]
    for name in ("nostall_uptime_seconds", "nostall_heap_free_bytes", "nostall_heap_alloc_bytes",
                 "nostall_connections_open", "nostall_connections_peak", "nostall_rejected_busy_total",
                 "nostall_accept_errors_total"):
        assert name in m, name
    assert "nostall_wifi_rssi_dbm" not in m and "nostall_reset_cause" not in m  # no vitals: no lines


def test_label_values_are_escaped():
    m = parse(list(families(FakeServer())))
    assert m["nostall_info"][2] == [('{version="1.2",board="odd \\"board\\"\\\\name"}', 1.0)]


def test_board_vitals():
    def vitals():
        return {"wifi_rssi_dbm": -67, "reset_cause": "wdt"}

    m = parse(list(families(FakeServer(), vitals)))
    assert m["nostall_wifi_rssi_dbm"][2] == [("", -67.0)]
    assert m["nostall_reset_cause"][2] == [('{cause="wdt"}', 1.0)]


def test_written_in_pieces():
    pieces = list(families(FakeServer()))
    assert len(pieces) >= 15 and max(len(p) for p in pieces) < 400
