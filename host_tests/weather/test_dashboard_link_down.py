"""The dashboard in a real browser through a 10 s Wi-Fi drop: a headless Chromium (and its
chromedriver) in the lab's client namespace, so every frame of the page reaches the sim board
through lwIP, whose link goes down both ways for 10 s. The page says the link is down within a few
seconds, is live over the WebSocket again within 30 s of the link's return, and the board frees
the dead WebSocket by its ping/pong deadline (scaled down here: ws_ping_interval_ms 3000 +
ws_pong_timeout_ms 2000, from 20000 + 10000), with its heap back to its level and no TIME_WAIT
pcb in lwIP."""

import subprocess
import time

import pytest

from harness.browser import Dashboard, chromium, console
from harness.emu import netns
from harness.sseclient import SSEClient
from harness.target import get_status, wait_for

pytestmark = pytest.mark.abuse

PING_MS, PONG_MS = 3000, 2000
DOWN_MS = 10000
SHOW_DOWN_S = 7.0  # the page's silence limit (5 s) after the last push (once a second), and a margin
BACK_S = 30.0  # live over the WebSocket again within this long of the link's return
HEAP_SLACK = 2048


def _home_status(t):
    # the sim's own /status on the home namespace's loopback: no lwIP, so it answers while the link is down
    with netns.in_home_ns():
        return get_status("http://%s:%d" % (t.sim.host, t.sim.port), gc=True)


def _browser_conns(t):
    """The browser's TCP connections to the board that are up (run from the lab's namespace,
    where Chromium lives): what the board should hold, besides the /status that asks."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "( dst %s and dport = :%d )" % (t.host, t.port)],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


def _held(t):
    """/status once the board holds only the browser's connections (and the one asking), with the
    browser's count: (status, browser connections); the last seen if that takes over 10 s."""
    seen = []

    def settled():
        st, n = _home_status(t), _browser_conns(t)
        seen[:] = [(st, n)]
        return st["connections_open"] == n + 1
    wait_for(settled, 10, 0.2)
    return seen[0]


def _delta(before, after):
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_dashboard_through_a_10s_link_down(lab, need_browser, figure):
    t = lab.board({"ws_ping_interval_ms": PING_MS, "ws_pong_timeout_ms": PONG_MS})
    # the browser and its driver are born in the lab's namespace (processes inherit the starting
    # thread's), and Selenium's calls to the driver on localhost are made from there too
    with lab.client(), chromium(preconnect=False) as c:
        page = Dashboard(c.driver)
        c.driver.get(t.url + "/")
        page.wait_ticking("ws", ticks=2)
        # the page falls back to the event stream while its WebSocket cannot reconnect: the
        # event-stream code is loaded at its first use, which the heap baseline must not count
        with SSEClient(t, "/events") as es:
            es.next(timeout=5)
        before, conns_before = _held(t)
        assert before["long_lived_open"] == 1, before
        assert before["connections_open"] == conns_before + 1, (before, conns_before)

        # the drop: every frame both ways for 10 s
        t0 = time.monotonic()
        t.emu.link_down(DOWN_MS)
        back = t0 + DOWN_MS / 1000
        shown_down = freed = None
        freed_status = None
        while time.monotonic() < back - 0.3:
            now = time.monotonic()
            if shown_down is None:
                s = page.state()
                if s["link"] == "down":
                    shown_down = now - t0
                    down_state = s
            if freed is None:
                st = _home_status(t)
                if st["long_lived_open"] == 0:
                    freed, freed_status = time.monotonic() - t0, st
            if shown_down is not None and freed is not None:
                break
            time.sleep(0.1)
        assert shown_down is not None, (page.state(), console(c.driver)[-10:])
        assert shown_down <= SHOW_DOWN_S, (shown_down, down_state)
        assert down_state["text"].startswith("link down: reconnecting in "), down_state
        assert t.emu.weather_stats()["down"], "the link came back before the page said it was down"

        # back: live over the WebSocket (fresh figures) within 30 s of the link's return
        time.sleep(max(0.0, back - time.monotonic()))
        uptime_down = down_state["uptime_ms"]
        page.wait(lambda s: s["link"] == "up" and s["transport"] == "ws" and s["uptime_ms"] is not None
                      and s["uptime_ms"] > uptime_down, back + BACK_S - time.monotonic(),
                      "live figures over the WebSocket after the link's return")
        live_again = time.monotonic() - back
        page.wait_ticking("ws", ticks=1)

        # the board: one live WebSocket again and nothing the browser does not hold (it may keep
        # the connection of the page's /status after the return), the heap back to its level
        end, conns_end = _held(t)
        c.quit()  # and once the browser is gone, only the /status asking
        gone = wait_for(lambda: (lambda st: st if st["connections_open"] == 1 else None)(_home_status(t)), 10, 0.2) \
            or _home_status(t)
    e1 = t.emu.wait_stats(lambda e: e["pcbs_active"] == 0, 5.0)  # the browser gone: lwIP holds nothing
    closes = _delta(before["closes_by_server"], end["closes_by_server"])
    if freed is None:  # not freed while the link was down: then by the browser's close after it
        freed_status = end
    print("\nshown down %.1f s after the drop; live over WebSocket %.1f s after the link's return; "
          "dead WebSocket freed %s; closes by server %s; heap %d -> %d B (%d once the browser quit); board connections %d -> %d "
          "(browser's %d -> %d; after it quit %d); lwIP %r" % (
              shown_down, live_again, "%.1f s after the drop" % freed if freed is not None else "after the link's return",
              closes, before["heap_alloc"], end["heap_alloc"], gone["heap_alloc"], before["connections_open"], end["connections_open"],
              conns_before, conns_end, gone["connections_open"],
              {k: e1[k] for k in ("time_wait_max", "pcbs_active", "client_resets", "firmware_aborts",
                                  "firmware_aborts_declined") if k in e1}))
    figure("the dashboard through a 10 s Wi-Fi drop",
           "headless Chromium on /ws/live through lwIP, link down 10 s both ways; ws ping %d + pong %d ms" % (
               PING_MS, PONG_MS),
           "link down shown after %.1f s; live over WebSocket %.1f s after the link's return; dead WebSocket "
           "freed %s (%s); lwIP TIME_WAIT %d" % (
               shown_down, live_again, "%.1f s after the drop" % freed if freed is not None else "after the return",
               ", ".join("%s %d" % kv for kv in sorted(closes.items())) or "closed by the client",
               e1["time_wait_max"]),
           "nothing: heap %+d B once the browser quit" % (gone["heap_alloc"] - before["heap_alloc"]))
    assert live_again <= BACK_S
    # freed by the ping/pong deadline: the client's last frame (a pong) came at most PING_MS
    # before the drop, so no later than PING_MS + PONG_MS after it (plus the ticker's step)
    assert freed is not None and freed <= (PING_MS + PONG_MS) / 1000 + 1.0, (freed, freed_status)
    assert _delta(before["closes_by_server"], freed_status["closes_by_server"]) == {"ws_timeout": 1}, freed_status
    assert end["long_lived_open"] == 1, end
    assert end["connections_open"] == conns_end + 1, (end, conns_end)
    assert gone["connections_open"] == 1 and gone["long_lived_open"] == 0, gone
    # the heap once the browser is gone (its connections closed), against the baseline with its
    # page live: whatever the drop left behind would show here (end, with the browser's second
    # connection and its page's state after the return, is not a like-for-like figure)
    assert gone["heap_alloc"] <= before["heap_alloc"] + HEAP_SLACK, (before["heap_alloc"], gone["heap_alloc"], end["heap_alloc"])
    assert e1["time_wait_max"] == 0 and e1["pcbs_active"] == 0, e1
