#!/usr/bin/env python3
"""Write package.json, mip's package list for the server library: every file of firmware/nostall/
(URLs relative to package.json, so `mip.install("github:<owner>/<repo>")` and `mpremote mip install
./package.json` both work), the deps kept from the existing file, the version from nostall's
VERSION.

    python3 tools/package_json.py            # what `make package-json` runs, from the repo root
    python3 tools/package_json.py --check    # exit 1 if package.json is not what it would write
"""

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def render(root=ROOT, old=None):
    """The text of package.json for the checkout at root; old: the current file's content (a dict)."""
    old = old or {}
    with open(os.path.join(root, "firmware", "nostall", "__init__.py")) as f:
        version = re.search(r"^VERSION = \"([^\"]+)\"", f.read(), re.M)
    files = []
    for top, dirs, names in os.walk(os.path.join(root, "firmware", "nostall")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel = os.path.relpath(top, root)
        files += [os.path.join(rel, n) for n in sorted(names) if not n.endswith(".pyc")]
    urls = [[os.path.relpath(p, "firmware"), p] for p in files]
    return "{\n  \"urls\": [\n%s\n  ],\n  \"deps\": %s,\n  \"version\": %s\n}\n" % (
        ",\n".join("    " + json.dumps(u) for u in urls),
        json.dumps(old.get("deps", [])),
        json.dumps(version.group(1) if version else old.get("version", "0.1.0")))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=ROOT, help="the checkout (default: the one this file is in)")
    ap.add_argument("--check", action="store_true", help="only compare: exit 1 if package.json would change")
    a = ap.parse_args(argv)
    path = os.path.join(a.root, "package.json")
    old_text = None
    if os.path.exists(path):
        with open(path) as f:
            old_text = f.read()
    text = render(a.root, json.loads(old_text) if old_text else None)
    if a.check:
        if text != old_text:
            print("error: %s is out of date: run make package-json" % path, file=sys.stderr)
            return 1
        return 0
    with open(path, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
