# The test apps (host_tests/apps*/app.py) shadow firmware/app.py on the sim board; this loads the
# real one too (both are called app) so they can add routes to it. It is on the sim's flash, as on
# a board's: /app.py (harness/simrun.py links the firmware's files there). Imported, not exec()'d
# from a string: the lexer reads the file in small pieces, where exec(f.read()) needed its 4.6 KB
# in one piece of a heap still fragmented by start-up (a MemoryError, depending on paths' lengths).
import sys


def make_real_app(hw):
    shadow = sys.modules.pop("app")
    path = sys.path[:]
    sys.path[:] = [""] + [p for p in path if p != ""]  # the flash first: its /app.py
    try:
        import app as real
    finally:
        sys.path[:] = path
        sys.modules["app"] = shadow
    return real.make_app(hw)
