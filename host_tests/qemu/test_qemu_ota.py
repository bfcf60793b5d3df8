"""Firmware updates over HTTP on the real port with the real bootloader (issue 19): the QEMU C3 boots
../shared/qemu-c3/firmware-ota.bin (MicroPython's OTA partition table, ESP-IDF's bootloader with
rollback) with the current firmware/ in its filesystem, and PUT /api/update/firmware sends it
micropython-ota-app.bin (the same build's app image, 1 MB). Every reset is real: the ROM and the
bootloader run again and the bootloader picks the slot. The cases: a good image (kept once the
new firmware serves), a corrupt one and another chip's (refused, nothing switched), a power cut
mid-write (QEMU killed, booted again on the same flash file), a firmware that fails its health
check (no request within health_window_ms: it resets itself and the bootloader goes back)."""

import re
import socket
import time

import pytest
import requests

from harness import appbundle
from harness import appimage_build as ab
from harness import qemu
from harness.target import update_info

TOKEN = "qemu-ota-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
WINDOW_MS = 8000


@pytest.fixture(scope="module")
def qb(make_qemu):
    files = qemu.stage(settings=qemu.board_settings(limits={"health_window_ms": WINDOW_MS}, api_token=TOKEN))
    return make_qemu(files=files, ota=True)


@pytest.fixture(scope="module")
def image():
    with open(qemu.ota_app_path(), "rb") as f:
        return f.read()


@pytest.fixture
def figures(request):
    capman = request.config.pluginmanager.get_plugin("capturemanager")

    def say(what, **kw):
        with capman.global_and_fixture_disabled():
            print("\nqemu ota: %s: %s" % (what, ", ".join("%s %s" % kv for kv in kw.items())), flush=True)

    return say


def _boots(qb):
    return len(re.findall(r"nostall \S+ on .*: serving", qb.console()))  # start.py's line once it serves


def _wait_boots(qb, n, timeout=60):
    deadline = time.monotonic() + timeout
    while _boots(qb) < n:
        assert time.monotonic() < deadline, "no boot %d: %s" % (n, qb.console_tail())
        time.sleep(0.2)


def _info(qb, until=None, timeout=60):
    return update_info(qb.target(), until, timeout, qb.console_tail())


def _idf_free(qb):
    # ESP-IDF's free heap (lwIP, the network driver): MicroPython takes ESP-IDF's largest free block
    # when its own heap has no room in one piece, and a board left with 18 KB drops frames for good
    with qb.target().client():
        return requests.get(qb.url + "/status", timeout=5).json()["idf_heap_free"]


IDF_FLOOR = 60000  # after start-up the QEMU C3 has 112 KB; one doubling of MicroPython's heap leaves 18 KB


def _put(qb, data):
    with qb.target().client():
        return requests.put(qb.url + "/api/update/firmware", data=data, headers=AUTH, timeout=120)


def test_a_good_image_is_written_booted_and_kept(qb, image, figures):
    before = _info(qb)
    assert (before["running"], before["next"], before["pending"]) == ("ota_0", "ota_1", None), before
    boots = _boots(qb)
    t0 = time.monotonic()
    r = _put(qb, image)
    took = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert r.json()["slot"] == "ota_1" and r.json()["size"] == len(image)
    _wait_boots(qb, boots + 1)
    after = _info(qb, until=lambda i: i["last"] and i["last"]["result"] != "pending")
    assert after["running"] == "ota_1" and after["last"]["result"] == "ok" and after["pending"] is None, after
    assert after["boot_count"] == before["boot_count"] + 1 and after["reset_cause"] == "hard"
    assert _idf_free(qb) > IDF_FLOOR
    figures("good image", bytes=len(image), upload_s="%.1f" % took, kbps="%.0f" % (len(image) / took / 1024),
            running=after["running"], result=after["last"]["result"])


def test_corrupt_and_foreign_images_are_refused_and_nothing_switches(qb, image, figures):
    boots = _boots(qb)
    r = _put(qb, ab.corrupt(image, len(image) // 2, 16))
    assert r.status_code == 400 and "image refused" in r.text, r.text
    foreign = ab.reseal(image, chip_id=ab.CHIP_ESP32)
    with qb.target().client():
        s = socket.create_connection((qb.addr, 80), timeout=10)
        s.sendall(b"PUT /api/update/firmware HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n"
                  b"Content-Length: %d\r\n\r\n" % (TOKEN.encode(), len(foreign)) + foreign[:8192])
        head = s.recv(4096)
        s.close()
    assert head.startswith(b"HTTP/1.1 400") and b"chip" in head, head
    info = _info(qb)
    assert (info["running"], info["boot"], info["pending"]) == ("ota_1", "ota_1", None), info
    assert info["last"]["result"] == "refused" and _boots(qb) == boots
    assert _idf_free(qb) > IDF_FLOOR  # two uploads written and refused: the heap did not grow into ESP-IDF's
    figures("refused", corrupt=r.text.strip()[:80], foreign=head.split(b"\r\n\r\n", 1)[-1][:60])


def test_a_power_cut_mid_write_boots_the_firmware_it_had(qb, image):
    with qb.target().client():
        s = socket.create_connection((qb.addr, 80), timeout=10)
        s.sendall(b"PUT /api/update/firmware HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n"
                  b"Content-Length: %d\r\n\r\n" % (TOKEN.encode(), len(image)))
        s.sendall(image[:300_000])
        time.sleep(0.5)
        qb.power_cut()
        s.close()
    qb.start(fresh=False)
    info = _info(qb)
    assert (info["running"], info["pending"]) == ("ota_1", None), info


def test_a_firmware_that_fails_its_health_check_goes_back(qb, image, figures):
    boots = _boots(qb)
    assert _put(qb, image).status_code == 200  # into ota_0 this time
    _wait_boots(qb, boots + 1)  # up on ota_0, on trial; nobody asks it anything
    t0 = time.monotonic()
    _wait_boots(qb, boots + 2, timeout=WINDOW_MS / 1000 + 60)  # it reset itself; the bootloader chose
    info = _info(qb)
    assert info["running"] == "ota_1" and info["pending"] is None, info
    assert info["last"]["result"] == "rolled_back" and "health check" in info["last"]["detail"], info
    figures("health check failed", back_after_s="%.1f" % (time.monotonic() - t0), detail=info["last"]["detail"])


def test_an_app_bundle_runs_from_the_next_boot_and_a_broken_one_gives_way(qb, figures):
    # the firmware's Python as .mpy for the C3, with another version; then one that cannot start
    files = appbundle.python_files()
    init = files["nostall/__init__.py"].replace(b'VERSION = "0.1.0"', b'VERSION = "0.1.1"')
    good = appbundle.build(march=qemu.MPY_ARCH, version="0.1.1", change={"nostall/__init__.py": init})
    boots = _boots(qb)
    t0 = time.monotonic()
    with qb.target().client():
        r = requests.put(qb.url + "/api/update/app", data=good, headers=AUTH, timeout=120)
    took = time.monotonic() - t0
    assert r.status_code == 200, r.text
    _wait_boots(qb, boots + 1)
    info = _info(qb, until=lambda i: i["last"] and i["last"]["result"] != "pending")
    assert info["version"] == "0.1.1" and info["app"]["active"] == "/apps/1" and info["last"]["result"] == "ok", info
    assert _idf_free(qb) > IDF_FLOOR
    figures("app bundle", bytes=len(good), files=r.json()["files"], upload_s="%.1f" % took, version=info["version"])
    broken = appbundle.build(march=qemu.MPY_ARCH, change={"nostall/server.py": b"import no_such_module\n"})
    with qb.target().client():
        assert requests.put(qb.url + "/api/update/app", data=broken, headers=AUTH, timeout=120).status_code == 200
    _wait_boots(qb, boots + 2)  # it failed to start: main.py went back and reset; this boot is the last copy's
    info = _info(qb, until=lambda i: i["last"] and i["last"]["result"] == "rolled_back")
    assert info["version"] == "0.1.1" and info["app"]["active"] == "/apps/1", info
    assert "failed to start" in info["last"]["detail"]
