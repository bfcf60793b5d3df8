"""`make ota`: what is sent, told apart by content and checked on this host before any board is
asked (harness/ota.py). An ESP-IDF app image (first byte 0xE9 with an esp_app_desc_t: the
build's micropython.bin, not the merged firmware.bin) is checked whole by nostall.appimage
(header, checksum, appended SHA-256); a tar whose first member is manifest.json is an app
bundle; anything else is refused. Also what a board says it is: its chip, and whether the image's
version is lower than the one it runs."""

import hashlib
import json
import os
import re
import tarfile

from nostall import appimage

MAX_IMAGE_BYTES = 16 * 1024 * 1024  # the largest flash; the board's slot size is the board's to judge (413)
MANIFEST_BYTES = 65536  # at most this much of an app bundle's manifest.json is read
_PIECE = 65536  # one read of the file while it is hashed


class UsageError(Exception):
    """Something on the command line or in a named file that stops the run before any board is
    asked: one line for a person."""


class Image:
    """The file to send, inspected once: kind ("firmware" or "app"), size, sha256 (hex), version
    ("" when it has none), chip (esp_chip_id_t of a firmware image, else None)."""

    def __init__(self, path, kind, size, sha256, version, chip=None):
        self.path, self.kind, self.size, self.sha256 = path, kind, size, sha256
        self.version, self.chip = version, chip


def inspect(path):
    """The file at path as an Image; UsageError (one line) when it is neither kind or is broken."""
    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except FileNotFoundError:
        raise UsageError("no such file: %s" % path) from None
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e.strerror or e)) from None
    if head == bytes([appimage.MAGIC]):
        return _inspect_firmware(path)
    if _is_bundle(path):
        return _inspect_bundle(path)
    raise UsageError("%s is neither an ESP-IDF app image (first byte 0xE9 with an app description: the build's "
                     "micropython.bin) nor an app bundle (a tar whose first member is manifest.json)" % path)


def _sha256_of(path, feed=None):
    """The file's SHA-256 (hex), each piece also given to feed() when there is one."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(_PIECE), b""):
            sha.update(piece)
            if feed is not None:
                feed(piece)
    return sha.hexdigest()


def _inspect_firmware(path):
    img = appimage.AppImage(max_size=MAX_IMAGE_BYTES)
    try:
        sha = _sha256_of(path, img.feed)
        img.finish()
    except appimage.ImageError as e:
        if e.reason == "bootloader":
            raise UsageError("%s starts with a bootloader (the merged firmware.bin?): send the app image, the build's "
                             "micropython.bin" % path) from None
        if e.reason == "not_app" and img.received <= 512:
            raise UsageError("%s is not an ESP-IDF app image: %s" % (path, e)) from None
        raise UsageError("%s: a broken app image, not sent: %s" % (path, e)) from None
    return Image(path, "firmware", img.size, sha, img.desc["version"], img.chip_id)


def _is_bundle(path):
    try:
        with tarfile.open(path, "r:") as t:
            first = t.next()
    except (tarfile.TarError, OSError, EOFError):
        return False
    return first is not None and first.name.lstrip("./") == "manifest.json"


def _inspect_bundle(path):
    with tarfile.open(path, "r:") as t:
        m = t.extractfile(t.next())
        raw = m.read(MANIFEST_BYTES) if m is not None else b""
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise UsageError("%s: an app bundle whose manifest.json is not JSON" % path) from None
    version = manifest.get("version", "") if isinstance(manifest, dict) else ""
    return Image(path, "app", os.path.getsize(path), _sha256_of(path), str(version or ""))


def parse_version(s):
    """"v1.2.3", "1.2", "0.1.0-rc1+dirty" -> (1, 2, 3), (1, 2), (0, 1, 0); None when it has no
    leading number (an image built without a version, a git hash)."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", s or "")
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def is_downgrade(new, old):
    """True when both versions parse and new is lower; None when either does not parse."""
    a, b = parse_version(new), parse_version(old)
    if a is None or b is None:
        return None
    n = max(len(a), len(b))
    return a + (0,) * (n - len(a)) < b + (0,) * (n - len(b))


_CHIP_NAMES = {v.replace("esp32", "ESP32").replace("-", ""): k for k, v in appimage.CHIPS.items()}


def chip_of(board):
    """esp_chip_id_t from /status "board" (MicroPython's sys.implementation._machine, e.g.
    "ESP32C3 module with ESP32C3", "Generic ESP32 module with ESP32") or a chip name ("esp32c3",
    "ESP32-C3"); None when it names no ESP32 (the sim board: the unix port)."""
    if isinstance(board, int):
        return board
    if not isinstance(board, str):
        return None
    s = board.upper().replace("-", "").replace("_", "")
    if " WITH " in s:  # "<board name> with <MCU name>": the MCU is what counts
        s = s.rsplit(" WITH ", 1)[1]
    found = [name for name in _CHIP_NAMES if re.search(r"(?<![A-Z0-9])" + name.upper() + r"(?![A-Z0-9])", s)]
    return _CHIP_NAMES[max(found, key=len)] if found else None  # "ESP32C3" over "ESP32"
