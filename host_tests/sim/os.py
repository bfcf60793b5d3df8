"""The sim board's os module: the unix port's own (uos), with rename() mended. The sim's flash is
a VfsPosix mounted at "/" (_simboot.py), and the unix port's VfsPosix.rename joins both names to
its root in one shared buffer, so the old name came out as the new one (rename("/data/a",
"/data/b") asked the host for rename(".../data/b", ".../data/b"): ENOENT). A board's littlefs
renames as asked. Relative names skip that buffer: VfsPosix hands them to the host as they are,
and its chdir() made the host's working directory the flash folder. MicroPython only."""

from uos import *  # noqa: F403
import uos as _uos


def rename(old, new):
    if old.startswith("/") and new.startswith("/") and _uos.getcwd() == "/":
        old = old[1:]
        new = new[1:]
    return _uos.rename(old, new)
