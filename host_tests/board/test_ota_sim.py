"""Firmware updates over HTTP on the sim board with the OTA layout (SIM_OTA=1: esp32.Partition and
the bootloader's rollback faked over files, host_tests/sim/_simflash.py, matched against the real
bootloader in QEMU): a good image, a corrupt one, another chip's, a power cut mid-write, a
firmware that fails its health check, a board without OTA slots. The images are small valid app
images made on the host (harness/appimage_build.py); the board resets for real (the sim process
ends and the runner starts it again on the same flash)."""

import socket
import time

import pytest
import requests

from harness import appimage_build as ab
from harness.target import RawConn, update_info

TOKEN = "ota-token-0123456789ab"
AUTH = {"Authorization": "Bearer " + TOKEN}
WINDOW_MS = 3000


@pytest.fixture
def ota(make_sim):
    def start(**kw):
        env = {"SIM_OTA": "1"}
        env.update(kw.pop("env", {}))
        # the fake flash and bootloader (_simflash.py, C on a board) take some 30 KB of the sim's heap
        return make_sim(settings={"api_token": TOKEN}, limits={"health_window_ms": WINDOW_MS}, env=env,
                        heap="320K", **kw)

    return start


def _info(t, timeout=15.0, until=None):
    return update_info(t, until, timeout, "(log: %s)" % t.sim.log)


def _put(t, image, headers=None):
    h = dict(AUTH)
    h.update(headers or {})
    return requests.put(t.url + "/api/update/firmware", data=image, headers=h, timeout=20)


def _restarted(t, n, timeout=15.0):
    deadline = time.monotonic() + timeout
    while len(t.sim.restarts) < n:
        assert time.monotonic() < deadline, "no reset: %r" % t.sim.restarts
        time.sleep(0.05)


def test_a_good_image_boots_on_trial_and_is_kept_once_it_serves(ota):
    t = ota()
    before = _info(t)
    assert (before["running"], before["next"], before["pending"]) == ("ota_0", "ota_1", None)
    image = ab.build(ab.CHIP_C3, "2.0.0", size=200_000)
    r = _put(t, image)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == "ok" and body["slot"] == "ota_1" and body["image_version"] == "2.0.0"
    _restarted(t, 1)
    on_trial = _info(t)  # served: the trial ends with this request
    assert on_trial["running"] == "ota_1" and on_trial["boot_count"] == before["boot_count"] + 1
    after = _info(t, until=lambda i: i["last"]["result"] != "pending")
    assert after["last"]["result"] == "ok" and after["pending"] is None, after
    status = t.status()
    assert status["running_slot"] == "ota_1" and status["last_update"]["result"] == "ok"
    metrics = requests.get(t.url + "/metrics", timeout=5).text
    assert 'nostall_build_info{version="' in metrics and 'slot="ota_1"} 1' in metrics
    assert 'nostall_last_update{kind="firmware",result="ok"} 1' in metrics
    # a power cycle: the bootloader keeps it
    t.sim.stop()
    t.sim.start()
    assert _info(t)["running"] == "ota_1"


def test_corrupt_and_foreign_images_are_refused_and_nothing_switches(ota):
    t = ota()
    image = ab.build(ab.CHIP_C3, "2.0.0", size=100_000)
    corrupt = ab.corrupt(image, len(image) // 2, 16)
    r = _put(t, corrupt)
    assert r.status_code == 400 and "image refused" in r.text, r.text
    # another chip's: refused at its header, before the rest is sent
    foreign = ab.reseal(image, chip_id=ab.CHIP_ESP32)
    with RawConn(t.host, t.port) as c:
        c.send(b"PUT /api/update/firmware HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
               % (TOKEN.encode(), len(foreign)) + foreign[:4096])
        r2 = c.response()
    assert r2.status == 400 and b"chip" in r2.body, r2
    # the client's SHA-256 that does not match
    r3 = _put(t, image, {"X-SHA256": "00" * 32})
    assert r3.status_code == 400 and "sha256" in r3.text.lower()
    info = _info(t)
    assert (info["running"], info["boot"], info["pending"]) == ("ota_0", "ota_0", None)
    assert info["last"]["result"] == "refused"
    assert t.sim.restarts == []


def test_a_power_cut_mid_write_boots_the_old_firmware(ota):
    t = ota()
    image = ab.build(ab.CHIP_C3, "2.0.0", size=400_000)
    s = socket.create_connection((t.host, t.port), timeout=5)
    s.sendall(b"PUT /api/update/firmware HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
              % (TOKEN.encode(), len(image)) + image[:150_000])
    time.sleep(0.3)
    t.sim.proc.kill()  # the power goes
    t.sim.proc.wait(5)
    s.close()
    t.sim.stop()
    t.sim.start()
    info = _info(t)
    assert (info["running"], info["pending"]) == ("ota_0", None)


def test_a_firmware_that_fails_its_health_check_is_rolled_back(ota):
    t = ota()
    assert _put(t, ab.build(ab.CHIP_C3, "2.0.0", size=50_000)).status_code == 200
    _restarted(t, 1)
    # it comes up, but nothing asks it anything within health_window_ms: it resets itself and
    # the bootloader goes back to ota_0
    _restarted(t, 2, timeout=WINDOW_MS / 1000 + 10)
    info = _info(t)
    assert info["running"] == "ota_0" and info["pending"] is None
    assert info["last"]["result"] == "rolled_back" and "health check" in info["last"]["detail"], info


def test_a_board_without_ota_slots_says_so(make_sim):
    t = make_sim(settings={"api_token": TOKEN})
    info = _info(t)
    assert info["next"] is None and info["running"] == "factory"
    r = _put(t, ab.build(ab.CHIP_C3, "2.0.0", size=10_000))
    assert r.status_code == 409 and "OTA" in r.text
