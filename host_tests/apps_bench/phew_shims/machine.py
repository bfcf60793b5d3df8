# Shim for Phew!'s logging (phew/logging.py), which stamps each line with machine.RTC().datetime():
# the unix port's machine has no RTC. Everything else is the port's own machine module.

import time

from umachine import *  # noqa: F401,F403


class RTC:
    def datetime(self):
        # (year, month, day, weekday, hours, minutes, seconds, subseconds), as on a board
        t = time.localtime()
        return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
