"""Where things are in this checkout. Every other module takes its paths from here."""

import os

HARNESS = os.path.dirname(os.path.abspath(__file__))
HOST_TESTS = os.path.dirname(HARNESS)
ROOT = os.path.dirname(HOST_TESTS)
FIRMWARE = os.path.join(ROOT, "firmware")
# MicroPython-side folders: the sim's fakes of the ESP32 port's modules, and the apps run on the unix port
SIM_GLUE = os.path.join(HOST_TESTS, "sim")
APPS = os.path.join(HOST_TESTS, "apps")
APPS_SEC = os.path.join(HOST_TESTS, "apps_sec")
APPS_EMU = os.path.join(HOST_TESTS, "apps_emu")
APPS_WS = os.path.join(HOST_TESTS, "apps_ws")  # WebSocket and event-stream routes and a channel to publish into
APPS_BOARD = os.path.join(HOST_TESTS, "apps_board")  # blocks the loop, resets the board (host_tests/board)
APPS_BROWSER = os.path.join(HOST_TESTS, "apps_browser")  # the dashboard's routes switched off (browser tests)
APPS_BENCH = os.path.join(HOST_TESTS, "apps_bench")  # the contestants of `make bench` (harness/contestants.py)
REPORTS = os.path.join(ROOT, "reports")
CACHE = os.path.join(ROOT, ".cache")
