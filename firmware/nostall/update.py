# Firmware updates over HTTP (the app's side: no esp32 here; the board's is ota.py, reached through
# hw, board.py's Board). The image streams from the request into the other app slot, 1 KB at a
# time through one buffer, checked as it comes (appimage.py: magic and chip at byte 24, then the
# checksum and SHA-256); only a complete, valid image is handed to the bootloader, and the board
# resets into it. Until the new firmware has served a request within health_window_ms of its
# start (board.py) it is on trial: a reset, a crash or a failed check returns to the last one.
#
#     PUT /api/update/firmware   the build's micropython.bin (X-SHA256: its SHA-256, optional);
#                                200 {"result": "ok", "slot", ...}, then the reset
#     PUT /api/update/app        an app bundle (appupdate.py); 200, then the reset
#     GET /api/update            versions, slots, what is pending, the last update's result
#
# app.py registers the routes; this module loads with the first request to one.

import hashlib

from nostall import VERSION
from nostall.request import HTTPError

RESET_DELAY_MS = 500  # after the answer: time for it to reach the client before the reset
PIECE_BYTES = 1024  # read and written at a time (a quarter of a flash block)
_ESP_ERR_OTA_VALIDATE_FAILED = -5379
busy = []  # an update in progress (one at a time; appupdate.py's too)


def body_of(req, what):
    """An update's body stream: HTTPError 409 while another update runs, 400 without a body."""
    if busy:
        raise HTTPError(409, "an update is in progress")
    if req.stream is None:
        raise HTTPError(400, "send %s as the body" % what)
    return req.stream


async def put_firmware(hw, req):
    stream = body_of(req, "the app image (the build's micropython.bin)")
    try:
        slot = hw.firmware_slot()
    except OSError:
        raise HTTPError(409, "this firmware's partition table has no second app slot: flash an OTA build once by USB")
    if stream.length is not None and stream.length > slot.size:
        raise HTTPError(413, "the image (%d bytes) is larger than %s (%d bytes)" % (stream.length, slot.label, slot.size))
    from nostall.appimage import AppImage, ImageError  # loaded by the first image (not by GET /api/update)

    try:
        image = AppImage(hw.chip_id(), slot.size, req.headers.get("x-sha256"))
    except ValueError:
        raise HTTPError(400, "X-SHA256 must be 64 hex digits")
    busy.append(slot)
    try:
        sha256 = await _write(stream, image, slot, hw, ImageError)
    finally:
        busy.pop()
    hw.update_done("firmware", "pending", slot.label, "written, %d bytes; on trial after the reset" % image.size, slot.label)
    hw.reset_soon(RESET_DELAY_MS)
    desc = image.desc or {}
    return {"result": "ok", "kind": "firmware", "slot": slot.label, "size": image.size,
            "sha256": sha256, "image_version": desc.get("version", ""), "resetting_in_ms": RESET_DELAY_MS}


async def _write(stream, image, slot, hw, ImageError):
    # 1 KB at a time: on the real port a 4 KB buffer made MicroPython grow its heap by ESP-IDF's
    # largest free block (the C3's heap after start-up has no 4 KB free in one piece), leaving
    # lwIP and the network driver 18 KB (host_tests/qemu/test_qemu_ota.py watches it)
    piece = bytearray(PIECE_BYTES)
    mv = memoryview(piece)
    at = 0  # where the next piece goes in the slot
    whole = hashlib.sha256()  # the file's, for the answer (the image's own is checked by image)
    try:
        while True:
            n = await stream.readinto(piece)
            if not n:
                break
            image.feed(mv[:n])
            whole.update(mv[:n])
            slot.write(at, mv[:n])
            at += n
        image.finish()
        slot.set_boot()
        return "".join(["%02x" % c for c in whole.digest()])
    except ImageError as e:
        hw.update_done("firmware", "refused", slot.label, str(e))
        raise HTTPError(400, "image refused (%s): %s" % (e.reason, e))
    except OSError as e:
        if e.args and e.args[0] == _ESP_ERR_OTA_VALIDATE_FAILED:
            hw.update_done("firmware", "refused", slot.label, "ESP-IDF's check failed")
            raise HTTPError(400, "image refused by ESP-IDF's check (ESP_ERR_OTA_VALIDATE_FAILED)")
        hw.update_done("firmware", "interrupted", slot.label, repr(e))
        raise
    except BaseException as e:  # the client gone (EOFError), a timeout (cancelled): nothing switched
        hw.update_done("firmware", "interrupted", slot.label, "%s after %d bytes" % (type(e).__name__, image.received))
        raise


def info(hw, req):
    rec = hw.update
    running, boot, nxt = hw.slots()
    st = hw.app_state
    app = {"active": st.get("active"), "previous": st.get("previous"), "trial": bool(st.get("trial")),
           "version": st.get("version") if st.get("active") else VERSION}
    return ({"version": VERSION, "firmware": hw.firmware, "running": running, "boot": boot, "next": nxt,
             "pending": rec.get("pending"), "last": rec.get("last"), "boot_count": rec.get("boot_count", 0),
             "reset_cause": hw.reset_cause, "app": app}, 200, (("Cache-Control", "no-store"),))
