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

from harness import micropython, simrun
from harness.paths import ROOT, SIM_GLUE

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


def _run(code, tmp_path, chip="esp32c3", radio=None):
    home = str(tmp_path)
    settings = {"wifi": dict(simrun.SIM_WIFI)}
    simrun.write_radio(home, settings, radio or {})
    env = micropython.env([SIM_GLUE])
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
