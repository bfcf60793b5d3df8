# The test apps (host_tests/apps*/app.py) shadow firmware/app.py on the sim board; this loads the
# real one under another name (they are all called app) so they can add routes to it. It is on
# the sim's flash, as on a board's: /app.py (harness/simrun.py links the firmware's files there).


def make_real_app(hw):
    ns = {"__name__": "real_app"}
    with open("/app.py") as f:
        exec(f.read(), ns)
    return ns["make_app"](hw)
