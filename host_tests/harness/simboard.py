"""The sim board: firmware/ on the MicroPython unix port, the real firmware/board.py included, on
fakes of the ESP32 port's modules (host_tests/sim/: network, machine, esp32; the radio scripted
through sim/_simlink.py), from a flash folder of its own and started again as a board restarts
after a reset or its watchdog (harness/simrun.py). One place builds its command line, for
`make sim` and for the test fixtures; SimFleet starts sim boards with settings of their own,
each behind its own lwIP if asked.

    PYTHONPATH=host_tests python -m harness.simboard --port 8080 --heap 256K   # what `make sim` runs
"""

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import weakref

from harness import micropython, simrun
from harness.emu import netns
from harness.paths import FIRMWARE, SIM_GLUE
from harness.target import Target

# Board-sized heap for the unix port (64-bit: objects take about twice an ESP32's room), and the
# firmware is compiled from source into this heap, where a board keeps it frozen in flash.
# See README "Sim board heap" for how this number was chosen.
DEFAULT_HEAP = "256K"
SIM_SETTINGS = os.path.join(SIM_GLUE, "settings.json")  # the sim's settings when none are given
# The fakes of the port's modules (host_tests/sim/) are bytecode and state in the sim's heap,
# about 23 KB (gc.mem_alloc, 64-bit), plus what compiling them leaves fragmented; a board's C
# modules take none of its heap. The sim gets this on top of the heap asked for.
FAKES_HEAP_K = 32


def has_fakes(glue):
    """Whether glue is this checkout's kind (fakes of the port's modules) or an older revision's,
    with a board.py of its own (`make bench --base` runs those as they ran then)."""
    return os.path.exists(os.path.join(glue, "_simboot.py"))


def command(port, heap=DEFAULT_HEAP, firmware=FIRMWARE, glue=SIM_GLUE, settings=None, extra_path=(), lwip=False,
            home=None):
    """(argv, env) to run the sim board. extra_path dirs come first (a test app can shadow app.py).
    home: the sim's folder (simrun.prepare_home made it: the flash, with the settings and port in
    settings.json, where it runs from); an older glue gets settings, port and www in SIM_* instead.
    lwip: an lwIP gateway fronts it, so the board's C module _nostall_tcp is played by the gateway
    (SIM_LWIP: host_tests/sim/_nostall_tcp.py)."""
    if has_fakes(glue):
        env = micropython.env(list(extra_path) + [glue])
        env["SIM_HOME"] = os.path.abspath(home)
        argv = micropython.argv(module="_simboot", heap=_plus_fakes(heap))
    else:
        env = micropython.env(list(extra_path) + [glue, firmware])
        env["SIM_PORT"] = str(port)
        env["SIM_WWW"] = os.path.join(FIRMWARE, "www")
        env["SIM_FIRMWARE"] = os.path.abspath(firmware)  # its sim/real_app.py loads app.py from there
        if settings:
            env["SIM_SETTINGS"] = settings
        argv = micropython.argv(module="main", heap=heap)
    if lwip:
        env["SIM_LWIP"] = "1"
    return argv, env


def _plus_fakes(heap):
    if not heap:
        return heap
    units = {"K": 1024, "M": 1024 * 1024}
    n = int(heap[:-1]) * units[heap[-1].upper()] if heap[-1].upper() in units else int(heap)
    return "%dK" % (n // 1024 + FAKES_HEAP_K)


def free_port():
    """A free port on the home namespace's loopback (where sim boards listen)."""
    with netns.in_home_ns(), socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(host, port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("sim board exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sim board did not listen on %s:%d within %.0f s" % (host, port, timeout))


class SimBoard:
    """Starts the sim board on a free port; stops it (by PID) on exit. proc and pid are its
    current MicroPython process (another one after each restart).

        with SimBoard() as sim:
            requests.get(sim.url + "/status")

    settings: a JSON file (default host_tests/sim/settings.json); the board gets it as its
    /settings.json, with http_port set to the port and Wi-Fi credentials added if it has none.
    www: the board's /www (default the firmware's). radio: the radio script's keys
    (sim/_simlink.py), from power-on; radio(...) replaces it later. home: the sim's folder
    (flash/, radio.json; default a temporary one). log: a file the board's output and the
    runner's notes are appended to ("-": this process's stdout; None: nowhere)."""

    def __init__(self, port=None, heap=DEFAULT_HEAP, firmware=FIRMWARE, settings=None, extra_path=(), log=None,
                 glue=SIM_GLUE, lwip=False, www=None, radio=None, home=None):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.heap = heap
        self.glue = glue
        self.home = self.settings = None
        self.cwd = glue  # an older glue runs from its folder: the unix port puts the cwd first on its path
        if has_fakes(glue):
            if home is None:
                home = tempfile.mkdtemp(prefix="nostall-sim-")
                weakref.finalize(self, shutil.rmtree, home, True)
            self.home = str(home)
            self.settings = simrun.prepare_home(self.home, firmware, settings or SIM_SETTINGS, self.port, www, radio)
            self.cwd = os.path.join(self.home, "flash")
        self.argv, self.env = command(self.port, heap, firmware, glue, settings, extra_path, lwip, self.home)
        if www and not has_fakes(glue):
            self.env["SIM_WWW"] = str(www)
        self.log = log
        self.runner = None

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def proc(self):
        return self.runner.proc if self.runner else None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=10.0, wait=True):
        """Start the board; wait (up to timeout) until it listens, unless not wait."""
        # The home namespace, also when a test thread lives in the emulator's client namespace.
        with netns.in_home_ns():
            self.runner = simrun.Runner(self.argv, self.env, self.cwd, self.log)
            self.runner.start()
            try:
                if wait:
                    wait_listening(self.host, self.port, self.runner.proc, timeout)
            except Exception:
                self.stop()
                raise
        return self

    def stop(self):
        if self.runner is not None:
            self.runner.stop()  # SIGINT: the firmware's own shutdown path; no restart after it

    def radio(self, **script):
        """Replace the radio script (sim/_simlink.py's keys; the settings' access point stays)."""
        simrun.write_radio(self.home, self.settings, script)

    @property
    def events(self):
        """What the fakes reported: [(monotonic time, kind, args)] (sim/_simlink.py)."""
        return list(self.runner.events) if self.runner else []

    @property
    def restarts(self):
        """[(monotonic time, reset cause)], one per start after the first (harness/simrun.py)."""
        return list(self.runner.restarts) if self.runner else []

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def front(sim, emu_ns=None, backlog=None, weather=None, seed=None):
    """The Target for a started sim: the sim itself, or (emu_ns: the client namespace of
    --board=emu) an lwIP gateway of its own in front of it, whose listener gets the sim's listen
    backlog (backlog: its listen_backlog setting; None: the firmware's default) and whose link
    has the weather given (netns.Emulator: loss, delay, ... per direction; seed replays it)."""
    if emu_ns is None:
        return Target(sim.host, sim.port, sim)
    emu = netns.Emulator(sim.port, shared_ns=emu_ns, backlog=backlog, weather=weather, seed=seed)
    emu.start()
    return Target(emu.ip, emu.port, sim, emu)


class SimFleet:
    """Dedicated sim boards with settings of their own, each behind its own lwIP when emu_ns is
    given. start(limits={...}, app_dir=None, www=None, heap=None, settings={...}, env={...},
    radio={...}, timeout=10, firmware=None) -> Target; firmware: another firmware folder (e.g. compiled
    to .mpy); settings are extra keys of the settings file (e.g.
    api_token), env extra environment variables of the sim (a test app may read them), radio the
    radio script from power-on (SimBoard), timeout how long it may take to listen (a join that
    fails first takes longer), weather and seed the link's behind lwIP (netns.Emulator). Its
    folder, log and flash: tmp_path/sim<n>, sim<n>.log. close() stops them all."""

    def __init__(self, tmp_path, heap=DEFAULT_HEAP, firmware=FIRMWARE, emu_ns=None):
        self.tmp_path = tmp_path
        self.heap = heap
        self.firmware = firmware
        self.emu_ns = emu_ns
        self.targets = []

    def start(self, limits=None, app_dir=None, www=None, heap=None, settings=None, env=None, radio=None, timeout=10.0,
              weather=None, seed=None, firmware=None):
        n = len(self.targets)
        path = self.tmp_path / ("settings%d.json" % n)
        path.write_text(json.dumps(dict({"http_port": 8080, "limits": limits or {}}, **(settings or {}))))
        sim = SimBoard(
            heap=heap or self.heap,
            firmware=firmware or self.firmware,
            settings=str(path),
            extra_path=[app_dir] if app_dir else (),
            log=str(self.tmp_path / ("sim%d.log" % n)),
            lwip=self.emu_ns is not None,
            www=www,
            radio=radio,
            home=self.tmp_path / ("sim%d" % n),
        )
        sim.env.update(env or {})
        self.targets.append(Target(sim.host, sim.port, sim))  # so close() stops it if start fails
        sim.start(timeout)
        self.targets[-1] = t = front(sim, self.emu_ns, (limits or {}).get("listen_backlog"), weather, seed)
        return t

    def close(self):
        for t in self.targets:
            if t.emu:
                t.emu.close()
        for t in self.targets:
            t.sim.stop()


class Lab:
    """A client network namespace of its own and sim boards each behind an lwIP of its own, all
    reached from that namespace: lab.board(limits) -> Target; lab.client() puts the current
    thread's new sockets there; close() stops the boards and deletes the namespace."""

    def __init__(self, tmp_path, tag):
        self.ns = netns.new_namespace("nsp", tag)
        self.fleet = SimFleet(tmp_path, emu_ns=self.ns)

    @property
    def ns_path(self):
        return str(netns.NETNS_DIR / self.ns)

    def client(self):
        return netns.in_netns(self.ns_path)

    def board(self, limits=None, **kw):
        return self.fleet.start(limits, **kw)

    def sysctl(self, key, value):
        netns.Emulator.sysctl_in(self.ns, key, value)

    def close(self):
        self.fleet.close()
        netns.delete_namespace(self.ns)


def main():
    ap = argparse.ArgumentParser(description="Run the firmware on the MicroPython unix port.")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--heap", default=DEFAULT_HEAP, help="micropython -X heapsize (default %(default)s)")
    ap.add_argument("--firmware", default=FIRMWARE, help="firmware dir (sources or compiled .mpy)")
    a = ap.parse_args()
    sim = SimBoard(port=a.port, heap=a.heap or DEFAULT_HEAP, firmware=a.firmware, log="-")
    print("sim board: %s (heap %s), flash %s - Ctrl-C stops it" % (a.firmware, sim.heap, sim.cwd), flush=True)
    try:
        sim.start()
        while not sim.runner.ended.wait(0.5):  # restarts happen meanwhile; this ends with the board
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    code = sim.proc.returncode if sim.proc else 1
    return 0 if code in (0, -2) else code


if __name__ == "__main__":
    sys.exit(main())
