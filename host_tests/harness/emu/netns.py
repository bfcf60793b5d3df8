"""Run the lwIP board emulator (lwipgw) in a throw-away network namespace.

Layout (one Emulator):

    root namespace                         namespace <prefix>-<pid>-<n>
    firmware on 127.0.0.1:PORT  <-- lwipgw --TAP fd-->  TAP 10.77.N.1/24 (Linux)
                                   (lwIP is 10.77.N.2)   test client sockets

The gateway stays in the root namespace so it reaches the firmware on
loopback; its TAP device is moved into a fresh namespace, where the Linux
client lives (a TAP fd keeps working after its device changes namespace).
Test traffic therefore only ever goes to addresses inside a namespace we
created. Everything is removed by name/PID on exit, also after exceptions.

    ok, why = available()
    with Emulator(upstream_port=8080, msl_ms=6000) as emu:
        emu.allow_port_reuse()            # only inside the namespace
        with emu.client():                # this thread's new sockets live in the ns
            s = socket.create_connection((emu.ip, emu.port))
        emu.run_in_ns(["curl", "-s", "http://%s/" % emu.ip])
        print(emu.stats()["time_wait"])

Wi-Fi weather (lwipgw/weather.c; README "Weather"): the gateway impairs its own link, per
direction: "to_client" (frames lwIP sends) and "from_client" (frames the client sends).

    with Emulator(port, weather="loss=3,delay=20,jitter=10", seed=7) as emu:   # both ways
        emu.link_down(10000)                  # every frame both ways dropped for 10 s from now
        emu.set_weather({"to_client": "rate=1M,limit=20"})   # from_client keeps its weather
        emu.stats()["weather"]["to_client"]["dropped_loss"]

A spec is "key=value,..." (loss=P, delay=MS, jitter=MS, reorder=P, dup=P, rate=BITS_PER_S with
k/M/G, limit=FRAMES; P in percent; "off" for none) or a dict of those keys ({"loss": 3}).

The gateway's UDP control socket (127.0.0.1, the upstream's port number) also plays the
firmware build's C module for the sim (host_tests/sim/_nostall_tcp.py, with SIM_LWIP set):
emu.ctl("abort PORT 0|1"), emu.ctl("unacked PORT"), where PORT is the upstream leg's local port.

Python 3.11 stdlib + ctypes only (os.setns arrived in 3.12).
"""
import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness import paths

REPO = Path(paths.ROOT)
CACHE = Path(paths.CACHE) / "emu"
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
NETNS_DIR = Path("/run/netns")
OVERLAYS = ("sdkconfig.overlay", "firmware/sdkconfig.overlay", "firmware/*/sdkconfig.overlay")

_libc = ctypes.CDLL(None, use_errno=True)
_seq = itertools.count(1)
_stale_checked = set()
_build_lock = threading.Lock()


def default_msl_ms():
    """CONFIG_LWIP_TCP_MSL from the firmware's sdkconfig.overlay, else 6000 (as mk/emu.mk)."""
    for pattern in OVERLAYS:
        for path in sorted(REPO.glob(pattern)):
            found = re.findall(r"^CONFIG_LWIP_TCP_MSL=(\d+)", path.read_text(), re.M)
            if found:
                return int(found[-1])
    return 6000


def default_backlog():
    """The firmware's listen backlog (Config.listen_backlog in firmware/nostall/config.py): what
    the board passes to listen(), so what the gateway's lwIP listener gets by default."""
    text = (Path(paths.FIRMWARE) / "nostall" / "config.py").read_text()
    found = re.search(r"^\s+listen_backlog\s*=\s*(\d+)", text, re.M)
    if not found:
        raise RuntimeError("no listen_backlog default in firmware/nostall/config.py")
    return int(found.group(1))


WEATHER_DIRS = ("to_client", "from_client")
CTL_TIMEOUT_S = 1.0


def weather_spec(value):
    """The gateway's spec string for one direction: a spec string as it is, a dict of settings
    ({"loss": 3, "delay": 20}) joined as "loss=3,delay=20", None as "off"."""
    if value is None:
        return "off"
    if isinstance(value, str):
        return value.strip() or "off"
    if isinstance(value, dict):
        return ",".join("%s=%s" % kv for kv in value.items()) or "off"
    raise TypeError("weather: a spec string or a dict, not %r" % (value,))


def weather_by_direction(weather):
    """{direction: spec} for the directions weather names. weather: a spec (string or dict of
    settings) for both directions, or a dict with keys "to_client", "from_client" and/or "both"
    (a direction's own key wins over "both"). None: {}."""
    if weather is None:
        return {}
    if isinstance(weather, dict) and set(weather) & set(WEATHER_DIRS + ("both",)):
        unknown = set(weather) - set(WEATHER_DIRS + ("both",))
        if unknown:
            raise ValueError("weather: unknown keys %s (to_client, from_client, both)" % sorted(unknown))
        out = {d: weather_spec(weather["both"]) for d in WEATHER_DIRS if "both" in weather}
        out.update({d: weather_spec(weather[d]) for d in WEATHER_DIRS if d in weather})
        return out
    return {d: weather_spec(weather) for d in WEATHER_DIRS}


def down_spec(down):
    """--down's "AT_MS:LEN_MS,...": from a string as it is, or from [(at_ms, len_ms), ...]."""
    if isinstance(down, str):
        return down
    return ",".join("%d:%d" % (int(at), int(length)) for at, length in down)


def binary_path(msl_ms):
    return CACHE / ("lwipgw-msl%d" % msl_ms)


def ensure_built(msl_ms):
    """Build the gateway for this MSL with `make emu` (cached). Returns (ok, reason)."""
    with _build_lock:
        if not shutil.which("make"):
            return binary_path(msl_ms).exists(), "make not found"
        r = subprocess.run(["make", "-s", "--no-print-directory", "emu", "EMU_MSL=%d" % msl_ms],
                           cwd=REPO, capture_output=True, text=True)
        if r.returncode != 0:
            lines = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("error:")]
            lines = lines or (r.stdout + r.stderr).strip().splitlines() or ["make emu failed"]
            return False, lines[0]
        return binary_path(msl_ms).exists(), "built"


def available(msl_ms=None):
    """(True, "") when emulator tests can run here, else (False, one-line reason)."""
    if os.geteuid() != 0:
        return False, "emulator needs root (TAP devices, network namespaces)"
    if not os.path.exists("/dev/net/tun"):
        return False, "no /dev/net/tun (TUN/TAP unavailable)"
    if not shutil.which("ip"):
        return False, "'ip' (iproute2) not found"
    probe = "nshprobe-%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return False, "cannot create a network namespace: " + r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    ok, why = ensure_built(default_msl_ms() if msl_ms is None else msl_ms)
    return (True, "") if ok else (False, why)


def ip(*args, check=True):
    """Run `ip ARGS`; RuntimeError with its stderr when it fails (unless not check)."""
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def cleanup_stale(name_prefix):
    """Delete namespaces <prefix>-<pid>-<n> whose creating process is gone
    (left by a run that was SIGKILLed). Never touches other names."""
    pat = re.compile(r"^%s-(\d+)-\w+$" % re.escape(name_prefix))
    if not NETNS_DIR.is_dir():
        return
    for entry in NETNS_DIR.iterdir():
        m = pat.match(entry.name)
        if m and int(m.group(1)) != os.getpid() and not Path("/proc", m.group(1)).exists():
            ip("netns", "del", entry.name, check=False)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


@contextlib.contextmanager
def in_netns(ns_path):
    """Move the CURRENT THREAD into the network namespace at ns_path and back.

    Sockets created inside stay in that namespace after the block ends.
    Other threads are not affected; threads and processes started inside
    are born in that namespace. A no-op when the thread is already there
    (so it needs no privilege then).
    """
    if os.stat(ns_path).st_ino == os.stat("/proc/thread-self/ns/net").st_ino:
        yield
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(ns_path, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


# The namespace this process started in (where the sim boards and gateways
# listen on loopback), kept open so it can be re-entered from any thread.
try:
    _HOME_FD = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
except OSError:
    _HOME_FD = None


def in_home_ns():
    """Context manager: the current thread back in the process's original
    namespace, e.g. to start a server on its loopback while the test thread
    lives in a client namespace (see conftest's --board=emu)."""
    if _HOME_FD is None:
        return contextlib.nullcontext()
    return in_netns("/proc/%d/fd/%d" % (os.getpid(), _HOME_FD))


# The clients' ephemeral ports in a namespace made here: all of them, not Linux's 32768-60999.
# Against this firmware the client closes first, so each of its connections leaves a TIME_WAIT
# socket in the client namespace for 60 s (against a server that closes first too, mostly: wrk
# closes once the answer is complete, before the server's FIN comes through lwIP), and Linux
# cannot reuse one: tcp_tw_reuse needs TCP timestamps, which lwIP does not send (on loopback it
# reuses them anyway). connect() takes ports of one parity first; once those towards the board's
# address are all in TIME_WAIT (14 116 with the default range: 3 s of wrk at 4 700 new
# connections/s), every connect() walks all of them before it tries the other parity: wrk went
# from 60 to 2 000-3 300 us of CPU per request and the bench's second round of new connections
# fell to 200-1 300 req/s (issue 18). With this range 32 256 fit; beyond that (e.g. two 5 s
# runs at 4 000/s within a minute) only a namespace of its own per run helps (an Emulator
# without shared_ns makes one, deleted with its TIME_WAIT sockets on close()). A board's
# clients are many hosts, each with its own ports.
CLIENT_PORTS = (1024, 65535)


def new_namespace(name_prefix="nsh", tag="c", ports=CLIENT_PORTS):
    """Create namespace <prefix>-<pid>-<tag> with lo up and ports (low, high) as its ephemeral
    port range (None: Linux's default); returns its name. Remove it with delete_namespace(name):
    its sockets, TIME_WAIT ones included, go with it."""
    if name_prefix not in _stale_checked:
        _stale_checked.add(name_prefix)
        cleanup_stale(name_prefix)
    name = "%s-%d-%s" % (name_prefix, os.getpid(), tag)
    with in_home_ns():
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")
        if ports:
            Emulator.sysctl_in(name, "net.ipv4.ip_local_port_range", "%d %d" % tuple(ports))
    return name


def delete_namespace(name):
    with in_home_ns():
        ip("netns", "del", name, check=False)


def _scratch_dir():
    """/dev/shm when it is a writable folder (tmpfs), else the default temporary folder."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _die_with_parent():
    # The gateway must not outlive a test run that is killed hard.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Emulator:
    """lwIP in front of upstream 127.0.0.1:upstream_port, inside a fresh namespace.

    Attributes once started: ip (lwIP, the "board"), port (its TCP port),
    peer_ip (the Linux client side), netns (namespace name), tap, msl_ms,
    backlog (lwIP's listen backlog: give the upstream's listen() backlog, by
    default the firmware's), log_path (gateway event log), stats_path,
    ctl_addr (the gateway's UDP control socket: the upstream's host and port number).

    Weather (see the module docstring): weather, a spec for both directions or a dict per
    direction ({"to_client": "loss=3", "from_client": {"loss": 3}, "both": ...}); seed, the
    per-frame decisions' seed (None: the gateway picks one; stats()["weather"]["seed"] says
    which, pass it back to replay a run); down, link-down windows from the gateway's start,
    "AT_MS:LEN_MS,..." or [(at_ms, len_ms), ...]. At run time: link_down(ms), link_up(),
    set_weather(weather), reseed(seed), weather_stats().

    binary: another lwipgw build to run (None: `make emu`'s for msl_ms); scratch: the folder
    its stats and log go in (None: /dev/shm if there is one, else the temporary folder).
    Without shared_ns it makes a namespace of its own (deleted on close(), with the client's
    TIME_WAIT sockets: a fresh one per run of new connections, see CLIENT_PORTS).

    Start and stop it from the same thread (the gateway is tied to the
    starting thread's life so a killed run leaves no process behind).
    """

    def __init__(self, upstream_port, msl_ms=None, name_prefix="nsh", listen_port=80,
                 upstream_host="127.0.0.1", shared_ns=None, backlog=None, weather=None, seed=None,
                 down=None, binary=None, scratch=None):
        self.upstream = (upstream_host, int(upstream_port))
        self.ctl_addr = self.upstream  # UDP: its port space is not TCP's
        self.weather = weather_by_direction(weather)
        self.seed = seed
        self.down = down
        self.msl_ms = default_msl_ms() if msl_ms is None else int(msl_ms)
        self.backlog = default_backlog() if backlog is None else int(backlog)
        self.port = listen_port
        self.name_prefix = name_prefix
        n = next(_seq)
        pid = os.getpid()
        # shared_ns: put the TAP into an existing namespace (made by
        # new_namespace) that several emulators share; it is not deleted here.
        self.shared_ns = shared_ns
        self._n = n
        self.netns = shared_ns or "%s-%d-%d" % (name_prefix, pid, n)  # as new_namespace names it
        self.tap = ("%s%dt%d" % (name_prefix[:3], pid, n))[:15]  # IFNAMSIZ
        subnet = 1 + (n - 1) % 250  # one /24 per emulator, so several can share a namespace
        self.ip = "10.77.%d.2" % subnet
        self.peer_ip = "10.77.%d.1" % subnet
        self.binary = binary  # another lwipgw build (None: make emu's for msl_ms)
        self.scratch = scratch  # the folder for its stats and log folder (None: tmpfs if there is one)
        self.proc = None
        self._tmp = None
        self._ns_made = False

    # -- lifecycle --------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        # The gateway reaches the upstream on the home namespace's loopback,
        # and `ip` must see the TAP where it is born, whatever the caller's ns.
        with in_home_ns():
            return self._start()

    def _start(self):
        binary = Path(self.binary) if self.binary else binary_path(self.msl_ms)
        if not binary.exists() and not self.binary:
            ok, why = ensure_built(self.msl_ms)
            if not ok:
                raise RuntimeError("lwipgw not built: " + why)
        # On tmpfs where there is one: the gateway rewrites its stats file (a new inode, then a
        # rename) up to 50 times a second and writes a log line per event; on ext4 the inodes
        # alone took ~6 % of its CPU under new connections (perf, issue 18).
        self._tmp = tempfile.mkdtemp(prefix="lwipgw-%s-" % self.netns, dir=self.scratch or _scratch_dir())
        self.stats_path = os.path.join(self._tmp, "stats.json")
        self.log_path = os.path.join(self._tmp, "gateway.log")

        if not self.shared_ns:
            new_namespace(self.name_prefix, self._n)
            self._ns_made = True

        argv = [str(binary), "--tap", self.tap, "--ip", self.ip, "--netmask", "255.255.255.0",
                "--gw", self.peer_ip, "--listen", str(self.port), "--backlog", str(self.backlog),
                "--upstream", "%s:%d" % self.upstream, "--stats", self.stats_path]
        for direction, spec in self.weather.items():
            argv += ["--weather-" + direction.replace("_", "-"), spec]
        if self.seed is not None:
            argv += ["--seed", str(int(self.seed))]
        if self.down:
            argv += ["--down", down_spec(self.down)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent)
        self._wait_ready(5.0)

        # The TAP exists once READY is printed; hand it to the namespace.
        ip("link", "set", self.tap, "netns", self.netns)
        ip("-n", self.netns, "addr", "add", self.peer_ip + "/24", "dev", self.tap)
        ip("-n", self.netns, "link", "set", self.tap, "up")
        return self

    def _wait_ready(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "READY" in self.log_tail():
                return
            if self.proc.poll() is not None:
                raise RuntimeError("lwipgw exited (%s): %s" % (self.proc.returncode, self.log_tail().strip()))
            time.sleep(0.02)
        raise RuntimeError("lwipgw not ready after %.0fs: %s" % (timeout_s, self.log_tail().strip()))

    def close(self):
        """Stop the gateway (by PID), delete the namespace and TAP (by name)."""
        with in_home_ns():
            self._close()

    def _close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._ns_made:
            delete_namespace(self.netns)
            self._ns_made = False
        # The TAP dies with the gateway's fd; this only matters if the move failed.
        if ip("link", "show", self.tap, check=False).returncode == 0:
            ip("link", "del", self.tap, check=False)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- inside the namespace -------------------------------------------------
    @property
    def ns_path(self):
        return str(NETNS_DIR / self.netns)

    def client(self):
        """Context manager: the current thread creates its sockets in the namespace."""
        return in_netns(self.ns_path)

    def run_in_ns(self, argv, **kwargs):
        """subprocess.run(argv) inside the namespace (via `ip netns exec`)."""
        return subprocess.run(["ip", "netns", "exec", self.netns] + list(argv), **kwargs)

    def sysctl(self, key, value):
        """Set a net.* sysctl inside this namespace only (never the host's)."""
        self.sysctl_in(self.netns, key, value)

    @staticmethod
    def sysctl_in(ns_name, key, value):
        """Set a net.* sysctl inside namespace ns_name only (never the host's)."""
        if not key.startswith("net."):
            raise ValueError("only per-namespace net.* sysctls: %r" % key)
        r = subprocess.run(["ip", "netns", "exec", ns_name, "sysctl", "-q", "-w", "%s=%s" % (key, value)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("sysctl %s=%s in %s: %s" % (key, value, ns_name, r.stderr.strip()))

    def allow_port_reuse(self):
        """A client that pins its source port against a server that lets the
        client close first needs its own TIME_WAIT off, else the next bind/
        connect fails with EADDRNOTAVAIL. Only in this namespace."""
        self.sysctl("net.ipv4.tcp_max_tw_buckets", 0)

    # -- observing lwIP --------------------------------------------------------
    def stats(self):
        """The gateway's counters (see lwipgw.c): accepted, active_closes,
        passive_closes, client_resets, upstream_resets, lwip_aborts,
        syn_to_time_wait, time_wait, time_wait_max, pcbs_active, open,
        pending_accept, pending_accept_max, syns_dropped_backlog, ...;
        firmware_aborts (the sim's _nostall_tcp.abort() ran tcp_abort), firmware_aborts_forced,
        firmware_aborts_declined, ctl_requests, ctl_port; "weather" (see weather_stats())."""
        for _ in range(50):
            try:
                with open(self.stats_path) as f:
                    return json.load(f)
            except (OSError, ValueError):
                time.sleep(0.02)
        raise RuntimeError("no stats from lwipgw: " + self.log_tail().strip())

    def wait_stats(self, predicate, timeout_s=5.0):
        """Poll stats() until predicate(stats) holds; return the last stats."""
        deadline = time.monotonic() + timeout_s
        st = self.stats()
        while not predicate(st) and time.monotonic() < deadline:
            time.sleep(0.05)
            st = self.stats()
        return st

    # -- the control socket: weather at run time, the C module's calls ----------
    def ctl(self, command, timeout_s=CTL_TIMEOUT_S):
        """Send one command to the gateway's control socket, return its one-line reply:
        "abort PORT 0|1" (aborted, unacked, no_conn, no_pcb, state), "unacked PORT" (1, 0),
        "down MS", "weather to_client|from_client|both SPEC", "seed N" (ok), "ping" (pong).
        Errors come back as "error ..."; no reply within timeout_s raises RuntimeError."""
        with in_home_ns():  # the gateway listens on the home namespace's loopback
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            s.settimeout(timeout_s)
            s.sendto(command.encode(), self.ctl_addr)
            try:
                return s.recv(512).decode()
            except socket.timeout:
                raise RuntimeError("lwipgw control socket %s:%d: no reply to %r; log: %s" % (
                    self.ctl_addr + (command, self.log_tail(600).strip())))

    def _ctl_ok(self, command):
        reply = self.ctl(command)
        if reply != "ok":
            raise ValueError("lwipgw %r: %s" % (command, reply))

    def link_down(self, ms):
        """Drop every frame both ways for ms from now (frames already queued too, when due)."""
        self._ctl_ok("down %d" % int(ms))

    def link_up(self):
        """End link_down() now (scheduled windows still apply)."""
        self._ctl_ok("down 0")

    def set_weather(self, weather):
        """New settings from now (as the constructor's weather); directions not named keep theirs.
        Frames already queued keep their release times."""
        for direction, spec in weather_by_direction(weather).items():
            self._ctl_ok("weather %s %s" % (direction, spec))
            self.weather[direction] = spec

    def reseed(self, seed):
        """Seed the per-frame decisions and restart both directions' frame count at 0: the same
        frames after the same seed meet the same decisions."""
        self._ctl_ok("seed %d" % int(seed))
        self.seed = seed

    def weather_stats(self):
        """stats()["weather"]: active, seed, start_ms (the gateway's CLOCK_MONOTONIC at its start, as
        time.monotonic() * 1000: --down counts from it), down, down_left_ms, down_schedule, and per direction
        ("to_client", "from_client") its settings (spec, loss, delay_ms, jitter_ms, reorder, dup,
        rate_bps, limit) and counters: frames (seen), dropped_loss, dropped_down, duplicated, reordered,
        delayed, dropped_queue (rate queue full), delivered, queued, queued_max, index (frames
        since the seed)."""
        return self.stats()["weather"]

    def upstream_port(self, client_port, timeout_s=2.0):
        """The upstream leg's local port (the firmware's peer port, which "abort"/"unacked" name)
        of the latest connection from client_port, from the gateway's accept event; None if none."""
        pat = re.compile(r"^ev=accept id=\d+ t=\d+ client_port=%d up_port=(\d+)$" % int(client_port), re.M)
        deadline = time.monotonic() + timeout_s
        while True:
            found = pat.findall(self.log_tail(200000))
            if found or time.monotonic() > deadline:
                return int(found[-1]) if found else None
            time.sleep(0.02)

    def log_tail(self, max_bytes=4000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - max_bytes))
                return f.read().decode(errors="replace")
        except (OSError, AttributeError):
            return ""


def main():
    """`python -m harness.emu.netns`: exit 0 if the emulator can run here (building it if needed),
    else print the one-line reason and exit 1 (the Makefile's emulator pass uses this)."""
    ok, why = available()
    if not ok:
        print(why)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
