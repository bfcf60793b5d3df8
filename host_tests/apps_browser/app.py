# A test app for host_tests/browser/, shadowing firmware/app.py on the sim board (its dir comes
# first on the path): the real app, with the routes named in BROWSER_OFF (e.g. "/ws/live,/events")
# answering 404, as when a proxy in between refuses WebSocket upgrades or event streams. The
# dashboard must then fall back to what is left. BROWSER_BUSY ("PUT /api/led:1"): the first n
# such requests get the board's busy 503 with Retry-After 1, as at the connection cap. Unix port
# only.

import os

from nostall.request import HTTPError

from real_app import make_real_app as _real_app


def make_app(hw):
    app = _real_app(hw)
    for path in (os.getenv("BROWSER_OFF") or "").split(","):
        if path:
            app.route(path, ("GET",))(_off(path))
    busy = os.getenv("BROWSER_BUSY")
    if busy:
        what, n = busy.split(":")
        method, path = what.split(" ")
        handler = app._find(method, path)[0]  # the real app's
        # in its place, registered as any route is (a PUT: behind the token, as the real one)
        app.route(path, (method,))(_busy(handler, [int(n)]))
    return app


def _off(path):
    def off(req):
        raise HTTPError(404, "switched off for this test: " + path)

    return off


def _busy(handler, left):
    def busy(req, **params):
        if left[0] > 0:
            left[0] -= 1
            raise HTTPError(503, "server busy, retry", (("Retry-After", "1"),))
        return handler(req, **params)

    return busy
