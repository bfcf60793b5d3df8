"""The sim board's boot: what the ESP32 port does before main.py, on the unix port. The runner
(host_tests/harness/simrun.py) starts `micropython -m _simboot` in the sim's flash folder,
$SIM_HOME/flash (the firmware's files, settings.json, www/), with MICROPYPATH naming the host
folders the board needs besides its flash: test apps that shadow app.py, then this folder (the
fakes of the port's modules).

Here the flash folder becomes the filesystem's root, as the board's flash is: "/settings.json"
and "/www" are the sim's own. The host folders stay where they are (each mounted at its own
path, so the host paths in MICROPYPATH and in the environment still work; they show up in
os.listdir("/") as mount points), and so do $SIM_HOME, /proc (the sim's own plumbing reads
/proc/self) and the folders in $SIM_HOST_DIRS (colon-separated: files an app reads). The module
path becomes the board's, flash first ("", .frozen, /lib), with the test apps before it and the
fakes after it. Then boot.py (if the flash has one) and main.py run, as on a board.
MicroPython only."""

import os
import sys
import vfs


def _mount_host(dirs):
    done = []
    for d in sorted(dirs, key=len):  # a folder inside one already mounted is there already
        d = d.rstrip("/")
        if d and not [m for m in done if d == m or d.startswith(m + "/")]:
            vfs.mount(vfs.VfsPosix(d), d)
            done.append(d)


def _boot():
    home = os.getenv("SIM_HOME")
    here = __file__.rpartition("/")[0]
    host = [p for p in sys.path if p.startswith("/")]  # MICROPYPATH: test apps, then this folder
    extra = [d for d in (os.getenv("SIM_HOST_DIRS") or "").split(":") if d.startswith("/")]
    vfs.umount("/")
    _mount_host(host + extra + [home, "/proc"])
    vfs.mount(vfs.VfsPosix(home + "/flash"), "/")
    os.chdir("/")
    sys.path[:] = [p for p in host if p != here] + ["", ".frozen", "/lib", here]


_boot()
try:
    os.stat("/boot.py")
except OSError:
    pass
else:
    exec(open("/boot.py").read(), {"__name__": "__main__"})
import main  # noqa: E402,F401  (runs the firmware)
