"""Fixtures only (the tools they use are in harness/): the target board (the sim board by default,
the sim behind real lwIP with --board=emu, a real board with --board-ip/BOARD_IP), dedicated sim
boards with their own settings, and the abuse figures.

--board=emu: every sim board (the session's and each make_sim one) gets an lwIP gateway of its own
(harness/emu, host_tests/lwipgw: ESP32 lwIP options, 12 TCP pcbs, TCP_MSL from sdkconfig.overlay,
the sim's listen backlog, which ends at the firmware's accept() as on a board) whose TAP sits in
one client network namespace made for the session; each test that uses `board`
or `make_sim` runs with its thread in that namespace, so its sockets (and threads it starts) reach
the firmware only through lwIP. The sims and gateways stay on the home namespace's loopback. A
dedicated sim, and so a dedicated lwIP with fresh pcbs and no TIME_WAIT, is what a case that needs
clean TCP state uses.

QEMU boards (make_qemu, host_tests/qemu): the real esp32 port on an emulated ESP32-C3, each in a
namespace of its own (harness/qemu.py); without one they skip in one line (on CI: fail)."""

import json
import os

import pytest

from harness import qemu
from harness.browser import missing as browser_missing
from harness.emu import netns
from harness.paths import FIRMWARE
from harness.simboard import DEFAULT_HEAP, Lab, SimBoard, SimFleet, front
from harness.target import Target


# The board most tests share (the `board` fixture) serves some 600 tests in a row, and it runs the
# firmware from source: every module an app loads at its first use (WebSocket, event streams,
# files, the token...) is compiled then, somewhere in between, by MicroPython's compiler, whose
# parse tree and new qstr pools need room in pieces of a KB or more. After a few hundred tests
# the long-lived objects those tests left (caches, modules loaded earlier) cut a 256K heap's free
# 110 KB into pieces of at most 6 KB, and compiling websocket.py there failed ("allocating 1280
# bytes", a new qstr pool) depending on where a few bytes of other code fell: a board loads
# .mpy files or frozen code, and compiles nothing. Boards made for one test keep --sim-heap.
SHARED_HEAP = "384K"


def pytest_addoption(parser):
    g = parser.getgroup("nostall")
    g.addoption("--board", choices=("sim", "emu"), default=os.environ.get("TEST_BOARD") or "sim",
                help="sim: the firmware on the unix port, on loopback; emu: the same behind real lwIP")
    g.addoption("--board-ip", default=os.environ.get("BOARD_IP") or None, help="test a real board at this IP")
    g.addoption("--board-port", type=int, default=int(os.environ.get("BOARD_PORT") or 80))
    g.addoption("--sim-heap", default=os.environ.get("SIM_HEAP") or DEFAULT_HEAP, help="sim board heap size")
    g.addoption("--shared-sim-heap", default=os.environ.get("SIM_HEAP") or SHARED_HEAP,
                help="heap of the sim board most tests share (SHARED_HEAP, above)")
    g.addoption("--sim-firmware", default=os.environ.get("SIM_FIRMWARE") or FIRMWARE, help="firmware dir for the sim")
    g.addoption("--stall-threshold", type=float, default=2.0, help="soak: slowest acceptable request, s")
    g.addoption("--soak-count", type=int, default=1000)
    g.addoption("--soak-interval", type=float, default=0.15)
    g.addoption("--weather-count", type=int, default=1000, help="requests per soak through a lossy link (host_tests/weather)")
    g.addoption("--figures", default=None, help="write the figures the abuse tests record to this JSON file")


def pytest_configure(config):
    if config.getoption("--board") == "emu" and not config.getoption("--board-ip"):
        ok, why = netns.available()
        if not ok:
            raise pytest.UsageError("--board=emu: " + why)


@pytest.fixture(scope="session")
def emu_ns(request):
    """--board=emu: the client namespace every gateway's TAP joins (None otherwise)."""
    if request.config.getoption("--board") != "emu" or request.config.getoption("--board-ip"):
        yield None
        return
    name = netns.new_namespace("nsh", "c")
    try:
        yield name
    finally:
        netns.delete_namespace(name)


@pytest.fixture(scope="session")
def board(request, tmp_path_factory, emu_ns):
    cfg = request.config
    ip = cfg.getoption("--board-ip")
    if ip:
        yield Target(ip, cfg.getoption("--board-port"))
        return
    log = str(tmp_path_factory.mktemp("sim") / "sim.log")
    with SimBoard(heap=cfg.getoption("--shared-sim-heap"), firmware=cfg.getoption("--sim-firmware"), log=log,
                  lwip=emu_ns is not None) as sim:
        t = front(sim, emu_ns)
        try:
            yield t
        finally:
            if t.emu:
                t.emu.close()
        if sim.proc.poll() is not None:
            raise AssertionError("sim board died during the tests; log: %s" % log)


@pytest.fixture(autouse=True)
def _client_side(request, emu_ns):
    """--board=emu: tests that talk to a board do so from the client namespace, through lwIP."""
    if emu_ns is None or not {"board", "make_sim", "make_module_sim"} & set(request.fixturenames):
        yield
        return
    with netns.in_netns(str(netns.NETNS_DIR / emu_ns)):
        yield


def _fleet(config, tmp_path, emu_ns):
    if config.getoption("--board-ip"):
        pytest.skip("needs its own sim board with special settings")
    return SimFleet(tmp_path, config.getoption("--sim-heap"), config.getoption("--sim-firmware"), emu_ns)


@pytest.fixture
def make_sim(request, tmp_path, emu_ns):
    """Start a dedicated sim board for this test: make_sim(limits={...}, app_dir=None, www=None,
    heap=None, settings=None, env=None) -> Target (see harness.simboard.SimFleet)."""
    f = _fleet(request.config, tmp_path, emu_ns)
    yield f.start
    f.close()


@pytest.fixture(scope="module")
def make_module_sim(request, tmp_path_factory, emu_ns):
    """make_sim for boards shared by the tests of one module."""
    f = _fleet(request.config, tmp_path_factory.mktemp("sims"), emu_ns)
    yield f.start
    f.close()


@pytest.fixture
def need_browser():
    """For a test that starts chromium() (harness/browser.py) itself, with options of its own:
    without Chromium a one-line skip, except on CI (CI=true), where .ci/run installs it: a failure."""
    why = browser_missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail("browser tests cannot run on CI: " + why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def need_emulator():
    """The lwIP emulator can run here (root, /dev/net/tun, ip, gcc): else a one-line skip, except
    on CI (CI=true), where it is a failure."""
    ok, why = netns.available()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail("emulator unavailable on CI: " + why, pytrace=False)
        pytest.skip("emulator unavailable: " + why)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, request, need_emulator):
    """A client network namespace of the module's own and sim boards each behind an lwIP of its
    own (harness.simboard.Lab: lab.board(limits, weather=...) -> Target), whatever --board says:
    for tests about what lwIP holds (TIME_WAIT) and about the link (the gateway's weather)."""
    lab = Lab(tmp_path_factory.mktemp("lab"), request.module.__name__.rpartition(".")[2][-8:])
    yield lab
    lab.close()


@pytest.fixture
def make_lab(tmp_path, need_emulator):
    """Labs of this test's own: make_lab(tag) -> Lab, all closed after the test."""
    labs = []

    def make(tag):
        (tmp_path / tag).mkdir()
        labs.append(Lab(tmp_path / tag, tag))
        return labs[-1]

    yield make
    for lab in labs:
        lab.close()


@pytest.fixture(scope="module")
def need_qemu():
    """The QEMU board can run here (../shared/qemu-c3 or QEMU_C3_DIR, its libraries, root, a TAP):
    else a one-line skip, except on CI (CI=true), where .ci/run installs what it needs: a failure."""
    why = qemu.missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail("the QEMU board cannot run on CI: " + why, pytrace=False)
        pytest.skip("QEMU board: " + why)


@pytest.fixture(scope="module")
def make_qemu(tmp_path_factory, need_qemu):
    """QEMU boards for the module's tests: make_qemu(limits=None, files=None, **QemuBoard options)
    -> a started harness.qemu.QemuBoard, each in a namespace of its own, all closed after the module.
    files: what qemu.stage() gives (default: the current firmware with qemu.board_settings(limits))."""
    boards = []
    home = tmp_path_factory.mktemp("qemu")

    def make(limits=None, files=None, **kw):
        n = len(boards)
        if files is None:
            files = qemu.stage(settings=qemu.board_settings(limits=limits))
        qb = qemu.QemuBoard(ns="nsq-%d-%d" % (os.getpid(), n), files=files, log=str(home / ("console-%d.log" % n)), **kw)
        boards.append(qb)
        return qb.start()

    yield make
    for qb in boards:
        qb.close()


@pytest.fixture(scope="session")
def emu_firmware_port(request, tmp_path_factory):
    """The real firmware on a sim board of its own, as the upstream behind the lwIP emulator."""
    log = str(tmp_path_factory.mktemp("emu-sim") / "sim.log")
    with SimBoard(heap=request.config.getoption("--sim-heap"), firmware=request.config.getoption("--sim-firmware"), log=log) as sim:
        yield sim.port


# ---- figures: what the abuse tests held, survived and lost, for the README table ----
_FIGURES = []


@pytest.fixture
def figure(request):
    """figure(abuse, load, result, lost="nothing"): record one row of the README's abuse table.

    abuse: what was thrown at the server ("64 simultaneous connections"); load: how much and how
    long ("64 sockets, 3 s"); result: what a well-behaved client saw ("20/20 answered, max 12 ms");
    lost: what did not come back (requests, heap bytes, fds) - "nothing" when all did.
    Rows are written by `pytest --figures FILE` (`make figures`)."""

    def record(abuse, load, result, lost="nothing"):
        _FIGURES.append({"abuse": abuse, "load": str(load), "result": str(result), "lost": str(lost),
                         "test": request.node.nodeid})

    return record


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--figures", None)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"exitstatus": int(exitstatus), "rows": _FIGURES}, f, indent=1)
