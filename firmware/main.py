# The board's first Python: which copy of the firmware's Python runs. Normally the flash's own
# (what `make deploy` or `make build` put there). An app update (PUT /api/update/app, see
# nostall/update.py) writes a whole new copy into a folder of its own, /apps/<n>, and names it in
# /app.json; this file is never part of an update. The new copy runs on trial: if it cannot start
# (an import or start-up error), or the board resets before it has served a request (a crash, a
# hang the watchdog ends, a failed health check: board.py), the last copy is back by the next
# boot. The boot counter that decides it is in /app.json, so it survives resets.

import gc
import sys

import jsonfile

APP_STATE = "/app.json"  # {"active": dir or null, "previous": dir or null, "trial", "boots", "version", "gen"}
UPDATE_PATH = "/update.json"  # board.py's record of updates: where a rollback is told
START_GC_EVERY = 4096  # bytes allocated between collections while the firmware starts


def _back(st, why):
    # the copy on trial failed: the one before it runs from now on
    failed = st.get("active")
    st["active"] = st.get("previous")
    st["previous"] = None
    st["trial"] = False
    st["boots"] = 0
    jsonfile.write(APP_STATE, st)
    rec = jsonfile.read(UPDATE_PATH) or {}
    rec["last"] = {"kind": "app", "result": "rolled_back", "slot": failed,
                   "detail": "%s: back on %s" % (why, st["active"] or "the flash's own")}
    jsonfile.write(UPDATE_PATH, rec)
    print("nostall: app update %s rolled back: %s" % (failed, why))


def _choose():
    st = jsonfile.read(APP_STATE)
    if not st or not st.get("active"):
        return None, st
    if st.get("trial"):
        if st.get("boots", 0) >= 1:  # it started before and the board reset before its check passed
            rec = jsonfile.read(UPDATE_PATH) or {}
            last = rec.get("last") or {}
            _back(st, "it failed its health check" if last.get("result") == "health_check_failed"
                  else "the board reset before it served a request")
            return st.get("active"), st
        st["boots"] = 1
        jsonfile.write(APP_STATE, st)
    return st["active"], st


def _run():
    # Start-up collects often, so what it keeps is packed at the bottom of the heap and the free
    # room after it is in one piece: else MicroPython fills its heap to the top before its first
    # collection, what is kept is strewn over all of it, and later a few KB in one piece (a module
    # loaded at its first use, a buffer) are not to be had. On the esp32 port that makes it grow
    # its heap by ESP-IDF's largest free block, leaving lwIP and the network driver 18 KB (the
    # QEMU C3). start.main() sets the threshold back once the server is built.
    gc.threshold(START_GC_EVERY)
    active, st = _choose()
    if active:
        # that copy only: not the flash's own modules beside it (no mix of two versions)
        sys.path[:] = [active] + [p for p in sys.path if p not in ("", "/")]
    try:
        import start

        start.main()
    except Exception as e:
        if not (st and st.get("trial")):
            raise
        sys.print_exception(e)  # pyright: ignore[reportAttributeAccessIssue] - MicroPython's
        _back(st, "it failed to start: %r" % e)
        import machine

        machine.reset()


_run()
