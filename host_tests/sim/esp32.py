"""Fake of the ESP32 port's esp32 module for the sim board, the parts this project's firmware
touches: the die temperature and the IDF heap (MicroPython v1.28.0 ports/esp32/modesp32.c). As
on the chips: the C3 (and S2, S3) has mcu_temperature(), Celsius, rounded to an int; the
original ESP32 has raw_temperature(), Fahrenheit, uncalibrated. Which: $SIM_CHIP. The die warms
and cools by a degree or so around 30 C. MicroPython only."""

import time

import _simlink

HEAP_DATA = 4  # MALLOC_CAP_8BIT
HEAP_EXEC = 1  # MALLOC_CAP_EXEC
WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True


def _celsius():
    t = time.ticks_ms() // 1000 % 20  # a 20 s swing, 29..31 C
    return 29.0 + (t if t < 10 else 20 - t) / 5


if _simlink.CHIP == "esp32":

    def raw_temperature():
        return int(_celsius() * 1.8 + 32)

else:

    def mcu_temperature():
        return int(_celsius() + 0.5)


def idf_heap_info(capabilities):
    # (total, free, largest free block, minimum free) per IDF heap region: one region here
    return [(240000, 120000, 110000, 100000)] if capabilities & (HEAP_DATA | HEAP_EXEC) else []
