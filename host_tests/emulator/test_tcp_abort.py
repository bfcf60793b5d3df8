"""The firmware's abortive close, on real lwIP 2.1.3 (issue 10).

`boards/cmodules/nostall_tcp/tcp_abort_idle.c`, the lwIP half of the `_nostall_tcp` module in
the firmware build, is compiled unchanged into `host_tests/lwipgw/abort/abort_check.c` with
lwIP's tcpip thread and socket layer (`make abort-check`): one binary with
LWIP_TCPIP_CORE_LOCKING 0, as on the board, one with 1 (tcpip_api_call's other path). A run
makes its own unnamed network namespace and TAP device (both vanish when it exits, however it
exits), talks to lwIP from a Linux client there and prints one `case=NAME ok=0|1 key=value ...`
line per case. These tests read the keys themselves, not only `ok`. The `query...` keys are
what the same file's `nostall_tcp_unacked()` (`_nostall_tcp.unacked(sock)`) answered there.

Needs root and /dev/net/tun: skipped with a one-line reason otherwise, except on CI (CI=true),
where that is a failure.
"""
import os
import shutil
import subprocess

import pytest

from harness import paths

RUN_TIMEOUT_S = 90   # a run takes about a second; the program's own alarm is at 60 s
BUILD_TIMEOUT_S = 600
LWIP_STAMP = os.path.join(paths.CACHE, "lwip", ".stamp")
CASES = {"listening", "bad_fd", "closed_fd", "udp", "unconnected", "idle_acked", "close",
         "linger0_close", "unacked", "window_full", "window_full_forced", "drained", "fin_unacked",
         "peer_reset"}


def _skip_or_fail(why):
    if os.environ.get("CI") == "true":
        pytest.fail("lwIP abort check unavailable on CI: " + why, pytrace=False)
    pytest.skip("lwIP abort check unavailable: " + why)


@pytest.fixture(scope="module")
def binaries():
    """Build both binaries with make (cached); {core_locking: path}."""
    if os.geteuid() != 0:
        _skip_or_fail("needs root (a network namespace and a TAP device)")
    if not os.path.exists("/dev/net/tun"):
        _skip_or_fail("no /dev/net/tun (TUN/TAP unavailable)")
    if not shutil.which("gcc") or not shutil.which("make"):
        _skip_or_fail("gcc and make are needed")
    r = subprocess.run(["make", "-s", "--no-print-directory", "abort-check"], cwd=paths.ROOT,
                       capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    out = r.stdout + r.stderr
    if r.returncode != 0:
        errors = [line for line in out.splitlines() if line.startswith("error:")] or ["make abort-check failed"]
        if not os.path.exists(LWIP_STAMP):
            _skip_or_fail("no lwIP source (" + errors[0] + ")")
        pytest.fail("make abort-check: %s\n%s" % (errors[0], out[-3000:]), pytrace=False)
    return {lock: os.path.join(paths.CACHE, "emu", "abort-check-lock%d" % lock) for lock in (0, 1)}


class Run:
    """One run's output: the cases by name (a list of key/value dicts each), the summary."""

    def __init__(self, proc):
        self.proc = proc
        self.output = proc.stdout + proc.stderr
        self.cases = {}
        self.summary = {}
        for line in proc.stdout.splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            if line.startswith("case="):
                self.cases.setdefault(fields["case"], []).append(fields)
            elif line.startswith("summary "):
                self.summary = fields

    def one(self, name):
        found = self.cases.get(name, [])
        assert len(found) == 1, "case %s: %r\n%s" % (name, found, self.output)
        return found[0]


@pytest.fixture(scope="module", params=[0, 1], ids=["core_locking0", "core_locking1"])
def run(request, binaries):
    proc = subprocess.run([binaries[request.param]], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    print("\n" + proc.stdout)
    return Run(proc)


def test_every_case_ran_and_passed(run):
    assert run.proc.returncode == 0, run.output
    assert set(run.cases) == CASES, run.output
    assert run.summary.get("failed") == "0", run.output
    assert all(c["ok"] == "1" for cases in run.cases.values() for c in cases), run.output


def test_idle_connection_is_reset_and_its_pcb_freed_at_once(run):
    """(a) The point: RST, pcb gone before any timer ran, no TIME_WAIT, close() still fine."""
    c = run.one("idle_acked")
    assert c["query_before"] == "0", c  # nothing in flight: what abort needs
    assert c["result"] == "aborted", c
    assert c["state_before"] == "ESTABLISHED" and c["pcbs_before"] == "1", c
    assert c["pcb_after"] == "0" and c["pcbs_after"] == "0" and c["time_wait_after"] == "0", c
    assert c["client_recv"] == "ECONNRESET", c
    assert c["close"] == "0", c  # lwip_close() on the netconn whose pcb is gone
    assert c["pcbs_later"] == "0" and c["time_wait_later"] == "0", c
    assert c["query_after"] == "0", c  # no pcb any more


@pytest.mark.parametrize("case", ["close", "linger0_close"])
def test_lwip_close_leaves_time_wait(run, case):
    """(b) Negative controls: the same idle connection closed by lwIP itself sends a FIN and
    keeps a TIME_WAIT pcb, with SO_LINGER {1, 0} too: lwIP aborts on linger 0 only while sent
    data is unacknowledged. That is why the firmware needs tcp_abort()."""
    c = run.one(case)
    assert c["setsockopt"] == "0" and c["close"] == "0", c
    assert c["client_recv"] == "EOF", c
    assert c["time_wait"] == "1", c


def test_unacknowledged_data_is_not_aborted(run):
    """(c) Sent, received, its ACK lost: no abort, the connection goes on and gets acked."""
    c = run.one("unacked")
    assert c["unacked_before"] == "1", c
    assert c["result"] == "unacked", c
    assert c["pcb_after"] == "1" and c["state_after"] == "ESTABLISHED" and c["unacked_after"] == "1", c
    assert c["client_recv"] == "ok" and c["client_bytes"] == "4", c
    assert c["acked_later"] == "1", c


def test_data_behind_a_full_window_is_not_aborted(run):
    """(c) The client stopped reading: lwIP holds data unsent; no abort, nothing changed."""
    c = run.one("window_full")
    assert c["unsent_before"] == "1", c
    assert c["result"] == "unacked", c
    assert c["pcb_after"] == "1" and c["state_after"] == c["state_before"] == "ESTABLISHED", c
    assert c["unsent_after"] == "1", c
    assert c["client_recv"] == "ok" and int(c["client_bytes"]) > 0, c
    assert c["query_before"] == c["query_after"] == "1", c  # unsent counts as in flight


def test_a_client_that_stopped_reading_is_aborted_when_forced(run):
    """abort(sock, force=True), for a client that stopped reading (write_timeout): lwIP would keep
    its pcb through minutes of persist probes after a normal close; forced, it is freed at once
    with a RST and no TIME_WAIT."""
    c = run.one("window_full_forced")
    assert c["unsent_before"] == "1" or c["unacked_before"] == "1", c
    assert c["result"] == "aborted" and c["pcb_after"] == "0", c
    assert c["pcbs_after"] == "0" and c["time_wait_after"] == "0", c
    assert c["client_recv"] == "ECONNRESET", c
    assert c["query_after"] == "0", c


def test_what_is_no_established_connection_is_left_alone(run):
    """(d) A listener (still accepting afterwards), bad and freed fds, UDP, a socket never
    connected, a connection the peer reset already: no abort."""
    c = run.one("listening")
    assert c["result"] == "state" and c["state_after"] == "LISTEN" and c["accepts_after"] == "1", c
    bad = run.cases.get("bad_fd", [])
    assert [b["result"] for b in bad] == ["no_socket"] * 3, bad
    assert run.one("closed_fd")["result"] == "no_socket"
    assert run.one("udp")["result"] == "not_tcp"
    assert run.one("unconnected")["result"] == "state"
    c = run.one("peer_reset")
    assert c["pcb_before_call"] == "0" and c["result"] == "no_pcb" and c["close"] == "0", c


def test_unacked_says_true_only_while_the_boards_data_is_in_flight(run):
    """_nostall_tcp.unacked(sock), for the linger: it must not run out while lwIP still
    retransmits the answer. 1 with data sent and its ACK lost, 1 behind a stopped client's full
    window; 0 once the client has acknowledged everything (the ACK got through, the client
    read it all), on an idle connection and after an abort."""
    c = run.one("unacked")
    assert c["query_inflight"] == "1" and c["query_later"] == "0", c
    c = run.one("drained")
    assert c["unsent_before"] == "1" or c["unacked_before"] == "1", c
    assert c["query_stopped"] == "1", c
    assert c["client_bytes"] == c["sent"] and int(c["sent"]) > 0, c
    assert c["unsent_drained"] == c["unacked_drained"] == "0" and c["state_drained"] == "ESTABLISHED", c
    assert c["query_drained"] == "0", c
    assert run.one("idle_acked")["query_before"] == "0"
    assert run.one("window_full")["query_before"] == "1"
    assert run.one("window_full_forced")["query_after"] == "0"


def test_unacked_counts_a_fin_until_acknowledged_and_not_time_wait(run):
    """A FIN is a queued segment like data: unacknowledged in FIN_WAIT_1 it counts (1); in
    TIME_WAIT, still on its socket, nothing does (0), and abort leaves it alone."""
    c = run.one("fin_unacked")
    assert c["shutdown"] == "0" and c["state_fin"] == "FIN_WAIT_1" and c["unacked_fin"] == "1", c
    assert c["query_fin"] == "1", c
    assert c["client_recv"] == "EOF", c
    assert c["state_later"] == "TIME_WAIT" and c["query_later"] == "0", c
    assert c["result_later"] == "state" and c["close"] == "0", c


def test_unacked_is_false_where_there_is_no_connection(run):
    """A listener, bad and freed fds, UDP, a socket never connected, a connection the peer reset."""
    for name in ("listening", "closed_fd", "udp", "unconnected", "peer_reset"):
        assert run.one(name)["query"] == "0", run.one(name)
    bad = run.cases.get("bad_fd", [])
    assert [b["query"] for b in bad] == ["0"] * 3, bad
