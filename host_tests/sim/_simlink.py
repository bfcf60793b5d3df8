"""The sim board's control channel: how the fakes of the ESP32 port's modules in this folder
(network, machine, esp32) learn what the test scripts, and tell the runner what the board did.
The runner's side is host_tests/harness/simrun.py (SimBoard.radio(), .events, .restarts).
MicroPython only (the unix port).

In: the radio script, $SIM_HOME/radio.json, a JSON object the runner replaces atomically; the
fakes re-read it when it changes. Each script starts afresh (its counts and times from its own
t0_ns). Keys, all optional but the access point's:
    ssid, password  the access point in range: what wlan.connect() must name and say
    in_range        false: no access point is heard (joins fail NO_AP_FOUND, a link drops)
    ip, netmask, gateway, dns  what DHCP hands out (default 127.0.0.1/8). Only a label: the
                    board's sockets are on the host's loopback whatever it says (socket.py)
    rssi            dBm, for status('rssi') and scan() (default -60)
    join_ms         how long a join that works takes, association and DHCP (default 100)
    fail_ms         how long a join that fails takes (default 300)
    fail_joins      the first N wlan.connect() calls under this script fail, and so do the
                    port's own re-tries after each of them (default 0)
    fail_status     the reason they fail with, a network.STAT_* value (default STAT_NO_AP_FOUND)
    drop_after_s    the access point goes away this long after t0_ns (the link drops,
                    STAT_BEACON_TIMEOUT) ...
    down_s          ... for this long (default 5); then the port's re-tries find it again
    ip_after        the address DHCP hands out after that (default: ip)
    ap_stations     stations joined to the board's own access point (AP_IF), default 0
    scan_ms         how long wlan.scan() blocks (default 1500, as a scan of every channel)
    ntp_fail        the first N NTP queries (ntptime.py) get no answer; true: none ever does
                    (default 0)
    t0_ns           when the script was written, time.time_ns() (the runner sets it)

Out: events, one line each, "<kind> <args>", on the pipe whose fd is $SIM_EVENTS_FD:
    wdt <timeout_ms>   a machine.WDT was made (the runner resets the board when no feed comes
    feed               within the timeout: the loop is blocked); a feed
    reset <cause> <sleep_ms>  machine.reset()/soft_reset()/deepsleep(): see restart()
    connect <ssid>     wlan.connect() was called;  up <ip> / down <status>  the link
    pin <id> <value>   an output pin changed (the LED)
    ntp <host>         an NTP query (ntptime.time())

Resets: restart() ends the process with exit code 64 + the cause machine.reset_cause() gives
after it (the port's values: HARD_RESET 2 after machine.reset(), ...). The runner starts the
board again, on the same flash, with $SIM_RESET_CAUSE set to that cause (WDT_RESET 3 after
it killed a board whose watchdog was not fed; PWRON_RESET 1 at first).
"""

import json
import os
import time

CHIP = os.getenv("SIM_CHIP") or "esp32c3"  # which ESP32's module set the fakes show: esp32c3, esp32
EXIT_RESET_BASE = 64

_HOME = os.getenv("SIM_HOME")
_FD = os.getenv("SIM_EVENTS_FD")
_out = [None]
_script = [None, {}, 0]  # (file identity, script, t0 in ticks_ms)


def event(*words):
    """Tell the runner (nothing happens without one)."""
    if _FD is None:
        return
    if _out[0] is None:
        _out[0] = open(int(_FD), "wb")  # unbuffered: each write is one write(2) (no flush: fsync)
    _out[0].write((" ".join([str(w) for w in words]) + "\n").encode())


def script():
    """The radio script in force and its t0 in ticks_ms: (script, t0)."""
    if _HOME is None:
        return _script[1], _script[2]
    path = _HOME + "/radio.json"
    try:
        st = os.stat(path)
    except OSError:
        return _script[1], _script[2]
    ident = (st[1], st[6], st[8])  # inode, size, mtime: the runner writes a new file each time
    if ident != _script[0]:
        try:
            with open(path) as f:
                d = json.loads(f.read())
        except (OSError, ValueError):
            return _script[1], _script[2]  # caught mid-write: the next call reads it
        age_ms = (time.time_ns() - d.get("t0_ns", time.time_ns())) // 1000000
        _script[0], _script[1], _script[2] = ident, d, time.ticks_add(time.ticks_ms(), -age_ms)
    return _script[1], _script[2]


def restart(cause, sleep_ms=0):
    """End this process as a reset does; the runner starts it again with reset_cause() == cause."""
    event("reset", cause, sleep_ms)
    raise SystemExit(EXIT_RESET_BASE + cause)
