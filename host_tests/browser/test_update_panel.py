"""The dashboard's firmware update panel in a real browser (headless Chromium) against a sim board
with the OTA layout (SIM_OTA=1: esp32.Partition and the bootloader faked over files): a real file
picked in the file input (an app image made by harness/appimage_build.py) is described, sent with
PUT /api/update/firmware with the progress shown to 100 %, and the panel follows the board through
its real reset (the sim process ends and starts again) until it answers on the new slot. Refusals
are shown as the board words them: the API token asked for on a 401 (then the upload goes on),
another chip's image and a file that is no app image refused with 400, an image larger than the
slot with 413. A board without OTA slots gets no upload form."""

import time

import pytest
import requests

from harness import appimage_build as ab
from harness.browser import Dashboard, console

TOKEN = "upd-Token_0123456789~+/="
VERSION = "9.8.7"
UPLOAD_BPS = 400 * 1024

# the panel as a test reads it; window.seen: each progress line shown (recorded by observe())
PANEL = ("const $ = id => document.getElementById(id);"
         "return {open: $('upd').open, state: $('upd').dataset.state || '', now: $('upnow').textContent,"
         " form: !$('upform').hidden, what: $('upwhat').textContent, progress: $('upprog').textContent,"
         " bar: $('upbar').style.width, msg: $('upmsg').textContent, token_form: !$('tokf').hidden,"
         " token_message: $('tokmsg').textContent, seen: window.seen || []}")
OBSERVE = ("window.seen = [];"
           "new MutationObserver(() => window.seen.push(document.getElementById('upprog').textContent))"
           ".observe(document.getElementById('upprog'), {childList: true, characterData: true, subtree: true})")


@pytest.fixture
def ota_sim(make_sim):
    def start(ota=True):
        # the fake flash and bootloader take some 30 KB of the sim's heap (host_tests/sim/_simflash.py);
        # with a dashboard's WebSocket open, compiling nostall/update.py from source (the first
        # GET /api/update) failed with MemoryError at 320K and 400K (a board has it frozen)
        return make_sim(settings={"api_token": TOKEN}, env={"SIM_OTA": "1" if ota else "0"}, heap="512K")

    return start


def panel(browser):
    return browser.execute_script(PANEL)


def wait_panel(browser, pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        s = panel(browser)
        if pred(s):
            return s
        if time.monotonic() > deadline:
            raise AssertionError("update panel: %s not seen within %.0f s; last %r; console %r"
                                 % (what, timeout, s, console(browser)[-10:]))
        time.sleep(0.05)


def open_panel(browser, t):
    with t.client():
        browser.get(t.url + "/")
    Dashboard(browser).wait_live("ws")
    browser.find_element("css selector", "#upd summary").click()  # GET /api/update only now
    return wait_panel(browser, lambda s: s["state"] in ("ready", "none"), 10, "the panel's first answer")


def pick(browser, tmp_path, name, image):
    path = tmp_path / name
    path.write_bytes(image)
    browser.find_element("id", "upfile").send_keys(str(path))
    return wait_panel(browser, lambda s: s["what"], 5, "the file described")


def info(t):
    r = requests.get(t.url + "/api/update", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_image_is_sent_and_the_board_comes_back_on_the_other_slot(ota_sim, browser, tmp_path):
    t = ota_sim()
    s = open_panel(browser, t)
    before = info(t)
    assert s["state"] == "ready" and s["form"] and s["now"].startswith("Running ota_0, version " + before["version"]), s
    image = ab.build(ab.CHIP_C3, VERSION, size=600 * 1024)
    s = pick(browser, tmp_path, "micropython.bin", image)
    assert s["what"] == "600.0 KB: ESP-IDF app image for ESP32-C3, nostall " + VERSION, s
    browser.execute_script("localStorage.setItem('nostall-token', arguments[0])", TOKEN)  # as the LED's form keeps it
    browser.execute_script(OBSERVE)
    # over loopback the whole image would sit in the socket buffers at once (one progress event):
    # Chromium's own throttling sends it in about 1.5 s instead, a slow link's upload
    browser.set_network_conditions(latency=0, download_throughput=0, upload_throughput=UPLOAD_BPS)
    t0 = time.monotonic()
    browser.find_element("id", "upgo").click()
    s = wait_panel(browser, lambda s: s["state"] in ("resetting", "failed"), 20, "the board's answer")
    sent_s = time.monotonic() - t0
    assert s["state"] == "resetting" and s["msg"].startswith("Written to ota_1 (%s, 600.0 KB" % VERSION), s
    assert s["progress"] == "100 % · 600.0 KB of 600.0 KB" and s["bar"] == "100%", s
    pct = [int(p.split(" %")[0]) for p in s["seen"]]
    assert pct == sorted(pct) and pct[-1] == 100, s["seen"]  # the upload's progress events, in order
    assert sum(0 < p < 100 for p in pct) >= 3, s["seen"]
    # the board resets (the sim process ends, the runner starts it again on the same flash) and
    # the panel waits for it, then for the end of its trial (the panel's own requests keep it)
    s = wait_panel(browser, lambda s: s["state"] in ("back", "failed"), 30, "the board back")
    back_s = time.monotonic() - t0
    assert s["state"] == "back", s
    assert s["msg"] == "Back: running ota_1, version %s; last update: ok" % before["version"], s
    assert s["now"].startswith("Running ota_1, version "), s
    assert len(t.sim.restarts) == 1, t.sim.restarts
    after = info(t)
    assert after["running"] == "ota_1" and after["last"]["result"] == "ok" and after["pending"] is None, after
    assert t.status()["running_slot"] == "ota_1"
    Dashboard(browser).wait_live("ws")  # and the live figures are back by themselves
    print("600 KB image: answered after %.1f s, progress lines %d, board back in the panel after %.1f s"
          % (sent_s, len(pct), back_s))


def test_refusals_are_shown_as_the_board_words_them(ota_sim, browser, tmp_path):
    t = ota_sim()
    open_panel(browser, t)
    # the original ESP32's image for this C3: described as such, refused by the header check
    s = pick(browser, tmp_path, "esp32.bin", ab.build(ab.CHIP_ESP32, VERSION, size=64 * 1024))
    assert s["what"] == "64.0 KB: ESP-IDF app image for ESP32, nostall " + VERSION, s
    browser.find_element("id", "upgo").click()
    # no token stored: the board's 401 is shown and the page asks for the token, as for the LED
    s = wait_panel(browser, lambda s: s["token_form"] or s["state"] != "sending", 10, "the 401")
    assert s["token_form"] and "update its firmware" in s["token_message"], s
    assert s["state"] == "failed" and s["msg"].startswith("401 "), s
    browser.find_element("id", "tok").send_keys(TOKEN + "\n")  # kept, and the upload goes again
    s = wait_panel(browser, lambda s: s["state"] == "failed" and not s["msg"].startswith("401"), 10, "the 400")
    assert s["msg"].startswith("400 Bad Request: ") and "chip" in s["msg"], s
    assert browser.execute_script("return localStorage.getItem('nostall-token')") == TOKEN
    assert not browser.find_element("id", "upgo").get_attribute("disabled")  # another file may be tried
    # nothing switched, no reset
    assert info(t)["running"] == "ota_0" and info(t)["pending"] is None and t.sim.restarts == []
    # not an app image at all: said so before sending; the board refuses it too
    s = pick(browser, tmp_path, "notes.txt", b"hello, board\n" * 100)
    assert s["what"] == "1.3 KB: not an ESP-IDF app image", s
    browser.find_element("id", "upgo").click()
    s = wait_panel(browser, lambda s: s["state"] == "failed", 10, "the refusal")
    assert s["msg"].startswith("400 Bad Request: "), s
    # larger than the slot (1.5 MB): 413, from the Content-Length alone
    pick(browser, tmp_path, "big.bin", ab.build(ab.CHIP_C3, VERSION, size=1700 * 1024))
    browser.find_element("id", "upgo").click()
    s = wait_panel(browser, lambda s: s["state"] == "failed" and s["msg"].startswith("413"), 10, "the 413")
    assert s["msg"].startswith("413 Content Too Large: ") and "ota_1" in s["msg"], s
    assert info(t)["running"] == "ota_0" and t.sim.restarts == []


def test_a_board_without_ota_slots_offers_no_upload(ota_sim, browser):
    t = ota_sim(ota=False)
    s = open_panel(browser, t)
    assert s["state"] == "none" and not s["form"], s
    assert "OTA partition table" in s["msg"], s
    assert s["now"].startswith("Running "), s
