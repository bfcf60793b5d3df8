# A test app for host_tests/board/, shadowing firmware/app.py on the sim board (its dir comes
# first on the path): the real app, plus routes that do to the board what only a fault or an
# operator would: block the event loop (the watchdog must reset the board) and reset it.
# Unix port only (the sim's fakes of machine and network answer here).

import time

import machine
import network

from real_app import make_real_app as _real_app


def make_app(hw):
    app = _real_app(hw)

    @app.get("/board/block")
    def block(req):
        time.sleep_ms(int(req.args.get("ms", "5000")))  # no await: the whole loop stands still
        return "unblocked"

    @app.get("/board/reset")
    def reset(req):
        machine.reset()

    @app.get("/board/wifi")
    def wifi(req):
        wlan = network.WLAN(network.STA_IF)
        return {"status": wlan.status(), "isconnected": wlan.isconnected(), "ifconfig": wlan.ifconfig(),
                "pm": wlan.config("pm"), "hostname": network.hostname(), "reset_cause": machine.reset_cause()}

    return app
