#!/usr/bin/env python3
"""Stand-in for idf.py, esptool and mpremote in host_tests/build/test_build.py (no board, no
ESP-IDF here).

Called through the links in bin/, it appends {"tool": <name>, "argv": [...], "cwd": ...} as one
JSON line to $SHIM_LOG and exits 0. `idf.py --version` answers like ESP-IDF does, with the
version in $FAKE_IDF_VERSION (default v5.5.1).
"""
import json
import os
import sys

tool = os.path.basename(sys.argv[0])
log = os.environ.get("SHIM_LOG")
if log:
    with open(log, "a") as f:
        f.write(json.dumps({"tool": tool, "argv": sys.argv[1:], "cwd": os.getcwd()}) + "\n")
if tool == "idf.py" and "--version" in sys.argv[1:]:
    print("ESP-IDF " + os.environ.get("FAKE_IDF_VERSION", "v5.5.1"))
