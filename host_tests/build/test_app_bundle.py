"""make app-bundle (issue 19): the firmware's Python as PUT /api/update/app takes it: a ustar tar,
manifest.json first naming every file with its SHA-256, the modules compiled for the board's CPU,
main.py (the board's own loader) left out; a bad BOARD is one line."""

import hashlib
import json
import subprocess
import tarfile

from harness.paths import ROOT


def test_make_app_bundle_for_a_c3(tmp_path):
    out = subprocess.run(["make", "-s", "app-bundle", "BOARD=ESP32_GENERIC_C3", "BUILD_ROOT=%s" % tmp_path],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    with tarfile.open(tmp_path / "app-ESP32_GENERIC_C3.tar") as tar:
        members = tar.getmembers()
        assert members[0].name == "manifest.json"
        manifest = json.load(tar.extractfile(members[0]))
        names = [m.name for m in members[1:]]
        assert sorted(names) == sorted(manifest["files"]) and "start.mpy" in names and "nostall/web.mpy" in names
        assert not [n for n in names if n.startswith("main.") or n.endswith(".py") or n.startswith("www/")]
        for m in members[1:]:
            data = tar.extractfile(m).read()
            assert hashlib.sha256(data).hexdigest() == manifest["files"][m.name]
            assert data[:2] == b"M\x06"  # .mpy v6
    assert members[0].size < 16384


def test_a_bad_board_is_one_line(tmp_path):
    out = subprocess.run(["make", "-s", "app-bundle", "BOARD=ESP32_NOPE", "BUILD_ROOT=%s" % tmp_path],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "unknown board ESP32_NOPE: BOARD must be ESP32_GENERIC_C3 or ESP32_GENERIC" in out.stderr
