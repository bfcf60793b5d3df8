# The firmware's start: settings, the board, the app, the server; the same on a board and on the
# sim board, which runs this folder as its flash with fakes of the ESP32 port's network, machine
# and esp32 modules (host_tests/sim/). main.py chooses which copy of the firmware's Python runs
# (the flash's, or an app update's) and calls main() here.

import asyncio
import gc

import board
from nostall import VERSION
from nostall.server import Server
from nostall.config import SettingsError


def _settings():
    # settings.py runs once: dropped once it has read the file (a Settings is a record), with
    # bounds.py (the limits' checks), so their code leaves the heap
    import sys

    import nostall
    from nostall.settings import load

    try:
        return load(board.SETTINGS_PATH, board.NEEDS_WIFI)
    finally:
        for name in ("settings", "bounds"):
            sys.modules.pop("nostall." + name, None)
            if hasattr(nostall, name):
                delattr(nostall, name)


def main():
    try:
        settings = _settings()
    except SettingsError as e:
        print("nostall: settings: %s" % e)
        return
    hw = board.Board(settings)
    import app

    web_app = app.make_app(hw)
    web_app.token = settings.api_token  # set after make_app: any app's changing routes are covered
    info = {"firmware_version": VERSION, "board": hw.name}
    server = Server(web_app, settings.config, board.BIND_HOST, settings.http_port, info, hw.vitals)
    gc.collect()
    # started: collect when the heap is full again (main.py packed start-up's objects), or where
    # the heap grows from the system's, every gc_every_bytes while it is grown (heapkeep.py)
    gc.threshold(-1)
    if board.HEAP_GROWS:
        server.keep_heap(hw.system_free)

    async def run():
        ip = await hw.connect()  # Wi-Fi, with retries and backoff
        server.listen()
        print("nostall %s on %s: serving http://%s:%d/" % (VERSION, hw.name, ip, settings.http_port))
        if settings.api_token:
            print("nostall: PUT/POST/PATCH/DELETE need the header Authorization: Bearer <api_token>")
        hw.start(server)  # background tasks: Wi-Fi reconnect, watchdog feeding
        await server.serve()

    try:
        asyncio.run(run())
    except SettingsError as e:  # what only the hardware could tell (board.py): e.g. a PHY this chip lacks
        print("nostall: settings: %s" % e)
    except KeyboardInterrupt:
        # Ctrl-C (SIGINT on the sim) stops the loop where it stood: shut down properly, so idle
        # connections are reset (no TIME_WAIT on the board) and answers in flight may finish
        print("nostall: stopping")
        asyncio.run(server.shutdown())
        print("nostall: stopped")
    finally:
        server.stop()
