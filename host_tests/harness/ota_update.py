"""`make ota`: one board's update, step by step (harness/ota.py), to its line of the summary (a
Row). GET /status and GET /api/update (version, chip, slots); a chip that differs from the
image's, a board without OTA, or a lower version than the board's (when both parse; --force
installs it) is refused here, before the upload; then the upload (harness.ota_board), the
board's answer checked, and the wait until it came back healthy, and its version after."""

import json
import time

from harness.ota_board import Board, Failed, refusal, short, why
from harness.ota_image import chip_of, is_downgrade
from harness.ota_targets import name_of
from nostall import appimage


class Row:
    """One line of the summary: board, before, after, slot, result ("ok" or why not), seconds."""

    def __init__(self, board):
        self.board, self.before, self.after, self.slot, self.result, self.seconds = board, "", "", "", "", 0.0

    @property
    def ok(self):
        return self.result == "ok"


def update_one(target, image, opts, say, bars):
    """Update one board; its Row (result "ok" only when it came back healthy)."""
    b = Board(target, opts)
    row = Row(name_of(target))
    t0 = time.monotonic()
    try:
        _update(b, row, image, opts, lambda msg: say(row.board, msg), bars)
        row.result = "ok"
    except Failed as e:
        row.result = e.result
        say(row.board, "FAILED: %s" % e)
    except Exception as e:  # a bug or a board answering nonsense: this board fails, the others go on
        row.result = "error"
        say(row.board, "FAILED: %s" % why(e))
    row.seconds = time.monotonic() - t0
    return row


def _update(b, row, image, opts, say, bars):
    status, state, board_version = _check(b, row, image, opts)
    say("%s %s -> %s, running %s on %s" % (image.kind, board_version, image.version or "(no version)",
                                            state.get("running", "?"), status.get("board", "?")))

    with bars.bar(row.board, image.size) as bar:
        code, reason, body = b.put(image, bar)
    if code != 200:
        raise Failed(*refusal(image, code, reason, body))
    try:
        done = json.loads(body)
    except ValueError:
        raise Failed("error", "the board answered 200 with no JSON: %s" % short(body)) from None
    if not isinstance(done, dict) or done.get("result") != "ok":
        raise Failed("error", "the board answered 200 with %s" % short(body))
    if done.get("sha256") and done["sha256"].lower() != image.sha256:
        raise Failed("sha256", "the board wrote a file with SHA-256 %s, not this one (%s)" % (
            done["sha256"], image.sha256))
    row.slot = str(done.get("slot") or "")
    say("written%s (%s bytes), the board resets in %s ms; waiting up to %d s for it to come back healthy" % (
        " to " + row.slot if row.slot else "", done.get("size", image.size), done.get("resetting_in_ms", "?"),
        opts.timeout))
    reset_ms = done.get("resetting_in_ms")
    reset_s = min(reset_ms / 1000.0, 10.0) if isinstance(reset_ms, (int, float)) and reset_ms > 0 else 0.3
    state = b.wait_healthy(row.slot or None, state, reset_s)
    after = b.status_after()
    row.after = str(after.get("firmware_version", "?")) if isinstance(after, dict) else "?"
    say("healthy: running %s, version %s -> %s" % (state.get("running"), row.before, row.after))


def _check(b, row, image, opts):
    """What the board says it is (row.before set) -> (its /status, its /api/update, the version
    the image replaces); Failed when the image is not for it."""
    code, status = b.ask("/status")
    if code != 200 or not isinstance(status, dict):
        raise Failed("unreachable", "%s/status answered %s, not JSON" % (b.url, code))
    row.before = str(status.get("firmware_version", "?"))
    code, state = b.ask("/api/update")
    if code == 404:
        raise Failed("no OTA", "the board's firmware takes no updates (GET /api/update: 404): flash it once by cable "
                     "(make build flash)")
    if code != 200 or not isinstance(state, dict):
        raise Failed("error", "GET /api/update answered %s, not JSON" % code)
    board_chip = chip_of(state.get("chip"))
    if board_chip is None:
        board_chip = chip_of(status.get("board"))
    if image.kind == "firmware":
        if board_chip is not None and board_chip != image.chip:
            raise Failed("wrong chip", "the image is for %s, the board is %s (%s): not sent" % (
                appimage.chip_name(image.chip), appimage.chip_name(board_chip), status.get("board")))
        if "next" in state and state["next"] is None:
            raise Failed("no OTA", "the board has no OTA partition table (GET /api/update: next is null): flash it "
                         "once by cable (make build flash)")
    board_version = str(state.get("version") or row.before) if image.kind == "firmware" else row.before
    down = is_downgrade(image.version, board_version)
    if down and not opts.force:
        raise Failed("downgrade", "the image is %s, the board runs %s: a downgrade, not sent (FORCE=1 sends it)" % (
            image.version, board_version))
    return status, state, board_version
