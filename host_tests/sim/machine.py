"""Fake of the ESP32 port's machine module for the sim board: resets and why (modmachine.c), the
watchdog (machine_wdt.c), GPIO pins (machine_pin.c), unique_id and freq; after MicroPython
v1.28.0 ports/esp32, with the names and values of the micropython-esp32-*-stubs `make typecheck`
uses. Which chip: $SIM_CHIP (_simlink.CHIP). MicroPython only.

A reset ends this process (exit code 64 + the next reset cause) and the runner starts the board
again on the same flash (_simlink.restart); reset_cause() is what the port reports then:
HARD_RESET after machine.reset() (esp_restart(): ESP_RST_SW), WDT_RESET after the watchdog
fired (the task watchdog panics: ESP_RST_TASK_WDT), DEEPSLEEP_RESET after deepsleep(),
SOFT_RESET after soft_reset(), PWRON_RESET at first. The watchdog itself is the runner's: WDT()
and feed() tell it (events "wdt", "feed"), and it resets the board when a feed is late: the
event loop is blocked."""

import os
import time

import _simlink

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
SLEEP = 2
DEEPSLEEP = 4
PIN_WAKE = 2
EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4
TOUCHPAD_WAKE = 5
ULP_WAKE = 6

_C3 = _simlink.CHIP == "esp32c3"
_cause = int(os.getenv("SIM_RESET_CAUSE") or PWRON_RESET)
_freq = [160000000]
# GPIOs in the port's pin table; from 34 on the original ESP32's are inputs only
_PINS = tuple(range(22)) if _C3 else tuple(range(20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40))
_FIRST_INPUT_ONLY = 99 if _C3 else 34
_MAC = b"\x34\x85\x18\x51\x1c\x00" if _C3 else b"\x24\x6f\x28\x51\x1c\x00"


def reset_cause():
    return _cause


def reset():
    _simlink.restart(HARD_RESET)


def soft_reset():
    _simlink.restart(SOFT_RESET)


def deepsleep(time_ms=0):
    _simlink.restart(DEEPSLEEP_RESET, time_ms)


def lightsleep(time_ms=None):
    time.sleep_ms(time_ms or 0)  # no wake source modelled: only a timed sleep comes back


def sleep():
    lightsleep()


def idle():
    time.sleep_ms(0)


def wake_reason():
    return 0  # ESP_SLEEP_WAKEUP_UNDEFINED


def unique_id():
    return _MAC  # the base MAC (eFuse), as the STA interface has it


def freq(*hz):
    if not hz:
        return _freq[0]
    mhz = hz[0] // 1000000
    if mhz not in ((20, 40, 80, 160) if _C3 else (20, 40, 80, 160, 240)):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz or 160MHz" if _C3 else
                         "frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    _freq[0] = mhz * 1000000


def disable_irq():
    return 0


def enable_irq(state):
    pass


class WDT:
    """The task watchdog: once made it cannot be stopped; a second WDT() changes its timeout."""

    def __init__(self, *, id=0, timeout=5000):
        if id != 0:
            raise ValueError()
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        _simlink.event("wdt", timeout)

    def feed(self):
        _simlink.event("feed")


_levels = {}  # pin -> level, shared by every Pin object of that GPIO, as the pad is


class Pin:
    IN = 1
    OUT = 3  # GPIO_MODE_INPUT_OUTPUT: an output reads back its level
    OPEN_DRAIN = 7
    PULL_DOWN = 1
    PULL_UP = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    WAKE_LOW = 4
    WAKE_HIGH = 5
    DRIVE_0 = 0
    DRIVE_1 = 1
    DRIVE_2 = 2
    DRIVE_3 = 3

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        if isinstance(id, Pin):
            id = id._id
        if id not in _PINS:
            raise ValueError("invalid pin")
        self._id = id
        self._mode, self._pull = None, None
        self.init(None if mode == -1 else mode, pull, value=value, drive=drive, hold=hold)

    def init(self, mode=None, pull=-1, *, value=None, drive=None, hold=None):
        if value is not None:
            self._write(1 if value else 0)
        if mode is not None:
            if self._id >= _FIRST_INPUT_ONLY and mode & 2:
                raise ValueError("pin can only be input")
            self._mode = mode
        if pull != -1:
            self._pull = pull

    def _write(self, v):
        if _levels.get(self._id) != v:
            _levels[self._id] = v
            _simlink.event("pin", self._id, v)

    def value(self, *x):
        if x:
            self._write(1 if x[0] else 0)
            return None
        if self._mode is not None and self._mode & 2:
            return _levels.get(self._id, 0)
        return 1 if self._pull == Pin.PULL_UP else 0  # nothing drives an input here

    def __call__(self, *x):
        return self.value(*x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(1 - _levels.get(self._id, 0))

    def mode(self, *mode):
        if not mode:
            return self._mode
        self.init(mode[0])

    def pull(self, *pull):
        if not pull:
            return self._pull
        self.init(None, pull[0])

    def irq(self, handler=None, trigger=3, *, wake=None, hard=False):
        return None  # no edges come in on the sim

    def __repr__(self):
        return "Pin(%d)" % self._id


def SPI(*args, **kw):  # noqa: N802 - the port's name; only Ethernet's SPI chips use it: loaded then
    import _simlan

    return _simlan.SPI(*args, **kw)
