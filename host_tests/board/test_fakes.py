"""The sim's fakes of the ESP32 port's modules (host_tests/sim/: network, machine, esp32) on
their own: they answer as the port does (MicroPython v1.28.0 ports/esp32: status codes in order,
errors, a join that takes time, connect() again while connecting, a drop and the port's own
re-tries, AP mode), and their names and values are the stubs' `make typecheck` checks firmware/
against (when `make typecheck` has installed them into .venv/stubs/)."""

import json
import os
import re
import subprocess

import pytest

from harness import appimage_build, micropython, simrun
from harness.paths import FIRMWARE, ROOT, SIM_GLUE

STUBS = {"esp32c3": "ESP32_GENERIC_C3", "esp32": "ESP32_GENERIC"}

WLAN_SCRIPT = r"""
import json, time, network, machine, esp32
out = {}
w = network.WLAN(network.STA_IF)
out["one_object"] = w is network.WLAN(network.STA_IF)
try:
    w.connect("nostall-sim", "sim-password")
except OSError as e:
    out["not_started"] = str(e)
out["active"] = w.active(True)
out["idle"] = w.status()
w.connect("nostall-sim", "sim-password")
out["connecting"] = (w.status(), w.isconnected(), w.ifconfig()[0])
time.sleep_ms(150)
w.connect("nostall-sim", "sim-password")  # again while connecting: the join (300 ms) starts over
time.sleep_ms(150)
out["still_connecting"] = w.status()
time.sleep_ms(250)
out["got_ip"] = (w.status(), w.isconnected(), w.ifconfig()[0], w.status("rssi"))
w.disconnect()
out["disconnected"] = (w.status(), w.isconnected())
try:
    w.status("rssi")
except OSError as e:
    out["rssi_offline"] = str(e)
w.connect("another-ssid", "x")
time.sleep_ms(400)
out["no_ap"] = w.status()
w.connect("nostall-sim", "not-the-password")
time.sleep_ms(400)
out["wrong_password"] = (w.status(), w.isconnected())
w.connect("nostall-sim", "sim-password")
time.sleep_ms(400)
# the access point goes for 0.3 s: the link drops, the port's re-tries find it again
with open(HOME + "/radio.json", "w") as f:
    f.write(json.dumps({"ssid": "nostall-sim", "password": "sim-password", "scan_ms": 10, "join_ms": 300, "drop_after_s": 0.1,
                        "down_s": 0.3, "ip_after": "127.0.0.9", "t0_ns": time.time_ns()}))
time.sleep_ms(200)
out["dropped"] = (w.status(), w.isconnected())
time.sleep_ms(800)
out["back"] = (w.status(), w.isconnected(), w.ifconfig()[0])
w.config(pm=w.PM_NONE)
w.config(txpower=15)
out["config"] = (w.config("pm"), w.config("txpower"), w.config("mac") == machine.unique_id())
for bad in ("w.config('nosuch')", "w.config(ssid='x')", "w.status('nosuch')", "network.WLAN(5)",
            "w.config(pm=1, txpower=2) or w.config('pm', 'txpower')"):
    try:
        eval(bad)
    except (OSError, ValueError, TypeError) as e:
        out[bad] = "%s: %s" % (type(e).__name__, e)
network.hostname("board-1")
out["hostname"] = (network.hostname(), w.config("hostname"))
ap = network.WLAN(network.AP_IF)
ap.active(True)
ap.config(ssid="mine", key="12345678", security=ap.SEC_WPA2)
out["ap"] = (ap.config("ssid"), ap.config("security"), ap.isconnected(), ap.ifconfig()[0], ap.status())
out["scan"] = [(s[0].decode(), s[3], s[4]) for s in w.scan()]
out["ipconfig"] = (w.ipconfig("dhcp4"), w.ipconfig("addr4"), network.ipconfig("dns"))
w.ifconfig(("10.0.0.5", "255.255.255.0", "10.0.0.1", "10.0.0.1"))
out["static"] = (w.ifconfig()[0], w.ipconfig("dhcp4"))
out["machine"] = (machine.reset_cause(), len(machine.unique_id()), machine.freq())
p = machine.Pin(2, machine.Pin.OUT)
p.on()
out["pin"] = (p.value(), machine.Pin(2, machine.Pin.OUT).value(), machine.Pin(4, machine.Pin.IN).value())
for bad in ("machine.WDT(timeout=0)", "machine.Pin(99)", "machine.freq(100000000)"):
    try:
        eval(bad)
    except ValueError as e:
        out[bad] = str(e)
out["temperature"] = esp32.mcu_temperature()
print(json.dumps(out))
"""


def _run(code, tmp_path, chip="esp32c3", radio=None, env=None):
    home = str(tmp_path)
    settings = {"wifi": dict(simrun.SIM_WIFI)}
    simrun.write_radio(home, settings, radio or {})
    env = dict(micropython.env([SIM_GLUE]), **(env or {}))
    env.update(SIM_HOME=home, SIM_CHIP=chip)
    env.pop("SIM_EVENTS_FD", None)
    r = subprocess.run(micropython.argv(code="HOME = %r\n" % home + code), env=env, capture_output=True,
                                   text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_wlan_answers_as_the_port_does(tmp_path):
    o = _run(WLAN_SCRIPT, tmp_path, radio={"scan_ms": 10, "join_ms": 300})
    assert o["one_object"] and o["not_started"] == "Wifi Not Started" and o["active"] is True
    assert o["idle"] == 1000  # STAT_IDLE
    assert o["connecting"] == [1001, False, "0.0.0.0"]  # STAT_CONNECTING, no address yet
    assert o["still_connecting"] == 1001  # 300 ms since the first connect(), 150 since the second
    assert o["got_ip"] == [1010, True, "127.0.0.1", -60]  # STAT_GOT_IP
    assert o["disconnected"] == [1000, False] and o["rssi_offline"] == "Wifi Not Connected"
    assert o["no_ap"] == 201  # STAT_NO_AP_FOUND (while the port goes on re-trying)
    assert o["wrong_password"] == [202, False]  # STAT_WRONG_PASSWORD
    assert o["dropped"] == [1001, False]  # beacon timeout: the port re-tries, STAT_CONNECTING
    assert o["back"] == [1010, True, "127.0.0.9"]
    assert o["config"] == [0, 15.0, True]
    assert o["w.config('nosuch')"] == "ValueError: unknown config param"
    assert o["w.config(ssid='x')"] == "OSError: AP required"
    assert o["w.status('nosuch')"] == "ValueError: unknown status param"
    assert o["network.WLAN(5)"] == "ValueError: invalid WLAN interface identifier"
    assert o["w.config(pm=1, txpower=2) or w.config('pm', 'txpower')"] == "TypeError: can query only one param"
    assert o["hostname"] == ["board-1", "board-1"]
    assert o["ap"] == ["mine", 3, False, "192.168.4.1", None]
    assert o["scan"] == [["nostall-sim", -60, 3]]
    assert o["ipconfig"] == [True, ["127.0.0.9", "255.0.0.0"], "0.0.0.0"]
    assert o["static"] == ["10.0.0.5", False]
    assert o["machine"] == [1, 6, 160000000]  # PWRON_RESET
    assert o["pin"] == [1, 1, 0]
    assert o["machine.WDT(timeout=0)"] == "WDT timeout too short"
    assert o["machine.Pin(99)"] == "invalid pin"
    assert o["machine.freq(100000000)"].startswith("frequency must be")
    assert 28 <= o["temperature"] <= 32


DUMP = r"""
import json, network, machine, esp32
def consts(o):
    return {k: getattr(o, k) for k in dir(o) if k[0] != "_" and type(getattr(o, k)) in (int, bool)}
def calls(o):
    return sorted(k for k in dir(o) if k[0] != "_" and callable(getattr(o, k)) and type(getattr(o, k)) not in (int, bool))
print(json.dumps({"network": consts(network), "network.WLAN": consts(network.WLAN), "machine": consts(machine),
                  "machine.Pin": consts(machine.Pin), "esp32": consts(esp32),
                  "calls": {"network": calls(network), "network.WLAN": calls(network.WLAN),
                            "machine": calls(machine), "machine.Pin": calls(machine.Pin),
                            "machine.WDT": calls(machine.WDT), "esp32": calls(esp32)}}))
"""


def _stub_names(text, cls=None):
    """{name: value or None} of a stub module (cls: of that class): constants and defs."""
    if cls:
        m = re.search(r"^class %s\b.*?(?=^class |\Z)" % cls, text, re.S | re.M)
        text, indent = (m.group(0) if m else ""), "    "
    else:
        indent = ""
    got = {}
    for name, value in re.findall(r"^%s(\w+): Final\[\w+\] = (\w+)" % indent, text, re.M):
        got[name] = {"True": True, "False": False}.get(value, value)
    for name in re.findall(r"^%s(?:def|class) (\w+)" % indent, text, re.M):
        got.setdefault(name, None)
    return got


def _stubs(board):
    """The board's stubs folder, installed by `make stubs` (pip) when missing; without pip's
    registry a skip, except on CI (CI=true), where that is a failure."""
    stubs = os.path.join(ROOT, ".venv", "stubs", board)
    if not os.path.exists(os.path.join(stubs, ".stamp")):
        r = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "stubs", "BOARD=" + board],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            last = ([line for line in (r.stdout + r.stderr).splitlines() if line.strip()] or ["?"])[-1]
            if os.environ.get("CI") == "true":
                pytest.fail("make stubs BOARD=%s failed: %s" % (board, last))
            pytest.skip("no %s stubs (make stubs): %s" % (board, last))
    return stubs


# names the port has after the stubs' release (v1.28): the QEMU image's MicroPython 1.29
NEWER_THAN_STUBS = {"network": ("PHY_OPENETH",)}


@pytest.mark.parametrize("chip", sorted(STUBS))
def test_names_and_values_are_the_stubs(tmp_path, chip):
    stubs = _stubs(STUBS[chip])
    fake = _run(DUMP, tmp_path, chip)

    def stub(mod, cls=None):
        with open(os.path.join(stubs, mod + ".pyi")) as f:
            return _stub_names(f.read(), cls)

    for key in ("network", "network.WLAN", "machine", "machine.Pin", "esp32"):
        mod, _, cls = key.partition(".")
        s = stub(mod, cls or None)
        for name, value in fake[key].items():
            if name in NEWER_THAN_STUBS.get(key, ()):
                continue
            assert name in s, "%s.%s is not in the %s stubs" % (key, name, STUBS[chip])
            assert s[name] is None or str(s[name]) == str(value), (key, name, value, s[name])
        for name in fake["calls"].get(key, ()):
            assert name in s, "%s.%s() is not in the %s stubs" % (key, name, STUBS[chip])
    assert ("mcu_temperature" in fake["calls"]["esp32"]) == (chip == "esp32c3")


# esp32.Partition over files (sim/_simflash.py): what the QEMU C3 with firmware-ota.bin answered
# (../shared/qemu-c3/README.md "OTA variant", and a run of 2026-12-05 for the errors and otadata)

PARTS = r"""
import json, esp32
P = esp32.Partition
out = {}
def t(key, f):
    try:
        out[key] = f()
    except Exception as e:
        out[key] = [type(e).__name__, list(e.args)]
def otadata():
    b = bytearray(32)
    P("otadata").readblocks(0, b)
    c = bytearray(32)
    P("otadata").readblocks(1, c)
    return [bytes(b).hex(), bytes(c).hex()]
t("running", lambda: P(P.RUNNING).info())
t("boot", lambda: P(P.BOOT).info())
t("next", lambda: P(P.RUNNING).get_next_update().info())
t("apps", lambda: [p.info() for p in P.find()])
t("data", lambda: [p.info() for p in P.find(P.TYPE_DATA)])
t("ota_1", lambda: P.find(P.TYPE_APP, label="ota_1")[0].info())
t("by_label", lambda: P("otadata").info())
t("bad_id", lambda: P(5))
t("no_label", lambda: P("nosuch"))
t("repr", lambda: repr(P(P.RUNNING)))
t("ioctl", lambda: [P(P.RUNNING).ioctl(c, 0) for c in (1, 4, 5, 99)])
t("consts", lambda: (P.TYPE_APP, P.TYPE_DATA, P.BOOT, P.RUNNING))
t("otadata_at_boot", otadata)
t("mark", lambda: P.mark_app_valid_cancel_rollback())
t("set_boot_empty", lambda: P(P.RUNNING).get_next_update().set_boot())
try:
    n = P(P.RUNNING).get_next_update()
except OSError:  # the default layout: no OTA slot
    n = P(P.RUNNING)
t("read_past", lambda: n.readblocks(384, bytearray(4096)))
t("read_past_offset", lambda: n.readblocks(383, bytearray(4096), 4096))
t("write_past", lambda: n.writeblocks(384, bytearray(4096)))
t("erase_past", lambda: n.ioctl(6, 384))
t("write_short", lambda: n.writeblocks(0, bytearray(100)))
t("set_boot_running", lambda: P(P.RUNNING).set_boot())
t("otadata_after", otadata)
t("boot_after", lambda: P(P.BOOT).info())
print(json.dumps(out))
"""


def test_partitions_answer_as_the_qemu_c3_ota_board_does(tmp_path):
    o = _run(PARTS, tmp_path, env={"SIM_OTA": "1"})
    ota_0, ota_1 = [0, 16, 65536, 1572864, "ota_0", False], [0, 17, 1638400, 1572864, "ota_1", False]
    assert o["running"] == o["boot"] == ota_0 and o["next"] == ota_1 == o["ota_1"]
    assert o["apps"] == [ota_0, ota_1]
    assert o["data"] == [[1, 2, 36864, 16384, "nvs", False], [1, 0, 53248, 8192, "otadata", False],
                         [1, 1, 61440, 4096, "phy_init", False], [1, 129, 3211264, 983040, "vfs", False]]
    assert o["by_label"] == [1, 0, 53248, 8192, "otadata", False]
    assert o["bad_id"] == ["ValueError", []] and o["no_label"] == ["OSError", [2]]
    assert o["repr"] == "<Partition type=0, subtype=16, address=65536, size=1572864, label=ota_0, encrypted=0>"
    assert o["ioctl"] == [0, 384, 4096, None] and o["consts"] == [0, 1, 0, 1]
    # the bootloader, otadata erased and no factory app: entry 0 = seq 1, VALID (the bytes the QEMU board had)
    valid1 = "01000000" + "ff" * 20 + "02000000" + "9a984347"
    assert o["otadata_at_boot"] == [valid1, "ff" * 32]
    assert o["mark"] is None
    assert o["set_boot_empty"] == ["OSError", [-5379, "ESP_ERR_OTA_VALIDATE_FAILED"]]
    size_err = ["OSError", [-260, "ESP_ERR_INVALID_SIZE"]]
    assert o["read_past"] == o["read_past_offset"] == o["write_past"] == o["erase_past"] == size_err
    assert o["write_short"] == size_err  # the simple form erases len(buf): whole 4 KB blocks only
    # set_boot() on the running slot: a NEW entry with the same seq in sector 1 (as on the QEMU board)
    assert o["set_boot_running"] is None
    assert o["otadata_after"] == [valid1, "01000000" + "ff" * 20 + "00000000" + "9a984347"]
    assert o["boot_after"] == ota_0


def test_partitions_of_the_default_layout_have_no_ota(tmp_path):
    o = _run(PARTS, tmp_path)
    assert o["running"] == [0, 0, 65536, 2031616, "factory", False] and o["apps"] == [o["running"]]
    assert o["boot"] == o["next"] == ["OSError", [2]]  # no otadata, no OTA slot: ENOENT
    assert o["data"] == [[1, 2, 36864, 24576, "nvs", False], [1, 1, 61440, 4096, "phy_init", False],
                         [1, 129, 2097152, 2097152, "vfs", False]]
    assert o["mark"] == o["set_boot_running"] == ["OSError", [-261, "ESP_ERR_NOT_FOUND"]]


STEP = r"""
import json, esp32, machine
P = esp32.Partition
def write(part, path):  # in 4 KB blocks, the last one padded with 0xff, as the QEMU check did
    with open(path, "rb") as f:
        n = 0
        while True:
            b = f.read(4096)
            if not b:
                return
            part.writeblocks(n, b + b"\xff" * (4096 - len(b)))
            n += 1
def version(part):
    b = bytearray(256)
    part.readblocks(0, b, 32)
    return bytes(b[16:48]).rstrip(b"\x00").decode()
out = {"running": P(P.RUNNING).info()[4], "version": version(P(P.RUNNING))}
def t(key, f):
    try:
        out[key] = f()
    except OSError as e:
        out[key] = list(e.args)
""" + "%s\nout['boot'] = P(P.BOOT).info()[4]\nprint(json.dumps(out))\n"


def test_update_rollback_and_refusals_over_boots(tmp_path):
    # each run is one boot of the board (the bootloader runs at each); the flash is the files in its home
    good = tmp_path / "good.bin"
    good.write_bytes(appimage_build.build(version="2.0", size=30000))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(appimage_build.corrupt(good.read_bytes()))
    wrong = tmp_path / "esp32.bin"
    wrong.write_bytes(appimage_build.reseal(good.read_bytes(), chip_id=appimage_build.CHIP_ESP32))
    home = tmp_path / "home"
    home.mkdir()

    def boot(code=""):
        return _run(STEP % code, home, env={"SIM_OTA": "1"})

    o = boot("n = P(P.RUNNING).get_next_update(); write(n, %r); t('set', n.set_boot)" % str(good))
    assert (o["running"], o["version"], o["set"], o["boot"]) == ("ota_0", "sim", None, "ota_1")
    o = boot()  # the new image, pending verification
    assert (o["running"], o["version"], o["boot"]) == ("ota_1", "2.0", "ota_1")
    o = boot("t('set', P('ota_1').set_boot)")  # reset without marking it valid: back to the old one
    assert (o["running"], o["boot"]) == ("ota_0", "ota_1")  # ... where set_boot() names ota_1 again
    o = boot("t('mark', P.mark_app_valid_cancel_rollback)")
    assert (o["running"], o["mark"]) == ("ota_1", None)
    for _ in range(2):  # marked valid: it stays
        o = boot()
        assert (o["running"], o["boot"]) == ("ota_1", "ota_1")
    # a corrupt image and another chip's: set_boot() refuses, nothing switches
    o = boot("n = P(P.RUNNING).get_next_update(); write(n, %r); t('bad', n.set_boot);"
             "write(n, %r); t('wrong', n.set_boot)" % (str(bad), str(wrong)))
    assert o["bad"] == o["wrong"] == [-5379, "ESP_ERR_OTA_VALIDATE_FAILED"]
    assert (o["running"], o["boot"]) == ("ota_1", "ota_1")
    assert boot()["running"] == "ota_1"
    # a good image accepted, then corrupted in place behind set_boot()'s back (a write can clear
    # bits without an erase): the bootloader finds it not bootable and runs the other slot
    o = boot("n = P(P.RUNNING).get_next_update(); write(n, %r); t('set', n.set_boot);"
             "n.writeblocks(3, bytes(16), 100)" % str(good))
    assert (o["set"], o["boot"]) == (None, "ota_0")
    o = boot()
    assert (o["running"], o["boot"]) == ("ota_1", "ota_0")  # BOOT still names ota_0: test RUNNING
    flash = home / "partitions"
    assert (flash / "ota_0.bin").read_bytes()[: 3 * 4096] == good.read_bytes()[: 3 * 4096]


RESETS = r"""
import json, esp32, machine
P = esp32.Partition
path = HOME + "/boots.json"
try:
    with open(path) as f:
        boots = json.loads(f.read())
except OSError:
    boots = []
boots.append([P(P.RUNNING).info()[4], P(P.BOOT).info()[4], machine.reset_cause()])
with open(path, "w") as f:
    f.write(json.dumps(boots))
n = len(boots)
if n == 1:
    nxt = P(P.RUNNING).get_next_update()
    with open(IMAGE, "rb") as f:
        img = f.read()
    for i in range(0, len(img), 4096):
        b = img[i : i + 4096]
        nxt.writeblocks(i // 4096, b + b"\xff" * (4096 - len(b)))
    nxt.set_boot()
elif n == 3:
    P(P.RUNNING).get_next_update().set_boot()
elif n == 4:
    P.mark_app_valid_cancel_rollback()
if n < 6:
    machine.reset()
"""


def test_rollback_across_real_sim_restarts(tmp_path):
    # the runner (harness/simrun.py) starts the board again after each machine.reset()
    image = tmp_path / "new.bin"
    image.write_bytes(appimage_build.build(version="2.0", size=50000))
    env = dict(micropython.env([SIM_GLUE]), SIM_HOME=str(tmp_path), SIM_OTA="1")
    code = "HOME = %r\nIMAGE = %r\n" % (str(tmp_path), str(image)) + RESETS
    runner = simrun.Runner(micropython.argv(code=code), env, str(tmp_path), log=str(tmp_path / "sim.log"))
    runner.start()
    try:
        assert runner.ended.wait(60), "the board did not come to its end"
    finally:
        runner.stop()
    boots = json.loads((tmp_path / "boots.json").read_text())
    assert boots == [
        ["ota_0", "ota_0", simrun.PWRON_RESET],  # the board as flashed; writes ota_1, set_boot()
        ["ota_1", "ota_1", simrun.HARD_RESET],  # the new image, pending verification; not marked
        ["ota_0", "ota_0", simrun.HARD_RESET],  # rolled back; set_boot() ota_1 again
        ["ota_1", "ota_1", simrun.HARD_RESET],  # marked valid this time
        ["ota_1", "ota_1", simrun.HARD_RESET],
        ["ota_1", "ota_1", simrun.HARD_RESET],
    ], boots
    assert [c for _, c in runner.restarts] == [simrun.HARD_RESET] * 5


HEAP_SCRIPT = """
import json
import board
from nostall.config import Config
from nostall.server import Server
from nostall.web import App

free = board.Board.system_free(None)  # uses nothing of the board but esp32.idf_heap_info
s = Server(App(), Config(gc_every_bytes=8192, heap_grown_bytes=4096))
s.keep_heap(lambda: board.Board.system_free(None))
s.heap.tick()
print(json.dumps({"free": free, "high": s.heap.high, "grown": s.heap.grown, "every": s.heap.every,
                  "margin": s.heap.margin}))
"""


def test_the_heap_keeper_reads_esp_idf_s_free_heap_through_the_board(tmp_path):
    # on a board start.py calls keep_heap(hw.system_free) (board.HEAP_GROWS); the sim's heap does
    # not grow, so here the same calls are made by hand, on the fake's one data region
    o = _run(HEAP_SCRIPT, tmp_path, env={"MICROPYPATH": micropython.env([SIM_GLUE, FIRMWARE])["MICROPYPATH"]})
    assert o == {"free": 120000, "high": 120000, "grown": False, "every": 8192, "margin": 4096}
