"""GET /metrics over real sockets: Prometheus' text format as promtool reads it, the same figures
as /status, written as a chunked stream."""

import json
import os
import shutil
import subprocess

import pytest

from harness.target import parse_metrics


def promtool():
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool missing on CI: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not found: apt-get install prometheus")
    return path


def test_promtool_finds_nothing_to_say(board):
    with board.connect() as c:
        r = c.request("GET", "/metrics")
    assert r.status == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.headers.get("transfer-encoding") == "chunked"  # written in pieces
    out = subprocess.run([promtool(), "check", "metrics"], input=r.body, capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout == b"" and out.stderr == b"", out


def test_the_same_figures_as_status(board):
    with board.connect() as c:
        c.request("GET", "/nothing-here")  # a 404 to count
        st = c.request("GET", "/status?gc=1")
        m = parse_metrics(c.request("GET", "/metrics").body)
    s = json.loads(st.body)
    assert m["nostall_connections_accepted_total"][""] >= s["connections_accepted"]
    assert m["nostall_requests_total"][""] >= s["requests"] + 1  # /status itself came before
    assert m["nostall_error_responses_total"]['{class="4xx"}'] >= s["status_4xx"] >= 1
    assert m["nostall_closes_total"]['{by="client",reason="close"}'] == s["closes_by_client"]
    for reason, n in s["closes_by_server"].items():
        assert m["nostall_closes_total"]['{by="server",reason="%s"}' % reason] >= n
    assert m["nostall_connection_slots"][""] == s["limits"]["max_connections"]
    assert m["nostall_idle_timeout_seconds"][""] == s["limits"]["idle_timeout_ms"] / 1000
    assert m["nostall_info"]['{version="%s",board="%s"}' % (s["firmware_version"], s["board"])] == 1
