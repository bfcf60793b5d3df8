"""Restart (issue 5): stop the sim board while clients are connected - some idle on keep-alive,
some mid-request - and start a new one on the same port at once. The server sets SO_REUSEADDR
before bind (server.listen), so the new process binds and listens in well under 1 s although the
old process's connections are still in TIME_WAIT on that port.

Two ways to stop: SIGINT, the firmware's own shutdown path (it closes the idle connections
first, so those land in TIME_WAIT on the server's port once the clients close their end), and
SIGKILL, a crash (the kernel closes the sockets; we then close the clients, so the server's
half-closed orphans pass through TIME_WAIT too). Either way the test checks with `ss` that
TIME_WAIT sockets on the port exist when the new process binds, and that a plain bind without
SO_REUSEADDR would fail right then (so the check means something).
"""

import errno
import json
import shutil
import signal
import socket
import time

import pytest

from harness.simboard import SimBoard
from harness.target import Target
from harness.target import server_time_wait as time_wait

pytestmark = [
    pytest.mark.abuse,
    pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)"),
]


def bind_fails_without_reuseaddr(host, port):
    s = socket.socket()
    try:
        s.bind((host, port))
    except OSError as e:
        return e.errno == errno.EADDRINUSE
    finally:
        s.close()
    return False


@pytest.fixture
def sims(request, tmp_path):
    """SimBoard factory (same settings as make_sim; port= to reuse one); stops them all."""
    if request.config.getoption("--board-ip"):
        pytest.skip("needs its own sim board")
    started = []
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"http_port": 8080, "limits": {"shutdown_timeout_ms": 300, "tick_ms": 50}}))

    def start(port=None):
        sim = SimBoard(port=port, heap=request.config.getoption("--sim-heap"),
                       firmware=request.config.getoption("--sim-firmware"), settings=str(settings),
                       log=str(tmp_path / ("sim%d.log" % len(started))))
        started.append(sim)
        t0 = time.monotonic()
        sim.start()  # returns once the port accepts connections
        return sim, time.monotonic() - t0

    yield start
    for sim in started:
        sim.stop()


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_restart_binds_at_once_with_old_connections_in_time_wait(sims, figure, how):
    old, first_start_s = sims()
    t = Target(old.host, old.port, old)
    idle = [t.connect() for _ in range(3)]
    for c in idle:
        assert c.request("GET", "/api/led").status == 200  # now parked on keep-alive
    busy = [t.connect() for _ in range(2)]
    for c in busy:
        c.send(b"GET /api/led HTTP/1.1\r\nHo")  # mid-request
    time.sleep(0.2)

    t0 = time.monotonic()
    if how == "SIGINT":
        old.stop()  # SIGINT: the firmware's shutdown path
    else:
        old.proc.send_signal(signal.SIGKILL)
        old.proc.wait(5)
    stopped_s = time.monotonic() - t0
    # the clients see the end of their connection (EOF or reset), none hangs; then they close
    for c in idle + busy:
        assert c.closed_by_peer(2.0)
        c.close()
    tw = time_wait(old.port)
    assert tw > 0, "no TIME_WAIT on port %d after the %s stop" % (old.port, how)
    assert bind_fails_without_reuseaddr(old.host, old.port), "TIME_WAIT would not have mattered"

    new, restart_s = sims(port=old.port)
    tw_after = time_wait(old.port)
    t2 = Target(new.host, new.port, new)
    with t2.connect() as c:
        assert c.request("GET", "/api/led").status == 200
    figure("restart (%s) with 5 clients connected" % how,
           "3 idle keep-alive + 2 mid-request clients; %d TIME_WAIT on the port at restart" % tw,
           "stopped in %d ms; new process listening %d ms after start (first start: %d ms); "
           "first request answered" % (stopped_s * 1000, restart_s * 1000, first_start_s * 1000),
           "nothing: bind ok with %d TIME_WAIT still there" % tw_after)
    assert restart_s < 1.0, restart_s
    assert tw_after > 0  # they were still there while the new process bound
