# A test app for host_tests/browser/, shadowing firmware/app.py on the sim board (its dir comes
# first on the path): the real app, with the routes named in BROWSER_OFF (e.g. "/ws/live,/events")
# answering 404, as when a proxy in between refuses WebSocket upgrades or event streams. The
# dashboard must then fall back to what is left. Unix port only.

import os

from nostall.request import HTTPError

from real_app import make_real_app as _real_app


def make_app(hw):
    app = _real_app(hw)
    for path in (os.getenv("BROWSER_OFF") or "").split(","):
        if path:
            app.route(path, ("GET",))(_off(path))
    return app


def _off(path):
    def off(req):
        raise HTTPError(404, "switched off for this test: " + path)

    return off
