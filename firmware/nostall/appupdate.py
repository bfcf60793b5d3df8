# App updates over HTTP (issue 19): the firmware's Python as a bundle, PUT /api/update/app. Works
# on stock MicroPython: no OTA partitions needed. A bundle is a ustar tar whose first member,
# manifest.json, names every file and its SHA-256 ({"format": 1, "version": ..., "files": {path:
# sha256}}; host_tests/harness/appbundle.py makes one); main.py is never in it (it is the board's
# own: it chooses which copy runs). The files are written into /apps/new, each checked against
# its SHA-256 as it comes; only when every file named is there and right does /apps/new become
# /apps/<n>, and /app.json name it (written whole or not at all: board.py), so a cut upload or a
# bad file changes nothing. main.py runs it from the next boot, on trial as a firmware is
# (board.py): kept once it serves a request, else the copy before it comes back.

import os

from nostall.flash import free, mkdirs, rmtree
from nostall.request import HTTPError
from nostall.update import RESET_DELAY_MS, body_of, busy

APPS = "/apps"  # /apps/<n>: a copy of the firmware's Python; /apps/new while one is staged
MANIFEST_MAX = 16384  # bytes of manifest.json
_TAR_BLOCK = 512


async def put_app(hw, req):
    stream = body_of(req, "the app bundle (a tar with manifest.json first)")
    busy.append(APPS)
    stage = APPS + "/new"
    try:
        st = hw.app_state
        old = st.get("active")
        mkdirs(APPS)
        for name in os.listdir(APPS):  # room first: all but the running copy (a cut upload's too)
            if APPS + "/" + name != old:
                rmtree(APPS + "/" + name)
        if stream.length is not None and stream.length > free("/"):
            raise HTTPError(507, "not enough space for the bundle: %d bytes free" % free("/"))
        mkdirs(stage)
        try:
            manifest = await _unpack(stream, stage)
        except HTTPError as e:
            hw.update_done("app", "refused", stage, e.reason)
            raise
        except BaseException as e:  # the client gone, a timeout: nothing switched
            hw.update_done("app", "interrupted", stage, "%s after %d bytes" % (type(e).__name__, stream.received))
            raise
        gen = st.get("gen", 0) + 1
        target = "%s/%d" % (APPS, gen)
        os.rename(stage, target)
        hw.set_app({"active": target, "previous": old, "trial": True, "boots": 0, "gen": gen,
                    "version": manifest.get("version", "")})
    finally:
        busy.pop()
        rmtree(stage)
    hw.update_done("app", "pending", target, "%d files; on trial after the reset" % len(manifest["files"]))
    hw.reset_soon(RESET_DELAY_MS)
    return {"result": "ok", "kind": "app", "dir": target, "version": manifest.get("version", ""),
            "files": len(manifest["files"]), "resetting_in_ms": RESET_DELAY_MS}


async def _unpack(stream, stage):
    # the tar (ustar) into stage: manifest.json first, then each file it names, checked
    import hashlib
    import json

    head = bytearray(_TAR_BLOCK)
    block = bytearray(_TAR_BLOCK * 2)
    mv = memoryview(block)
    manifest = None
    seen = 0
    while True:
        if await stream.readinto(head) < _TAR_BLOCK:
            raise HTTPError(400, "bundle ends in the middle of a tar header")
        if not any(head):
            break  # the end-of-archive blocks
        name, size, kind = _tar_header(head)
        if manifest is None:
            if name != "manifest.json" or size > MANIFEST_MAX:
                raise HTTPError(400, "the bundle's first member must be manifest.json (at most %d bytes)" % MANIFEST_MAX)
            # through a file, parsed as it is read back: no buffer of its size (on the real port a
            # few KB in one piece can make MicroPython take ESP-IDF's largest free block)
            path = stage + "/.manifest.json"
            with open(path, "wb") as f:
                left = size
                while left:
                    n = await stream.readinto(mv[: min(left, len(block))])
                    if not n:
                        raise HTTPError(400, "bundle ends inside manifest.json")
                    f.write(mv[:n])
                    left -= n
            await _skip(stream, -size % _TAR_BLOCK, mv)
            try:
                with open(path) as f:
                    manifest = json.load(f)
                os.remove(path)
                files = manifest["files"]
                if not isinstance(files, dict) or not files:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise HTTPError(400, 'manifest.json must be {"version": ..., "files": {path: sha256}}')
            if "start.py" not in files and "start.mpy" not in files:
                raise HTTPError(400, "the bundle has no start.py or start.mpy: it would not run")
            continue
        if kind == 53:  # "5": a folder
            continue
        if kind not in (48, 0):  # "0" or NUL: a regular file; anything else is not in a bundle
            raise HTTPError(400, "%s: only files and folders belong in a bundle" % name)
        want = manifest["files"].get(name)
        if want is None:
            raise HTTPError(400, "%s is not in manifest.json" % name)
        _check_name(name)
        path = stage + "/" + name
        mkdirs(path.rpartition("/")[0])
        h = hashlib.sha256()
        left = size
        with open(path, "wb") as f:
            while left:
                n = await stream.readinto(mv[: min(left, len(block))])
                if not n:
                    raise HTTPError(400, "bundle ends inside %s" % name)
                f.write(mv[:n])
                h.update(mv[:n])
                left -= n
        if _hex(h.digest()) != want.lower():
            raise HTTPError(400, "%s: its SHA-256 is not the one manifest.json names" % name)
        seen += 1
        await _skip(stream, -size % _TAR_BLOCK, mv)
    if manifest is None:
        raise HTTPError(400, "an empty bundle")
    if seen != len(manifest["files"]):
        raise HTTPError(400, "the bundle lacks %d of the files manifest.json names" % (len(manifest["files"]) - seen))
    while await stream.readinto(mv):  # what tar pads its end with
        pass
    return manifest


def _tar_header(h):
    # (path, size, type byte) of a ustar header; HTTPError for one that is not
    if bytes(h[257:262]) != b"ustar":
        raise HTTPError(400, "not a ustar tar")
    chk = sum(h[:148]) + 8 * 32 + sum(h[156:])
    size = 0
    try:
        size = int(bytes(h[124:136]).rstrip(b"\0 ") or b"0", 8)
        ok = int(bytes(h[148:156]).rstrip(b"\0 ") or b"0", 8) == chk
    except ValueError:
        ok = False
    if not ok:
        raise HTTPError(400, "a damaged tar header")
    name = _cstr(h[0:100])
    prefix = _cstr(h[345:500])
    return (prefix + "/" + name if prefix else name), size, h[156]


def _cstr(b):
    b = bytes(b)
    i = b.find(b"\0")
    return (b if i < 0 else b[:i]).decode()


def _check_name(name):
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or ".." in parts or "." in parts or "" in parts:
        raise HTTPError(400, "%s: not a path inside the bundle" % name)
    if name in ("main.py", "main.mpy"):
        raise HTTPError(400, "main.py is the board's own (it chooses the copy that runs): leave it out")


async def _skip(stream, n, mv):
    while n:
        k = await stream.readinto(mv[:n])
        if not k:
            return
        n -= k


def _hex(b):
    return "".join(["%02x" % c for c in b])
