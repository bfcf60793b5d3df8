"""App updates over HTTP on the sim board (issue 19): the firmware's Python as a bundle
(harness/appbundle.py), written beside the running copy and switched to at the next boot by
main.py, on trial until it serves a request; a copy that cannot start, or that fails its health
check, gives way to the last one by the next boot. Works without OTA partitions (stock
MicroPython): the sim here has the default layout."""

import hashlib
import time

import pytest
import requests

from harness import appbundle, heapmods, micropython
from harness.paths import FIRMWARE
from harness.simboard import DEFAULT_HEAP, SimFleet
from harness.target import RawConn, update_info

TOKEN = "app-token-0123456789ab"
AUTH = {"Authorization": "Bearer " + TOKEN}
WINDOW_MS = 3000


@pytest.fixture(scope="module")
def firmware_mpy(tmp_path_factory):
    # the firmware as a stock board runs it, .mpy (the sim's from-source start-up leaves its heap in
    # pieces of a few KB: a bundle's manifest would not find room; a board's port grows its heap)
    return heapmods.compile_tree(FIRMWARE, str(tmp_path_factory.mktemp("fw") / "fw"),
                                 heapmods.mpy_cross_for(micropython.binary()))


@pytest.fixture
def sim(request, tmp_path, firmware_mpy):
    if request.config.getoption("--board-ip"):
        pytest.skip("needs its own sim board")
    fleet = SimFleet(tmp_path, DEFAULT_HEAP, firmware_mpy)
    try:
        yield fleet.start(settings={"api_token": TOKEN}, limits={"health_window_ms": WINDOW_MS})
    finally:
        fleet.close()


def _bundle(version=None, change=None):
    return appbundle.build(march="host", version=version, change=change)  # .mpy, as the board runs


def _info(t, until=None, timeout=20.0):
    return update_info(t, until, timeout, "(log: %s)" % t.sim.log)


def _restarted(t, n, timeout=20.0):
    deadline = time.monotonic() + timeout
    while len(t.sim.restarts) < n:
        assert time.monotonic() < deadline, "no reset: %r" % t.sim.restarts
        time.sleep(0.05)


def _put(t, bundle):
    return requests.put(t.url + "/api/update/app", data=bundle, headers=AUTH, timeout=30)


def _with_version(v):
    src = appbundle.python_files()
    return {"nostall/__init__.py": src["nostall/__init__.py"].replace(b'VERSION = "0.1.0"', b'VERSION = "%s"' % v.encode())}


def test_a_bundle_is_switched_to_on_trial_and_kept_once_it_serves(sim):
    bundle = _bundle("9.9.9", _with_version("9.9.9"))
    r = _put(sim, bundle)
    assert r.status_code == 200, r.text
    assert r.json()["dir"] == "/apps/1" and r.json()["version"] == "9.9.9"
    _restarted(sim, 1)
    info = _info(sim, until=lambda i: i["last"]["result"] != "pending")
    assert info["version"] == "9.9.9" and info["app"]["active"] == "/apps/1", info  # the new copy runs
    assert info["last"] == {"kind": "app", "result": "ok", "slot": "/apps/1", "detail": "served a request: kept"}
    assert sim.status()["firmware_version"] == "9.9.9"
    # a second one: the first becomes the one to go back to
    assert _put(sim, _bundle("9.9.10", _with_version("9.9.10"))).status_code == 200
    _restarted(sim, 2)
    info = _info(sim, until=lambda i: i["last"]["result"] == "ok" and i["version"] == "9.9.10")
    assert info["app"]["previous"] == "/apps/1" and info["app"]["active"] == "/apps/2"


def test_a_copy_that_cannot_start_gives_way_at_once(sim):
    broken = _bundle(change={"nostall/server.py": b"import this_module_does_not_exist\n"})
    assert _put(sim, broken).status_code == 200
    _restarted(sim, 2)  # the reset into it, then main.py's after it failed to start
    info = _info(sim)
    assert info["app"]["active"] is None and info["version"] == "0.1.0"  # the flash's own again
    assert info["last"]["result"] == "rolled_back" and "failed to start" in info["last"]["detail"], info


def test_a_copy_that_fails_its_health_check_gives_way(sim):
    assert _put(sim, _bundle()).status_code == 200
    _restarted(sim, 1)
    _restarted(sim, 2, timeout=WINDOW_MS / 1000 + 15)  # no request within the window: it reset itself
    info = _info(sim)
    assert info["app"]["active"] is None and info["last"]["result"] == "rolled_back", info
    assert "health check" in info["last"]["detail"]


def _sums(files):
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


@pytest.mark.parametrize("what", ["bad-sha", "missing-file", "no-manifest", "traversal", "cut"])
def test_a_bad_bundle_is_refused_and_nothing_switches(sim, what):
    files = appbundle.python_files()
    if what == "bad-sha":
        bundle = appbundle.pack(files, "1", dict(_sums(files), **{"start.py": "00" * 32}))
    elif what == "missing-file":
        bundle = appbundle.pack(files, "1", dict(_sums(files), **{"extra.py": "00" * 32}))
    elif what == "no-manifest":
        bundle = appbundle.pack(files, "1")[512 * 2 :]  # the manifest's header and data cut off
    elif what == "traversal":
        fl = {"start.py": files["start.py"], "../escape.py": b"x = 1\n"}
        bundle = appbundle.pack(fl, "1", _sums(fl))
    else:
        bundle = _bundle()
    if what == "cut":
        with RawConn(sim.host, sim.port) as c:
            c.send(b"PUT /api/update/app HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                   % (TOKEN.encode(), len(bundle)) + bundle[: len(bundle) // 2])
            time.sleep(0.3)
        info = _info(sim, until=lambda i: i["last"] and i["last"]["result"] == "interrupted")
    else:
        r = _put(sim, bundle)
        assert r.status_code == 400, r.text
        info = _info(sim)
        assert info["last"]["result"] == "refused"
    assert info["app"]["active"] is None and sim.sim.restarts == []
