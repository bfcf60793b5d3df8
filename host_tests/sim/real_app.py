# The test apps (host_tests/apps*/app.py) shadow firmware/app.py on the sim board; this loads the
# real one under another name (they are all called app) so they can add routes to it. The sim
# board's launcher (harness/simboard.py) names the firmware dir in SIM_FIRMWARE.

import os


def make_real_app(hw):
    ns = {"__name__": "real_app"}
    with open(os.getenv("SIM_FIRMWARE") + "/app.py") as f:
        exec(f.read(), ns)
    return ns["make_app"](hw)
