"""The dashboard at / in a real browser (headless Chromium): it loads (gzip-encoded, revalidated
with its ETags on a reload), shows live figures over the WebSocket, falls back to the event
stream and then to polling when the board refuses what comes before, goes back to the WebSocket
once it can, says when the link is down and reconnects by itself after the board restarts, and
switches the LED over each link, asking for the API token where the board wants one.

The screenshot of the dashboard goes to reports/dashboard.png."""

import os
import time

import pytest
import requests
from websockets.sync.client import connect

from harness.browser import Dashboard
from harness.paths import APPS_BROWSER, REPORTS
from harness.target import wait_for

TOKEN = "dash-Token_0123456789~+/="
FILES = ("index.html", "app.js", "style.css")


def led(target):
    with target.client():
        r = requests.get(target.url + "/api/led", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["on"]


def open_dashboard(browser, target):
    with target.client():
        browser.get(target.url + "/")
    return Dashboard(browser)


def click_led(browser, page, before):
    """Click the LED button and wait until the page shows the new state."""
    browser.find_element("id", "led").click()
    want = "LED " + ("off" if before else "on")
    return page.wait(lambda s: s["led"] == want or s["token_form"] or s["err"], 10, want)


def test_dashboard_live_over_websocket(board, browser):
    page = open_dashboard(browser, board)
    seen = page.wait_ticking("ws", ticks=2)
    assert seen[0] < seen[1] < seen[2], seen  # the figures move: pushed once a second
    s = page.state()
    assert s["text"] == "live" and s["via"] == "via WebSocket", s
    assert s["title"].startswith("nostall ") and "·" in s["title"], s  # version and board, from /status
    for k in ("heap_alloc", "heap_free"):
        assert s[k].endswith(" KB"), s
    assert int(s["connections_open"]) >= 1 and int(s["requests"]) >= 1, s
    assert s["celsius"].endswith(" °C"), s  # the sim's sensor (a board without one shows –)
    # the three files came gzip-encoded (the browser decoded more than it received)
    got = {e["name"].rsplit("/", 1)[-1] or "index.html": e for e in browser.execute_script(
        "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        ".map(e => ({name: e.name, transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize}))")}
    for name in FILES:
        assert 0 < got[name]["encoded"] < got[name]["decoded"], (name, got[name])
    # a reload asks with the ETags (Cache-Control: no-cache) and gets 304s: no body comes again
    browser.refresh()
    page.wait_live("ws")
    again = {e["name"].rsplit("/", 1)[-1] or "index.html": e for e in browser.execute_script(
        "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        ".map(e => ({name: e.name, transfer: e.transferSize}))")}
    for name in FILES:  # asked over the network (not 0), answered with a head alone
        assert 0 < again[name]["transfer"] < got[name]["transfer"] - got[name]["encoded"] // 2, (name, again[name], got[name])
    # the LED, switched over the WebSocket ({"led": ...} on /ws/live), and back
    before = led(board)
    s = click_led(browser, page, before)
    assert s["led"] == "LED " + ("off" if before else "on") and not s["token_form"], s
    assert led(board) is (not before)
    click_led(browser, page, not before)
    assert led(board) is before


def test_screenshot(board, browser):
    """reports/dashboard.png: the dashboard with live figures, for people to look at."""
    page = open_dashboard(browser, board)
    page.wait_ticking("ws", ticks=3)  # the charts have a few points
    os.makedirs(REPORTS, exist_ok=True)
    path = os.path.join(REPORTS, "dashboard.png")
    if os.path.exists(path):
        os.remove(path)
    assert browser.save_screenshot(path)
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000, len(data)


def test_reconnects_after_the_board_restarts(make_sim, browser):
    t = make_sim()
    page = open_dashboard(browser, t)
    page.wait_ticking("ws", ticks=2)
    t.sim.stop()
    s = page.wait(lambda s: s["link"] == "down", 10, "the link down")
    assert s["text"].startswith("link down: reconnecting in ") and s["text"].endswith(" s"), s
    assert browser.find_element("id", "retry").is_displayed()
    time.sleep(2)  # a round or two of reconnection attempts meet a closed port
    assert page.state()["link"] != "up"
    t0 = time.monotonic()
    t.sim.start()  # a new board on the same port: uptime from 0
    # its figures: an uptime no longer than it has been up (the backoff may have waited longer
    # than the old board had run, so "less than before" would not tell them apart)
    s = page.wait(lambda s: s["link"] == "up" and s["uptime_ms"] is not None
                  and s["uptime_ms"] <= (time.monotonic() - t0) * 1000 + 500,
                  40, "live figures from the restarted board")
    took = time.monotonic() - t0
    assert s["transport"] == "ws", s
    page.wait_ticking("ws", ticks=1)
    print("reconnected %.1f s after the board listened again" % took)


def test_falls_back_to_sse_when_websocket_is_refused(make_sim, browser):
    t = make_sim(app_dir=APPS_BROWSER, env={"BROWSER_OFF": "/ws/live"})
    page = open_dashboard(browser, t)
    page.wait_ticking("sse", ticks=2)
    assert page.state()["via"] == "via SSE"
    assert t.status()["long_lived_open"] == 1  # the event stream
    before = led(t)  # the LED, switched with PUT /api/led
    click_led(browser, page, before)
    assert led(t) is (not before)


def test_falls_back_to_polling_when_both_are_refused(make_sim, browser):
    t = make_sim(limits={"max_long_lived_connections": 0})  # WebSocket and SSE: 503
    page = open_dashboard(browser, t)
    page.wait_ticking("poll", ticks=2)
    assert page.state()["via"] == "via polling"
    assert t.status()["long_lived_open"] == 0
    before = led(t)
    click_led(browser, page, before)
    assert led(t) is (not before)


def test_a_busy_503_is_tried_again_after_its_retry_after(make_sim, browser):
    """At the connection cap a newcomer may get the board's busy 503 with Retry-After 1 (a slot
    or a 503 within 2 s): the page sends the LED's PUT again after it, not an error."""
    t = make_sim(limits={"max_long_lived_connections": 0}, app_dir=APPS_BROWSER, env={"BROWSER_BUSY": "PUT /api/led:1"})
    page = open_dashboard(browser, t)
    page.wait_live("poll")
    before = led(t)
    five = t.status()["status_5xx"]  # the WebSocket's and the event stream's 503s so far
    t0 = time.monotonic()
    s = click_led(browser, page, before)
    assert s["led"] == "LED " + ("off" if before else "on") and s["err"] == "", s
    assert time.monotonic() - t0 >= 1.0  # after the Retry-After
    st = t.status()
    assert led(t) is (not before) and st["status_5xx"] == five + 1, (five, st)


def _ws_connect(target, path="/ws/echo"):
    """A WebSocket client holding a long-lived slot."""
    with target.client():
        return connect("ws://%s:%d%s" % (target.host, target.port, path), open_timeout=5, close_timeout=3)


def test_goes_back_to_websocket_once_it_can(make_sim, browser):
    """Opened while the one long-lived slot is taken, the page polls; once the slot is free it
    is back on the WebSocket within a minute (it tries every 60 s)."""
    t = make_sim(limits={"max_long_lived_connections": 1})
    with _ws_connect(t):
        page = open_dashboard(browser, t)
        page.wait_live("poll")
    assert wait_for(lambda: t.status()["long_lived_open"] == 0, timeout=5)
    page.wait_live("ws", timeout=75)
    page.wait_ticking("ws", ticks=1)


@pytest.mark.parametrize("limits", [{}, {"max_long_lived_connections": 0}], ids=["websocket", "polling"])
def test_led_with_the_api_token(make_sim, browser, limits):
    """A board with an api_token: the page asks for it on the first refusal, can be cancelled,
    asks again for a wrong one, and keeps the right one in localStorage (a reload does not ask)."""
    t = make_sim(limits=limits, settings={"api_token": TOKEN})
    transport = "poll" if limits else "ws"
    page = open_dashboard(browser, t)
    page.wait_live(transport)
    before = led(t)
    # no token: the page asks; cancelled, nothing changes and the page says so
    s = click_led(browser, page, before)
    assert s["token_form"] and "wants its API token" in s["token_message"], s
    browser.find_element("id", "tokno").click()
    s = page.wait(lambda s: not s["token_form"], 5, "the form gone")
    assert "unchanged" in s["err"] and led(t) is before, s
    # a wrong token: refused, asked again
    s = click_led(browser, page, before)
    assert s["token_form"], s
    browser.find_element("id", "tok").send_keys("wrong-token-0123456789\n")
    s = page.wait(lambda s: s["token_form"] and "refused" in s["token_message"], 10, "the wrong token refused")
    assert led(t) is before
    # the right one: the change goes through, the form goes away
    browser.find_element("id", "tok").send_keys(TOKEN + "\n")
    s = page.wait(lambda s: s["led"] == "LED " + ("off" if before else "on"), 10, "the LED switched")
    assert not s["token_form"] and led(t) is (not before), s
    assert browser.execute_script("return localStorage.getItem('nostall-token')") == TOKEN
    # remembered: after a reload the change goes through without asking
    browser.refresh()
    page.wait_live(transport)
    s = click_led(browser, page, not before)
    assert not s["token_form"] and led(t) is before, s
    assert page.state()["err"] == ""
