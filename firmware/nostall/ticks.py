# Millisecond ticks: MicroPython's wrapping time.ticks_* on a board; plain integers on CPython,
# where the unit tests run the pool and the stats with a fake clock.
# pyright: reportAssignmentType=false, reportAttributeAccessIssue=false
# (the board's stubs type the real ones; the CPython stand-ins below are never on a board)

try:
    from time import ticks_add, ticks_diff, ticks_ms
except ImportError:  # CPython
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_add(t, delta):
        return t + delta

    def ticks_diff(a, b):
        return a - b

