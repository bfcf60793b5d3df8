# The sim board's stand-in for firmware/board.py: same names, no hardware. The LED is a variable
# and the temperature a slow drift around 30 C. Settings come from SIM_SETTINGS (a JSON file);
# SIM_PORT overrides its http_port. Runs on the MicroPython unix port only.

import os


_here = __file__.rpartition("/")[0] or "."
SETTINGS_PATH = os.getenv("SIM_SETTINGS") or (_here + "/settings.json")
NEEDS_WIFI = False
BIND_HOST = "127.0.0.1"
WWW_ROOT = os.getenv("SIM_WWW") or (_here + "/../../firmware/www")


class Board:
    def __init__(self, settings):
        port = os.getenv("SIM_PORT")
        if port:
            settings.http_port = int(port)
        self.settings = settings
        self.name = "sim (MicroPython unix port)"
        self.www_root = WWW_ROOT
        self._led_on = False
        self._t = 0

    def has_led(self):
        return True

    def set_led(self, on):
        self._led_on = bool(on)

    def led(self):
        return self._led_on

    def temperature_c(self):
        self._t = (self._t + 1) % 20
        return 30.0 + (self._t - 10) / 10

    def vitals(self):
        return {}  # no radio, no resets to report

    async def connect(self):
        return "127.0.0.1"

    def start(self, server):
        pass
