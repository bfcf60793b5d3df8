# Small JSON files on flash (/app.json, /update.json), read and written whole: a reset mid-write
# leaves the last version. main.py loads it first (before it chooses which copy of the firmware's
# Python runs), and board.py uses the same one.

import json
import os


def read(path):
    """The file's JSON, or None when there is none or it is not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write(path, d):
    with open(path + ".tmp", "w") as f:
        json.dump(d, f)
    os.rename(path + ".tmp", path)
