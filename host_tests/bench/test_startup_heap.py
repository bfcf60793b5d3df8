"""What start-up loads and keeps (issue 18: what an app does not use costs nothing until first
used), through harness.heapmods, the tool `make bench` measures the heap after start-up with: the
default firmware's start-up imports no module that only a feature needs, judged on the sources
(module-level imports from main.py, start.py and app.py) and on the MicroPython unix port (what
app.make_app() and Server() import)."""

from harness import heapmods, micropython
from harness.paths import FIRMWARE

# loaded by a feature's first use (or, for settings and bounds, run once by start.py and dropped)
FEATURE_MODULES = ("appimage", "appupdate", "auth", "body", "bodystream", "bounds", "escapes", "events", "files",
                   "flash", "metrics", "multipart", "settings", "static", "status", "turnaway", "update", "words",
                   "websocket", "wsproto")


def test_start_up_imports_no_feature_module():
    start = heapmods.import_order(FIRMWARE, heapmods.start_up_roots(FIRMWARE))
    assert "nostall.server" in start and "nostall.web" in start, start
    assert [m for m in start if m.rsplit(".", 1)[-1] in FEATURE_MODULES] == []


def test_the_default_app_and_its_server_load_nothing_more():
    (_, notes), _ = heapmods.probe(micropython.binary(), FIRMWARE, FIRMWARE)
    assert "loaded-by-make_app []" in notes and "loaded-by-server []" in notes, notes
