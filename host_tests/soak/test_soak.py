"""The soak (1000 paced requests by default; --soak-count/--soak-interval change it) against the
board, a keep-alive variant, and proof that its checks fail on a server that closes first or
leaks sockets."""

import os

import pytest

from harness import micropython
from harness.paths import APPS, REPORTS
from harness.simboard import free_port, wait_listening
from harness.soak import check, run_soak, summary, write_report
from harness.target import server_time_wait


def _report(request, report):
    # shown in every run, not only on failure: CI logs keep the latency figures
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print("\n" + summary(report))


def _soak(request, board, session):
    cfg = request.config
    report = run_soak(
        board.url,
        count=cfg.getoption("--soak-count"),
        interval=cfg.getoption("--soak-interval"),
        timeout=5.0,
        session=session,
        fd_counter=board.sim.fd_count if board.sim else None,
        time_wait=board.time_wait,
    )
    _report(request, report)
    fails = check(report, cfg.getoption("--stall-threshold"))
    if fails:
        write_report(report, REPORTS)
    assert not fails, fails
    return report


def test_soak_new_connection_per_request(request, board):
    r = _soak(request, board, session=False)
    assert r["status_after"]["closes_by_client"] - r["status_before"]["closes_by_client"] >= r["count"]


def test_soak_keep_alive_session(request, board):
    r = _soak(request, board, session=True)
    # a session reuses connections: far fewer accepts than requests
    accepted = r["status_after"]["connections_accepted"] - r["status_before"]["connections_accepted"]
    assert accepted < r["count"] / 10 + HEAP_SAMPLE_CONNECTIONS


HEAP_SAMPLE_CONNECTIONS = 15  # the /status?gc=1 readings use connections of their own


@pytest.fixture
def naive(request):
    procs = []

    def start(*args):
        port = free_port()
        p = micropython.popen(os.path.join(APPS, "naive_server.py"), [port] + list(args))
        procs.append(p)
        wait_listening("127.0.0.1", port, p)
        return port, p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_soak_catches_a_server_that_closes_first(naive):
    port, p = naive()
    fds = lambda: len(os.listdir("/proc/%d/fd" % p.pid))  # noqa: E731
    report = run_soak("http://127.0.0.1:%d" % port, count=30, interval=0.01, fd_counter=fds, time_wait=lambda: server_time_wait(port))
    fails = check(report)
    assert any("closed first" in f for f in fails), fails
    assert any("TIME_WAIT" in f for f in fails), fails


def test_soak_catches_a_socket_leak(naive):
    port, p = naive("--leak")
    fds = lambda: len(os.listdir("/proc/%d/fd" % p.pid))  # noqa: E731
    report = run_soak("http://127.0.0.1:%d" % port, count=30, interval=0.01, fd_counter=fds, time_wait=lambda: server_time_wait(port))
    fails = check(report)
    assert any("a socket leaks" in f for f in fails), fails
    assert any("open connections" in f for f in fails), fails


def test_soak_catches_a_stall_and_a_heap_leak():
    base = {"heap_free": 100000, "heap_alloc": 100000, "connections_open": 1, "closes_by_client": 0,
            "closes_by_server": {}, "closes_by_server_total": 0, "connections_accepted": 0}
    report = {
        "errors": [], "results": [(0, 0.01, None), (0.2, 12.5, None)], "status_before": base,
        "status_after": dict(base), "heap_alloc": [(0, 100000), (1, 110000), (2, 120000), (3, 130000)],
        "heap_total": 200000, "fds": [None, None], "server_time_wait": [None, None],
    }
    fails = check(report, 2.0)
    assert any("stalls" in f for f in fails) and any("heap in use trends up" in f for f in fails), fails


def test_soak_does_not_judge_free_heap():
    # on an ESP32-C3 free heap includes the IDF heap's largest free block, moving with Wi-Fi: a
    # healthy board whose free heap wobbles while the heap in use stays flat passes
    base = {"heap_free": 100000, "heap_alloc": 100000, "connections_open": 1, "closes_by_client": 0,
            "closes_by_server": {}, "closes_by_server_total": 0, "connections_accepted": 0}
    report = {
        "errors": [], "results": [(0, 0.01, None)], "status_before": base, "status_after": dict(base),
        "heap_alloc": [(0, 100000), (1, 100400), (2, 99800), (3, 100100)], "heap_total": 200000,
        "fds": [None, None], "server_time_wait": [None, None],
    }
    assert check(report, 2.0) == []
