"""Fixtures: the target board (the sim board by default, the sim behind real lwIP with --board=emu,
a real board with --board-ip/BOARD_IP), dedicated sim boards with their own settings, and a raw
HTTP/1.1 client for protocol tests.

--board=emu: every sim board (the session's and each make_sim one) gets an lwIP gateway of its own
(host_tests/emu: ESP32 lwIP options, 12 TCP pcbs, TCP_MSL from sdkconfig.overlay) whose TAP sits in
one client network namespace made for the session; each test that uses `board` or `make_sim` runs
with its thread in that namespace, so its sockets (and threads it starts) reach the firmware only
through lwIP. The sims and gateways stay on the home namespace's loopback. A dedicated sim, and so a
dedicated lwIP with fresh pcbs and no TIME_WAIT, is what a case that needs clean TCP state uses."""

import contextlib
import json
import os
import socket

import pytest
import requests

from emu import netns
from simboard import DEFAULT_HEAP, FIRMWARE, SimBoard
from soak import server_time_wait, wait_for  # noqa: F401 (tests import wait_for from here)


def pytest_addoption(parser):
    g = parser.getgroup("nostall")
    g.addoption("--board", choices=("sim", "emu"), default=os.environ.get("TEST_BOARD") or "sim",
                help="sim: the firmware on the unix port, on loopback; emu: the same behind real lwIP")
    g.addoption("--board-ip", default=os.environ.get("BOARD_IP") or None, help="test a real board at this IP")
    g.addoption("--board-port", type=int, default=int(os.environ.get("BOARD_PORT") or 80))
    g.addoption("--sim-heap", default=os.environ.get("SIM_HEAP") or DEFAULT_HEAP, help="sim board heap size")
    g.addoption("--sim-firmware", default=os.environ.get("SIM_FIRMWARE") or FIRMWARE, help="firmware dir for the sim")
    g.addoption("--stall-threshold", type=float, default=2.0, help="soak: slowest acceptable request, s")
    g.addoption("--soak-count", type=int, default=1000)
    g.addoption("--soak-interval", type=float, default=0.15)
    g.addoption("--figures", default=None, help="write the figures the abuse tests record to this JSON file")


def pytest_configure(config):
    if config.getoption("--board") == "emu" and not config.getoption("--board-ip"):
        ok, why = netns.available()
        if not ok:
            raise pytest.UsageError("--board=emu: " + why)


class Target:
    """Where the HTTP tests send requests. sim is the SimBoard (None for a real board); emu is the
    lwIP gateway in front of it (--board=emu), and then host:port is lwIP's address."""

    def __init__(self, host, port, sim=None, emu=None):
        self.host = host
        self.port = port
        self.sim = sim
        self.emu = emu
        self.url = "http://%s:%d" % (host, port)

    def time_wait(self):
        """Connections the board's TCP stack holds in TIME_WAIT (closes it made first), or None."""
        if self.emu:
            return self.emu.stats()["time_wait"]
        if self.sim:
            with netns.in_home_ns():
                return server_time_wait(self.sim.port)
        return None

    def client(self):
        """Context manager: the current thread's new sockets reach this target (with --board=emu,
        from the client namespace; tests that use board/make_sim already run there)."""
        return self.emu.client() if self.emu else contextlib.nullcontext()

    def status(self, gc=False):
        with self.client():
            r = requests.get(self.url + "/status" + ("?gc=1" if gc else ""), timeout=5)
        r.raise_for_status()
        return r.json()

    def connect(self, timeout=5.0):
        with self.client():
            return RawConn(self.host, self.port, timeout)

    def fd_count(self):
        return self.sim.fd_count() if self.sim else None


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


def _front(sim, emu_ns):
    """The Target for a started sim: the sim itself, or an lwIP gateway in front of it."""
    if emu_ns is None:
        return Target(sim.host, sim.port, sim)
    emu = netns.Emulator(sim.port, shared_ns=emu_ns)
    emu.start()
    return Target(emu.ip, emu.port, sim, emu)


@pytest.fixture(scope="session")
def board(request, tmp_path_factory, emu_ns):
    cfg = request.config
    ip = cfg.getoption("--board-ip")
    if ip:
        yield Target(ip, cfg.getoption("--board-port"))
        return
    log = str(tmp_path_factory.mktemp("sim") / "sim.log")
    with SimBoard(heap=cfg.getoption("--sim-heap"), firmware=cfg.getoption("--sim-firmware"), log=log) as sim:
        t = _front(sim, emu_ns)
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


class SimFactory:
    """Dedicated sim boards with settings of their own, each behind its own lwIP with --board=emu.
    start(limits={...}, app_dir=None, www=None, heap=None, settings={...}) -> Target; settings are
    extra keys of the settings file (e.g. api_token). close() stops them all."""

    def __init__(self, config, tmp_path, emu_ns):
        if config.getoption("--board-ip"):
            pytest.skip("needs its own sim board with special settings")
        self.config = config
        self.tmp_path = tmp_path
        self.emu_ns = emu_ns
        self.targets = []

    def start(self, limits=None, app_dir=None, www=None, heap=None, settings=None):
        n = len(self.targets)
        path = self.tmp_path / ("settings%d.json" % n)
        path.write_text(json.dumps(dict({"http_port": 8080, "limits": limits or {}}, **(settings or {}))))
        sim = SimBoard(
            heap=heap or self.config.getoption("--sim-heap"),
            firmware=self.config.getoption("--sim-firmware"),
            settings=str(path),
            extra_path=[app_dir] if app_dir else (),
            log=str(self.tmp_path / ("sim%d.log" % n)),
        )
        if www:
            sim.env["SIM_WWW"] = str(www)
        self.targets.append(Target(sim.host, sim.port, sim))  # so close() stops it if start fails
        sim.start()
        self.targets[-1] = t = _front(sim, self.emu_ns)
        return t

    def close(self):
        for t in self.targets:
            if t.emu:
                t.emu.close()
        for t in self.targets:
            t.sim.stop()


@pytest.fixture
def make_sim(request, tmp_path, emu_ns):
    """Start a dedicated sim board for this test: make_sim(limits={...}, app_dir=None, www=None,
    heap=None, settings=None) -> Target (see SimFactory)."""
    f = SimFactory(request.config, tmp_path, emu_ns)
    yield f.start
    f.close()


@pytest.fixture(scope="module")
def make_module_sim(request, tmp_path_factory, emu_ns):
    """make_sim for boards shared by the tests of one module."""
    f = SimFactory(request.config, tmp_path_factory.mktemp("sims"), emu_ns)
    yield f.start
    f.close()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:80])


class RawConn:
    """One TCP connection speaking raw bytes, reading responses one by one (pipelining-safe)."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head_only=False):
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        assert parts[0] == b"HTTP/1.1", status_line
        status = int(parts[1])
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers[name.decode().lower()] = value.strip().decode()
        if head_only or status in (100, 204, 304):
            return Response(status, headers, b"")
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    assert self._line() == b""
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            return Response(status, headers, body)
        if "content-length" in headers:
            return Response(status, headers, self._exact(int(headers["content-length"])))
        while True:  # delimited by EOF
            try:
                self._fill()
            except EOFError:
                body, self.buf = self.buf, b""
                return Response(status, headers, body)

    def request(self, method="GET", path="/", headers=None, body=b""):
        h = {"Host": "test"}
        if body:
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, path, "".join("%s: %s\r\n" % kv for kv in h.items()))
        self.send(head.encode() + body)
        return self.response(head_only=method == "HEAD")

    def closed_by_peer(self, wait):
        """True if the server closed (EOF) within wait seconds; False if it kept the socket open."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(5.0)
        return data == b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
