"""Fake of micropython-lib's ntptime for the sim board (the ESP32 port freezes it into its
firmware, with bundle-networking): the module's settings host and timeout, time() and
settime(), after micropython-lib micropython/net/ntptime. As there, a query blocks (a UDP socket
with ntptime.timeout) and one that gets no answer raises OSError(ETIMEDOUT). The sim's clock is
the host's, so an answer is the host's time and settime() has nothing to set. MicroPython only.

The radio script (sim/_simlink.py) says whether the NTP server answers: "ntp_fail" N, the first
N queries get none (true: none ever does). Each query is an event "ntp <host>" to the runner."""

import errno
import time as _time

import _simlink

host = "pool.ntp.org"
timeout = 1

_failed = [0]


def time():
    _simlink.event("ntp", host)
    sc, _ = _simlink.script()
    fail = sc.get("ntp_fail", 0)
    if fail is True or _failed[0] < fail:
        _failed[0] += 1
        _time.sleep(timeout)  # the socket's timeout: nothing came
        raise OSError(errno.ETIMEDOUT)
    return int(_time.time())


def settime():
    time()  # the port sets its RTC from the answer (machine.RTC().datetime()); the sim's clock is the host's
