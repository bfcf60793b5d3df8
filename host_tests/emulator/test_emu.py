"""The stall, reproduced on real lwIP, and the absence of it.

Each case gets a fresh network namespace with lwIP (ESP32 options, see
host_tests/lwipgw/lwipopts.h) between a Linux client in the namespace and an
upstream server on 127.0.0.1 in the root namespace (harness/emu/netns.py).

Needs root, /dev/net/tun, ip and gcc: skipped with a one-line reason
otherwise, except on CI (CI=true), where a missing emulator is a failure
(conftest.py).

Knobs (environment, so nothing clashes with conftest.py's options):
  EMU_SOAK_COUNT    requests in the ephemeral-port soak (default 1000)
  EMU_REUSE_COUNT   requests in the reused-port run (default 120)
  EMU_PATH          path requested from the upstream (default /)
  EMU_UPSTREAM_PORT use a server already listening on 127.0.0.1:PORT

The upstream of the "client closes first" cases is the fixture
`emu_upstream_port`. It uses, in order: EMU_UPSTREAM_PORT; a fixture named
`emu_firmware_port` if conftest.py defines one (the real firmware on the
unix port: it must return the port it listens on, 127.0.0.1); else
host_tests/apps_emu/polite_server.py.
"""
import os

import pytest

from harness.emu import netns, paced
from harness.emu.servers import upstream_server

PACING_S = 0.15          # the maintainers' reproduction
TIMEOUT_S = 5.0          # per request
FIXED_SOURCE_PORT = 43210
SOAK_COUNT = int(os.environ.get("EMU_SOAK_COUNT", "1000"))
REUSE_COUNT = int(os.environ.get("EMU_REUSE_COUNT", "120"))
PATH = os.environ.get("EMU_PATH", "/")
NEGATIVE_MSL_MS = 6000   # 2*MSL = 12 s: a stall short enough to measure twice
STALL_BAND_S = (10.0, 16.0)
# Linux retries a lost SYN after 1 s: any request that slow hit a stall.
MAX_LATENCY_S = 1.0


@pytest.fixture
def emu_upstream_port(request):
    """Port on 127.0.0.1 of a server that lets the client close first."""
    if os.environ.get("EMU_UPSTREAM_PORT"):
        yield int(os.environ["EMU_UPSTREAM_PORT"])
        return
    try:
        port = request.getfixturevalue("emu_firmware_port")
    except pytest.FixtureLookupError:
        port = None
    if port is not None:
        yield int(port)
        return
    with upstream_server("polite_server.py") as port:
        yield port


@pytest.fixture
def naive_port():
    with upstream_server("naive_server.py") as port:
        yield port


def _report(name, results, st):
    s = paced.summary(results)
    keys = ("accepted", "active_closes", "passive_closes", "client_resets", "syn_to_time_wait",
            "time_wait_max", "pcbs_max")
    print("\n%s: %s\nlwIP: %s" % (name, s, {k: st[k] for k in keys}))
    return s


def test_naive_server_stalls_for_2msl(naive_port):
    """Negative control: a server that closes first, a client that reuses
    its source port. lwIP must stall it for ~2*MSL, else the emulator is
    not showing the board's behaviour and the other tests prove nothing."""
    with netns.Emulator(naive_port, msl_ms=NEGATIVE_MSL_MS) as emu:
        emu.allow_port_reuse()
        with emu.client():
            res = paced.paced_requests(emu.ip, emu.port, count=20, pacing_s=PACING_S,
                                       timeout_s=TIMEOUT_S, source_port=FIXED_SOURCE_PORT,
                                       path=PATH, deadline_s=40,
                                       stop=lambda r: len(paced.stalls(r)) >= 2)
        n_ok = len(res) - len(paced.failures(res))
        st = emu.wait_stats(lambda s: s["accepted"] >= n_ok and s["open"] == 0)
        log = emu.log_tail()
    s = _report("naive server, reused port, MSL 6000", res, st)
    assert paced.failures(res), "no stall against a close-first server: %s\n%s" % (s, log)
    assert s["stalls_s"], "never recovered from the stall: %s" % s
    lo, hi = STALL_BAND_S
    assert all(lo <= x <= hi for x in s["stalls_s"]), "stall not ~2*MSL: %s" % s
    assert st["active_closes"] >= 1 and st["time_wait_max"] > 0, st
    assert st["syn_to_time_wait"] > 0, st


def test_client_closes_first_reused_port_never_stalls(emu_upstream_port):
    """Same client as the negative control, against a server that waits for
    the client to close: no TIME_WAIT on the board, so no stall."""
    with netns.Emulator(emu_upstream_port) as emu:
        emu.allow_port_reuse()
        with emu.client():
            res = paced.paced_requests(emu.ip, emu.port, count=REUSE_COUNT, pacing_s=PACING_S,
                                       timeout_s=TIMEOUT_S, source_port=FIXED_SOURCE_PORT, path=PATH)
        st = emu.wait_stats(lambda s: s["open"] == 0)
        log = emu.log_tail()
    s = _report("client closes first, reused port", res, st)
    assert not paced.failures(res), "%s\n%s\n%s" % (s, paced.failures(res)[:5], log)
    assert s["max_latency_s"] < MAX_LATENCY_S, s
    assert st["time_wait_max"] == 0 and st["syn_to_time_wait"] == 0, st
    assert st["active_closes"] == 0, "the server closed first: %s" % st


def test_soak_ephemeral_ports(emu_upstream_port):
    """SOAK_COUNT paced requests with ordinary ephemeral source ports."""
    with netns.Emulator(emu_upstream_port) as emu:
        with emu.client():
            res = paced.paced_requests(emu.ip, emu.port, count=SOAK_COUNT, pacing_s=PACING_S,
                                       timeout_s=TIMEOUT_S, path=PATH,
                                       deadline_s=SOAK_COUNT * (PACING_S + 0.35) + 60)
        st = emu.wait_stats(lambda s: s["open"] == 0)
        log = emu.log_tail()
    s = _report("soak, %d requests, ephemeral ports" % SOAK_COUNT, res, st)
    assert len(res) == SOAK_COUNT, s
    assert not paced.failures(res), "%s\n%s\n%s" % (s, paced.failures(res)[:5], log)
    assert st["time_wait_max"] == 0, st
