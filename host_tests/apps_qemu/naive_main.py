# The negative control on the QEMU board: host_tests/apps_emu/naive_server.py (the typical
# forum/doc MicroPython web server: it answers "Connection: close" and closes FIRST, so the
# board's lwIP keeps a TIME_WAIT pcb for 2*TCP_MSL per connection), on the network the firmware's
# own board glue brings up (settings.json's "lan" section).
import asyncio
import board
from nostall.settings import load

from naive_server import serve

asyncio.run(board.Board(load(board.SETTINGS_PATH, board.NEEDS_WIFI)).connect())
serve("0.0.0.0", 80)
