"""The sim board's runner: its own folder (the flash and the radio script) and its MicroPython
process, started again as a board restarts. harness.simboard.SimBoard uses it; the board's side
of the channel (the fakes of the ESP32 port's modules, and what each key and event means) is
host_tests/sim/_simlink.py.

The flash: $SIM_HOME/flash holds links to the firmware's files, settings.json (the sim's
settings, with its port and Wi-Fi credentials) and www/; the board runs with it as its root
(sim/_simboot.py). It lives as long as the SimBoard: a restart finds the same files.

Resets: the board's process ends with exit code 64 + cause after machine.reset() and the like;
the runner starts it again with SIM_RESET_CAUSE=cause. The watchdog is the runner's: the fake
machine.WDT reports its timeout and each feed on the events pipe, and when a feed is late (the
board's event loop is blocked) the runner kills the process and starts it with WDT_RESET. A
board whose main.py ended while its watchdog ran is reset when the timeout runs out, as one
sitting at its REPL would be. Any other end is the end: SimBoard.stop() (SIGINT: the firmware's
own shutdown), a crash, main.py returning without a watchdog."""

import collections
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

from harness.emu import netns

EXIT_RESET_BASE = 64  # sim/_simlink.py
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5  # machine.*_RESET
CAUSES = {PWRON_RESET: "pwron", HARD_RESET: "hard", WDT_RESET: "wdt", DEEPSLEEP_RESET: "deepsleep",
          SOFT_RESET: "soft"}  # as firmware/board.py names them in /status
SIM_WIFI = {"ssid": "nostall-sim", "password": "sim-password"}  # settings without Wi-Fi get these
_DEEPSLEEP_MAX_S = 60  # a deep sleep longer than this wakes early on the sim
_SKIP = ("settings.json", "settings.example.json", "__pycache__")


def prepare_home(home, firmware, settings_path, port, www=None, radio=None):
    """Make the sim's folder: flash/ (the firmware linked in, settings.json, www/) and the radio
    script (the settings' access point, plus `radio`). Returns the settings written."""
    flash = os.path.join(home, "flash")
    os.makedirs(flash, exist_ok=True)
    for name in os.listdir(flash):  # links from an earlier start; files the board wrote stay
        if os.path.islink(os.path.join(flash, name)):
            os.unlink(os.path.join(flash, name))
    firmware = os.path.abspath(firmware)
    for name in os.listdir(firmware):
        if name not in _SKIP and not name.startswith(".") and not (www and name == "www"):
            os.symlink(os.path.join(firmware, name), os.path.join(flash, name))
    if www:
        os.symlink(os.path.abspath(www), os.path.join(flash, "www"))
    with open(settings_path) as f:
        settings = json.load(f)
    settings["http_port"] = port
    if not (settings.get("wifi") or {}).get("ssid"):
        settings["wifi"] = dict(SIM_WIFI)
    with open(os.path.join(flash, "settings.json"), "w") as f:
        json.dump(settings, f, indent=1)
    write_radio(home, settings, radio or {})
    return settings


def write_radio(home, settings, script):
    """Replace the radio script (atomically): the settings' access point, then `script`."""
    d = {"ssid": settings["wifi"]["ssid"], "password": settings["wifi"].get("password", "")}
    d.update(script)
    d["t0_ns"] = time.time_ns()
    tmp = os.path.join(home, "radio.json.tmp")
    with open(tmp, "w") as f:
        json.dump(d, f)
    os.replace(tmp, os.path.join(home, "radio.json"))


class Runner:
    """One sim board's processes. events: (monotonic time, kind, args) from the fakes;
    restarts: (monotonic time, cause) for each start after the first."""

    def __init__(self, argv, env, cwd, log=None):
        self.argv, self.env, self.cwd, self.log = argv, env, cwd, log
        self.proc = None
        self.events = collections.deque(maxlen=20000)
        self.restarts = []
        self.ended = threading.Event()  # no process runs, and none will
        self._lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()
        self._thread = None
        self._r = None

    def start(self):
        with netns.in_home_ns():  # also the supervisor's namespace: it starts the restarts
            self._spawn(PWRON_RESET)
            self._thread = threading.Thread(target=self._supervise, name="simrun", daemon=True)
            self._thread.start()
        return self.proc

    def stop(self, timeout=3.0):
        with self._lock:
            self._stopping = True
            p = self.proc
        self._stopped.set()
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGINT)  # KeyboardInterrupt: the firmware's own shutdown path
            try:
                p.wait(timeout)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                p.kill()
                p.wait()
        if self._thread is not None:
            self._thread.join(5)

    def note(self, line):
        line = "sim runner: %s\n" % line
        if self.log == "-" or self.log is None:
            if self.log == "-":
                sys.stderr.write(line)
            return
        with open(self.log, "a") as f:
            f.write(line)

    def _spawn(self, cause):
        r, w = os.pipe()
        env = dict(self.env, SIM_EVENTS_FD=str(w), SIM_RESET_CAUSE=str(cause))
        out = subprocess.DEVNULL if self.log is None else None if self.log == "-" else open(self.log, "ab")
        try:
            # a session of its own: a terminal's Ctrl-C reaches the runner, which passes on one SIGINT
            self.proc = subprocess.Popen(self.argv, env=env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                                         pass_fds=(w,), start_new_session=True)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
            if out not in (None, subprocess.DEVNULL):
                out.close()
        self._r = r

    def _supervise(self):
        try:
            while True:
                cause = self._watch(self.proc, self._r)
                with self._lock:
                    if cause is None or self._stopping:
                        return
                    self.note("starting again, as after a reset: reset_cause %s" % CAUSES[cause])
                    with netns.in_home_ns():
                        self._spawn(cause)
                    self.restarts.append((time.monotonic(), cause))
        finally:
            self.ended.set()

    def _watch(self, proc, r):
        """Follow one process to its end; the reset cause to start again with, or None."""
        wdt_ms, deadline, reset, buf = 0, None, None, b""
        try:
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline and not self._stopping:
                    self.note("watchdog: no feed for %d ms (the event loop is blocked): reset" % wdt_ms)
                    proc.kill()
                    proc.wait()
                    return WDT_RESET
                wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - now))
                if r is None:
                    if proc.poll() is not None:
                        break
                    time.sleep(wait)
                    continue
                if not select.select([r], [], [], wait)[0]:
                    continue
                data = os.read(r, 65536)
                if not data:  # every writer gone: the process has ended
                    os.close(r)
                    r = None
                    continue
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    kind, *args = line.decode(errors="replace").split(" ")
                    t = time.monotonic()
                    self.events.append((t, kind, args))
                    if kind == "wdt":
                        wdt_ms = int(args[0])
                    if kind in ("wdt", "feed") and wdt_ms:
                        deadline = t + wdt_ms / 1000
                    elif kind == "reset":
                        reset = (int(args[0]), int(args[1]))
        finally:
            if r is not None:
                os.close(r)
        proc.wait()
        code = proc.returncode
        if self._stopping:
            return None
        if reset is not None and code == EXIT_RESET_BASE + reset[0]:
            if reset[1]:
                self._stopped.wait(min(reset[1] / 1000, _DEEPSLEEP_MAX_S))  # asleep (stop() ends it)
            return reset[0]
        if deadline is not None:
            self.note("main.py ended (exit code %s) with the watchdog running: it fires" % code)
            self._stopped.wait(max(0.0, deadline - time.monotonic()))
            return None if self._stopping else WDT_RESET
        self.note("the board's main.py ended (exit code %s)" % code)
        return None

    def wait_restarts(self, n, timeout):
        """Wait until the board has started again n times in all; the restarts."""
        deadline = time.monotonic() + timeout
        while len(self.restarts) < n and time.monotonic() < deadline and not self.ended.is_set():
            time.sleep(0.05)
        return list(self.restarts)
