# The test apps (host_tests/apps*/app.py) shadow firmware/app.py on the sim board; this loads the
# real one under another name (they are all called app) so they can add routes to it.

import sys


def make_real_app(hw):
    fw = [p for p in sys.path if p.endswith("/firmware")][0]
    ns = {"__name__": "real_app"}
    with open(fw + "/app.py") as f:
        exec(f.read(), ns)
    return ns["make_app"](hw)
