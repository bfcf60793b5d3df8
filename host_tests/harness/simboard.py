"""The sim board: firmware/ on the MicroPython unix port, with host_tests/sim/board.py standing in
for the board glue. One place builds its command line, for `make sim` and for the test fixtures;
SimFleet starts sim boards with settings of their own, each behind its own lwIP if asked.

    PYTHONPATH=host_tests python -m harness.simboard --port 8080 --heap 256K   # what `make sim` runs
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

from harness import micropython
from harness.emu import netns
from harness.paths import FIRMWARE, SIM_GLUE
from harness.target import Target

# Board-sized heap for the unix port (64-bit: objects take about twice an ESP32's room), and the
# firmware is compiled from source into this heap, where a board keeps it frozen in flash.
# See README "Sim board heap" for how this number was chosen.
DEFAULT_HEAP = "256K"


def command(port, heap=DEFAULT_HEAP, firmware=FIRMWARE, glue=SIM_GLUE, settings=None, extra_path=(), lwip=False):
    """(argv, env) to run the sim board. extra_path dirs come first (a test app can shadow app.py).
    lwip: an lwIP gateway fronts it, so the board's C module _nostall_tcp is played by the gateway
    (SIM_LWIP: host_tests/sim/_nostall_tcp.py)."""
    env = micropython.env(list(extra_path) + [glue, firmware])
    env["SIM_PORT"] = str(port)
    if lwip:
        env["SIM_LWIP"] = "1"
    env["SIM_WWW"] = os.path.join(FIRMWARE, "www")
    env["SIM_FIRMWARE"] = os.path.abspath(firmware)  # sim/real_app.py loads its app.py
    if settings:
        env["SIM_SETTINGS"] = settings
    return micropython.argv(module="main", heap=heap), env


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
    """Starts the sim board on a free port; stops it (by PID) on exit.

        with SimBoard() as sim:
            requests.get(sim.url + "/status")
    """

    def __init__(self, port=None, heap=DEFAULT_HEAP, firmware=FIRMWARE, settings=None, extra_path=(), log=None,
                 glue=SIM_GLUE, lwip=False):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.heap = heap
        self.glue = glue
        self.argv, self.env = command(self.port, heap, firmware, glue, settings, extra_path, lwip)
        self.log = log
        self.proc = None

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        # The home namespace, also when a test thread lives in the emulator's client namespace.
        with netns.in_home_ns():
            # cwd: the glue dir, since the unix port puts the cwd first on its module path
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.glue, stdout=out, stderr=subprocess.STDOUT)
            if self.log:
                out.close()
            try:
                wait_listening(self.host, self.port, self.proc)
            except Exception:
                self.stop()
                raise
        return self

    def stop(self):
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGINT)  # KeyboardInterrupt: the firmware's own shutdown path
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def front(sim, emu_ns=None, backlog=None):
    """The Target for a started sim: the sim itself, or (emu_ns: the client namespace of
    --board=emu) an lwIP gateway of its own in front of it, whose listener gets the sim's listen
    backlog (backlog: its listen_backlog setting; None: the firmware's default)."""
    if emu_ns is None:
        return Target(sim.host, sim.port, sim)
    emu = netns.Emulator(sim.port, shared_ns=emu_ns, backlog=backlog)
    emu.start()
    return Target(emu.ip, emu.port, sim, emu)


class SimFleet:
    """Dedicated sim boards with settings of their own, each behind its own lwIP when emu_ns is
    given. start(limits={...}, app_dir=None, www=None, heap=None, settings={...}, env={...}) ->
    Target; settings are extra keys of the settings file (e.g. api_token), env extra environment
    variables of the sim (a test app may read them). close() stops them all."""

    def __init__(self, tmp_path, heap=DEFAULT_HEAP, firmware=FIRMWARE, emu_ns=None):
        self.tmp_path = tmp_path
        self.heap = heap
        self.firmware = firmware
        self.emu_ns = emu_ns
        self.targets = []

    def start(self, limits=None, app_dir=None, www=None, heap=None, settings=None, env=None):
        n = len(self.targets)
        path = self.tmp_path / ("settings%d.json" % n)
        path.write_text(json.dumps(dict({"http_port": 8080, "limits": limits or {}}, **(settings or {}))))
        sim = SimBoard(
            heap=heap or self.heap,
            firmware=self.firmware,
            settings=str(path),
            extra_path=[app_dir] if app_dir else (),
            log=str(self.tmp_path / ("sim%d.log" % n)),
            lwip=self.emu_ns is not None,
        )
        if www:
            sim.env["SIM_WWW"] = str(www)
        sim.env.update(env or {})
        self.targets.append(Target(sim.host, sim.port, sim))  # so close() stops it if start fails
        sim.start()
        self.targets[-1] = t = front(sim, self.emu_ns, (limits or {}).get("listen_backlog"))
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
    argv, env = command(a.port, a.heap or DEFAULT_HEAP, a.firmware)
    print("sim board: %s (heap %s) on http://127.0.0.1:%d/ - Ctrl-C stops it" % (a.firmware, a.heap, a.port))
    sys.stdout.flush()
    os.chdir(SIM_GLUE)
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    main()
