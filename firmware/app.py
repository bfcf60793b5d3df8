# The default application: a dashboard at / (www/index.html) and a small API over the board's
# hardware. hw is the Board from board.py (or the sim's stand-in).

import json

from nostall.channel import STATUS
from nostall.request import HTTPError
from nostall.web import App, Response, lazy, tokens_equal

MAX_SAMPLES = 200  # /api/samples?n= cap: one request may not hold its slot streaming for long
DEFAULT_SAMPLES = "10"  # without ?n=: a few, quick to stream
# live readings: no cache (a browser's, a proxy's) may keep one and show it as now (RFC 9111 5.2.2.5)
NO_STORE = (("Cache-Control", "no-store"),)


def make_app(hw):
    app = App()

    @app.route("/api/led", methods=("GET", "PUT", "POST"))
    def led(req):
        if not hw.has_led():
            raise HTTPError(404, "this board has no LED configured (set led_pin)")
        if req.method == "PUT" or req.method == "POST":  # not HEAD: it is served by GET, token-free
            on = _parse_on(req)
            hw.set_led(on)
        return {"on": hw.led()}, 200, NO_STORE

    @app.get("/api/temperature")
    def temperature(req):
        t = hw.temperature_c()
        if t is None:
            raise HTTPError(404, "this chip has no temperature sensor")
        return {"celsius": t}, 200, NO_STORE

    @app.get("/api/samples")
    def samples(req):
        # NDJSON, streamed as it is produced: memory stays flat whatever n is
        try:
            n = int(req.args.get("n", DEFAULT_SAMPLES))
        except ValueError:
            raise HTTPError(400, "n must be an integer")
        if not 1 <= n <= MAX_SAMPLES:
            raise HTTPError(400, "n must be 1..%d" % MAX_SAMPLES)
        return Response(stream=_samples(hw, n), headers=NO_STORE, content_type="application/x-ndjson")

    @app.websocket("/ws/echo")
    async def echo(req, ws):
        # every message back as it came: a board's WebSocket round trip, and the conformance runs
        while True:
            msg = await ws.receive()
            if msg is None:
                return
            await ws.send(msg)

    # the dashboard's live figures: the server's (channel.STATUS, once a second) and the board's
    STATUS.extra = lambda: {"led": hw.led() if hw.has_led() else None, "celsius": hw.temperature_c()}

    @app.websocket("/ws/live")
    async def live(req, ws):
        # the live figures pushed as they come; the LED switched by {"led": true, "token": ...}.
        # No replay: the kept message dates from when someone last followed (minutes ago, maybe):
        # a dashboard would show its LED state and uptime as now. The next one comes within
        # a second (within tick_ms when nobody followed for a second)
        ws.follow(STATUS)
        while True:
            msg = await ws.receive()
            if msg is None:
                return
            await ws.send(json.dumps(_command(app, hw, msg)))

    app.events("/events", STATUS)  # the same figures as an event stream, for what has no WebSocket
    app.files(hw.data_root)  # /api/files (uploads stream to flash), /files

    # updates (nostall/update.py, appupdate.py: loaded by the first request to /api/update)
    app.route("/api/update/firmware", ("PUT",), 4 << 20)(lazy("update", "put_firmware", hw))  # 413 past the slot's size
    app.route("/api/update/app", ("PUT",), 1 << 20)(lazy("appupdate", "put_app", hw))
    app.get("/api/update")(lazy("update", "info", hw))
    app.static("/", hw.www_root)
    return app


def _command(app, hw, msg):
    # a dashboard's message on /ws/live -> the answer to send back
    try:
        cmd = json.loads(msg)
        on = cmd["led"]
    except (ValueError, TypeError, KeyError):
        return {"t": "error", "status": 400, "reason": 'send {"led": true} or {"led": false}'}
    if not isinstance(on, bool):
        return {"t": "error", "status": 400, "reason": "led is true or false"}
    token = app.token
    if token and not tokens_equal(str(cmd.get("token") or ""), token):
        return {"t": "error", "status": 401, "reason": "the API token is needed to switch the LED"}
    if not hw.has_led():
        return {"t": "error", "status": 404, "reason": "this board has no LED configured (set led_pin)"}
    hw.set_led(on)
    return {"t": "led", "on": hw.led()}


def _parse_on(req):
    ctype = req.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        body = req.json
        v = body.get("on") if isinstance(body, dict) else None
        if not isinstance(v, bool):
            raise HTTPError(400, 'send {"on": true} or {"on": false}')
        return v
    text = req.text.strip().lower()
    if text in ("on", "1", "true"):
        return True
    if text in ("off", "0", "false"):
        return False
    raise HTTPError(400, "send on or off")


def _samples(hw, n):
    for i in range(n):
        yield b'{"i": %d, "celsius": %s, "led": %s}\n' % (
            i,
            str(hw.temperature_c()).encode(),
            b"true" if hw.has_led() and hw.led() else b"false",
        )
