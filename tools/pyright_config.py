#!/usr/bin/env python3
"""Write the pyright config `make typecheck` checks firmware/ with: pyright's defaults, with the
board's stubs as the whole world (typeshedPath: MicroPython's own stdlib, not CPython's), except
the Optional-access rules: untyped firmware code sets attributes to None in __init__ and fills
them later, which pyright cannot follow. Everything else, notably unknown attributes of
machine/network/esp32 and wrong calls, is an error.

    python3 tools/pyright_config.py --stubs .venv/stubs/ESP32_GENERIC_C3 --firmware firmware \\
        --out build/pyright-ESP32_GENERIC_C3/pyrightconfig.json
"""

import argparse
import json
import os
import sys

OPTIONAL_RULES = ("reportOptionalMemberAccess", "reportOptionalSubscript", "reportOptionalIterable",
                  "reportOptionalCall", "reportOptionalOperand", "reportOptionalContextManager")


def config(stubs, firmware):
    """The config as a dict (absolute paths)."""
    cfg = {
        "typeshedPath": os.path.abspath(stubs),
        "stubPath": os.path.abspath(stubs),
        "extraPaths": [os.path.abspath(firmware)],
        "reportMissingModuleSource": "none",
    }
    cfg.update((rule, "none") for rule in OPTIONAL_RULES)
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stubs", required=True, help="the board's MicroPython stubs (installed by pip --target)")
    ap.add_argument("--firmware", required=True, help="the firmware source dir")
    ap.add_argument("--out", required=True, help="pyrightconfig.json to write (its dir is created)")
    a = ap.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(config(a.stubs, a.firmware), f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
