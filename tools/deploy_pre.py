#!/usr/bin/env python3
"""Write the script `make deploy` runs on the board (mpremote run) before it copies the files: a
module's old .py would shadow the new .mpy (MicroPython imports a .py before a .mpy of the same
name), so the script removes the .py twins of the modules being copied as .mpy.

    python3 tools/deploy_pre.py --out build/deploy-ESP32_GENERIC_C3.pre.py app.py nostall/web.py ...
"""

import argparse
import sys

# Runs on the board: plain MicroPython, nothing it lacks.
TEMPLATE = """\
# Written by tools/deploy_pre.py (make deploy): removes the .py twins of the modules being
# copied as .mpy, which MicroPython would import instead.
import os
for p in (%s):
    try:
        os.remove(p)
    except OSError:
        pass
"""


def script(twins):
    """The board-side script removing these paths (relative to the board's root)."""
    for p in twins:
        if not p.endswith(".py") or '"' in p or "\\" in p:
            raise ValueError("not a module path: %r" % p)
    return TEMPLATE % " ".join('"%s",' % p for p in twins)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="the script to write")
    ap.add_argument("twins", nargs="*", help="the .py files to remove on the board (main.py is never one)")
    a = ap.parse_args(argv)
    if "main.py" in a.twins:
        ap.error("main.py is deployed as source: it must not be removed")
    with open(a.out, "w") as f:
        f.write(script(a.twins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
