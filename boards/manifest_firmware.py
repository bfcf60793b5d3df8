# Freezes this project's firmware/ into the image; each board's manifest.py includes it.
# The manifest tool runs a manifest from its own directory, so paths here are relative to boards/.
# Every top-level module (main.py, app.py, board.py, ...) and every package (a directory with an
# __init__.py, e.g. nostall/) is frozen; static files (www/) and settings cannot be frozen and
# are copied to the board's filesystem by `make deploy-data`.
import os

_FIRMWARE = "../firmware"

for _name in sorted(os.listdir(_FIRMWARE)):
    if _name.endswith(".py"):
        module(_name, base_path=_FIRMWARE)
    elif os.path.isfile(os.path.join(_FIRMWARE, _name, "__init__.py")):
        package(_name, base_path=_FIRMWARE)
