"""A real browser for the tests in host_tests/browser/: headless Chromium from Debian's `chromium`
and `chromium-driver` packages, driven by Selenium. Never a browser downloaded at run time: the
driver's and the browser's paths are given (Selenium Manager is only asked when they are not), and
SE_OFFLINE tells it to stay off the network anyway.

    with chromium() as c:
        c.driver.get(board.url + "/")
        page = Dashboard(c.driver)
        page.wait_live("ws")
"""

import os
import shutil
import time

CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or "/usr/bin/chromedriver"
# Root (CI, containers) needs --no-sandbox; --disable-dev-shm-usage: a container's /dev/shm is small
ARGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        "--no-first-run", "--no-default-browser-check", "--disable-background-networking")


def missing():
    """Why no browser can run here (one line), or None."""
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)) and not shutil.which(path):
            return "%s not found: apt-get install chromium chromium-driver" % (path if os.sep in path else pkg)
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: make venv"
    return None


class chromium:
    """Context manager: a headless Chromium (a fresh profile: no cache, empty localStorage),
    driven through .driver (a Selenium WebDriver); quit on exit, which ends the browser and its
    driver. preconnect=False turns off the setting "Preload pages" (network prediction): Chromium
    then opens no speculative connection beside a page's own (one that never sends a request;
    Chromium 156 kept it about 110 s when the board did not close it first)."""

    def __init__(self, width=1100, height=760, preconnect=True):
        self.size = (width, height)
        self.preconnect = preconnect
        self.driver = None

    def __enter__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        os.environ["SE_OFFLINE"] = "true"
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ARGS:
            opts.add_argument(a)
        opts.add_argument("--window-size=%d,%d" % self.size)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        if not self.preconnect:
            opts.add_experimental_option("prefs", {"net.network_prediction_options": 2})  # never
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(20)
        self.driver.set_script_timeout(20)
        return self

    def __exit__(self, *exc):
        self.quit()

    def quit(self):
        """End the browser (its connections close); again does nothing."""
        if self.driver is not None:
            d, self.driver = self.driver, None
            d.quit()


def console(driver):
    """The browser console's lines so far (for a failing test's message)."""
    try:
        return ["%s %s" % (e.get("level"), e.get("message")) for e in driver.get_log("browser")]
    except Exception as e:  # the driver is gone
        return ["(no console: %r)" % e]


class Dashboard:
    """The dashboard (dashboard/, served from firmware/www/) as a test reads it: what its link
    shows and the figures it displays."""

    def __init__(self, driver):
        self.driver = driver

    def state(self):
        """{"link": up|down|connecting, "transport": ws|sse|poll, "text": the link line,
        "uptime_ms": the uptime shown (None before the first figures), ...}."""
        return self.driver.execute_script(
            "const $ = id => document.getElementById(id), b = document.body.dataset;"
            "return {link: b.link, transport: b.transport, text: $('state').textContent,"
            " via: $('via').textContent, uptime_ms: $('uptime').dataset.ms ? +$('uptime').dataset.ms : null,"
            " uptime: $('uptime').textContent, led: $('led').textContent, celsius: $('celsius').textContent,"
            " heap_alloc: $('heap_alloc').textContent, heap_free: $('heap_free').textContent,"
            " connections_open: $('connections_open').textContent, requests: $('requests').textContent,"
            " closes_by_client: $('closes_by_client').textContent, title: $('title').textContent,"
            " token_form: !$('tokf').hidden, token_message: $('tokmsg').textContent, err: $('err').textContent}"
        )

    def wait(self, pred, timeout, what):
        """Poll state() until pred(state) holds; AssertionError naming what (and the last state
        and the console) after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.state()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError("dashboard: %s not seen within %.0f s; last state %r; console %r"
                                     % (what, timeout, s, console(self.driver)[-10:]))
            time.sleep(0.1)

    def wait_live(self, transport, timeout=15.0):
        """Wait until the link is up over transport (ws, sse, poll) with figures shown."""
        return self.wait(lambda s: s["link"] == "up" and s["transport"] == transport and s["uptime_ms"] is not None,
                         timeout, "live figures over %s" % transport)

    def wait_ticking(self, transport, ticks=2, timeout=15.0):
        """Wait until the uptime shown has changed `ticks` times while the link stayed up over
        transport; returns the uptimes seen."""
        seen = [self.wait_live(transport)["uptime_ms"]]
        deadline = time.monotonic() + timeout
        while len(seen) <= ticks:
            s = self.wait(lambda s: s["uptime_ms"] != seen[-1] or s["link"] != "up",
                          max(0.1, deadline - time.monotonic()), "the uptime changing")
            assert s["link"] == "up" and s["transport"] == transport, s
            seen.append(s["uptime_ms"])
        return seen
