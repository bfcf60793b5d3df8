# The default application: a dashboard at / (www/index.html) and a small API over the board's
# hardware. hw is the Board from board.py (or the sim's stand-in).

from nostall.proto import HTTPError
from nostall.web import App, Response

MAX_SAMPLES = 200  # /api/samples?n= cap: one request may not hold its slot streaming for long


def make_app(hw):
    app = App()

    @app.route("/api/led", methods=("GET", "PUT", "POST"))
    def led(req):
        if not hw.has_led():
            raise HTTPError(404, "this board has no LED configured (set led_pin)")
        if req.method == "PUT" or req.method == "POST":  # not HEAD: it is served by GET, token-free
            on = _parse_on(req)
            hw.set_led(on)
        return {"on": hw.led()}

    @app.get("/api/temperature")
    def temperature(req):
        t = hw.temperature_c()
        if t is None:
            raise HTTPError(404, "this chip has no temperature sensor")
        return {"celsius": t}

    @app.get("/api/samples")
    def samples(req):
        # NDJSON, streamed as it is produced: memory stays flat whatever n is
        try:
            n = int(req.args.get("n", "10"))
        except ValueError:
            raise HTTPError(400, "n must be an integer")
        if not 1 <= n <= MAX_SAMPLES:
            raise HTTPError(400, "n must be 1..%d" % MAX_SAMPLES)
        return Response(stream=_samples(hw, n), content_type="application/x-ndjson")

    app.static("/", hw.www_root)
    return app


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
