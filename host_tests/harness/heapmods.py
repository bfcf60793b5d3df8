"""Where the heap in use after start-up goes, module by module (issue 18: heap on a board's
object sizes). On the MicroPython unix port, with a firmware folder from source or compiled to
.mpy (mpy-cross, as a stock MicroPython deploy copies it), it prints gc.mem_alloc() after a
gc.collect() following:

  - the port's own modules the firmware imports (asyncio, json, ...), then each nostall module
    imported at start-up, in dependency order (so each line is that module's own cost: its
    bytecode, qstrs, globals and tables), then the modules only a feature imports (WebSocket,
    event streams, /metrics, ...), which a default start-up does not load;
  - the default app built (app.make_app(hw), as main.py does, on a stand-in hw) and the Server
    (its slots and receive buffers; not listening);
  - in a process of its own, a one-route app (App, one GET route, Server) from nothing.

With --sim it also starts the sim board (harness.simboard, the same firmware) with main.py
wrapped to mark the heap after each of its steps (the fakes of the port's modules, board.py,
settings, nostall, the app, the Server, serving), then once more as `make bench BENCH=heap` starts
it, and reads "heap after start-up" the way the bench does (/status?gc=1 twice): the bench's
figure, and the part of it the fakes hold (C modules on a board, no heap there).

Rules of thumb for reading it: qstrs (interned names and strings) are never freed and their
pools double as they fill, so one step may carry a new pool for everyone's names (the "+ qstr B"
column); a module imported later (a feature's first use) stays; on the 64-bit port objects take
1.3-1.6x a board's room (--m32 measures a board's object sizes).

    PYTHONPATH=host_tests:firmware .venv/bin/python -m harness.heapmods [--firmware DIR] [--mpy] [--sim]
        [--micropython BIN] [--m32] [--mpy-opt N] [--frozen]

--m32 runs a 32-bit build of the unix port (a board's object sizes), looked for in
.cache/mp32-v1.28.0/ (micropython and mpy-cross; ../shared/facts.md has the recipe).

--frozen measures a --micropython built with the firmware frozen in, as `make build` freezes it
(the same recipe with FROZEN_MANIFEST listing asyncio and boards/manifest_firmware.py's modules,
and MPY_CROSS_FLAGS=-march=x86 or x64 for the native functions): the probes find nothing on the
path but .frozen. --firmware still names the sources the import order is read from. Its .mpy
figures are no stock figures: the frozen names are in the image, so loaded .mpy files intern none.
"""

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile

from harness import micropython
from harness.paths import CACHE, FIRMWARE

M32_DIR = os.path.join(CACHE, "mp32-v1.28.0")
MARK = "HEAPMARK"
# the port's modules the firmware imports at module level: imported first, so no nostall line
# carries them (on a board they are C modules, asyncio frozen bytecode: its globals only)
PORT_MODULES = ("gc", "sys", "micropython", "json", "re", "select", "struct", "socket", "os", "time",
                "binascii", "hashlib", "asyncio")


# ---- which modules, in which order (read off the sources with CPython's ast) ----

def _module_imports(path, pkg="nostall"):
    """The modules `path` imports at module level (inside try/if blocks too, not in functions)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    out = []

    def visit(body):
        for node in body:
            if isinstance(node, ast.Import):
                out.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.module == pkg:  # from nostall import sockets -> nostall.sockets
                    out.append(pkg)
                    out.extend(pkg + "." + a.name for a in node.names if a.name[0].islower() and a.name != "VERSION")
                else:
                    out.append(node.module)
            elif isinstance(node, (ast.Try, ast.If)):
                visit(node.body)
                for h in getattr(node, "handlers", ()):
                    visit(h.body)
                visit(node.orelse)
                visit(getattr(node, "finalbody", []))
    visit(tree.body)
    return out


def _source_of(src_dir, mod):
    base = os.path.join(src_dir, *mod.split("."))
    for cand in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.exists(cand):
            return cand
    return None


def import_order(src_dir, roots):
    """The firmware's modules reachable from roots through module-level imports, each after the
    modules it imports (the order MicroPython itself loads them in)."""
    order, seen = [], set()

    def visit(mod):
        if mod in seen:
            return
        seen.add(mod)
        path = _source_of(src_dir, mod)
        if path is None:
            return
        if "." in mod:
            visit(mod.rpartition(".")[0])  # the package first
        for dep in _module_imports(path):
            visit(dep)
        order.append(mod)
    for r in roots:
        visit(r)
    return order


def all_modules(src_dir, pkg="nostall"):
    return [pkg + "." + f[:-3] for f in sorted(os.listdir(os.path.join(src_dir, pkg)))
            if f.endswith(".py") and f != "__init__.py"]


def start_up_roots(src_dir):
    """What main.py, start.py and app.py import at module level (board.py aside: the sim's fakes)."""
    roots = []
    for f in ("main.py", "start.py", "app.py"):
        p = os.path.join(src_dir, f)
        if os.path.exists(p):
            roots += [m for m in _module_imports(p) if m.startswith("nostall")]
    return roots


# ---- compiling ----

def mpy_cross_for(binary):
    cand = os.path.join(os.path.dirname(binary), "mpy-cross")
    if not os.path.exists(cand):
        sys.exit("error: no mpy-cross beside %s" % binary)
    return cand


def compile_tree(src, out_dir, mpy_cross, opt=None, arch="host"):
    """src compiled to .mpy into out_dir (main.py and data files as they are), as `make deploy`
    does (-s: the module's own file name in its qstrs, not this machine's path)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = os.path.relpath(root, src)
        os.makedirs(os.path.join(out_dir, rel), exist_ok=True)
        for f in files:
            a, b = os.path.join(root, f), os.path.join(out_dir, rel, f)
            relf = os.path.normpath(os.path.join(rel, f))
            if f.endswith(".py") and relf != "main.py":
                argv = [mpy_cross, "-march=" + arch, "-s", relf, "-o", b[:-3] + ".mpy"]  # native code needs one
                if opt:
                    argv.append("-O%d" % opt)
                subprocess.run(argv + [a], check=True, capture_output=True)
            elif not f.endswith(".pyc"):
                shutil.copyfile(a, b)
    return out_dir


# ---- the probes (MicroPython) ----

_PROBE_HEAD = r'''
import gc, sys, micropython
def _m(label):
    gc.collect(); gc.collect()
    print("%s %s %d" % ("''' + MARK + r'''", label, gc.mem_alloc()))
    micropython.qstr_info()
class _HW:  # app.py's hw: board.py's Board as the app sees it
    www_root = "/www"
    data_root = "/data"
    def has_led(self): return True
    def led(self): return False
    def set_led(self, on): pass
    def temperature_c(self): return 21.5
    def vitals(self): return {}
_m("empty")
for _n in PORT:
    try:
        __import__(_n)
    except ImportError:
        pass
_m("port modules")
'''

_PROBE_MODULES = _PROBE_HEAD + r'''
_before = set(sys.modules)
for _n in START:
    __import__(_n)
    _m("import " + _n)
_loaded = [k for k in sys.modules if k not in _before]
import app
_m("import app")
_hw = _HW()
_app = app.make_app(_hw)
_m("app.make_app(hw)")
print("%s-loaded-by-make_app %s" % ("''' + MARK + r'''", [k for k in sys.modules if k not in _before and k not in _loaded and k != "app"]))
from nostall.config import Config
from nostall.server import Server
_srv = Server(_app, Config(), "127.0.0.1", 8080, {"firmware_version": "x", "board": "probe"}, _hw.vitals)
_m("Server(app, Config())")
print("%s-loaded-by-server %s" % ("''' + MARK + r'''", [k for k in sys.modules if k not in _before and k not in _loaded and k != "app"]))
for _n in LATER:
    if _n not in sys.modules:
        try:
            __import__(_n)
        except ImportError as e:
            print("%s-skip %s %s" % ("''' + MARK + r'''", _n, e))
            continue
        _m("later " + _n)
'''

_PROBE_ONE_ROUTE = _PROBE_HEAD + r'''
from nostall.web import App
_m("import nostall.web")
from nostall.server import Server
_m("import nostall.server")
_app = App()
@_app.get("/")
def _index(req):
    return "hello"
_m("App() + 1 route")
_srv = Server(_app)
_m("Server(app)")
print("%s-modules %s" % ("''' + MARK + r'''", sorted(k for k in sys.modules if k.startswith("nostall"))))
'''


def _run_probe(binary, fw_dir, code, heap="1M"):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
        path = f.name
    try:
        env = micropython.env([fw_dir])
        r = subprocess.run([binary, "-X", "heapsize=%s" % heap, path], env=env, cwd=fw_dir, capture_output=True,
                           text=True, timeout=120)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise RuntimeError("probe failed (%d): %s" % (r.returncode, (r.stderr or r.stdout)[-2000:]))
    return parse_marks(r.stdout.splitlines())


def parse_marks(lines):
    """The probe's output -> ([(label, bytes in use, qstrs, qstr bytes, qstr text bytes)], [notes])."""
    marks, notes = [], []
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith(MARK + " "):
            _, rest = line.split(" ", 1)
            label, _, n = rest.rpartition(" ")
            marks.append((label, int(n), None, None))
        elif line.startswith("qstr pool:") and marks:
            q = dict(kv.split("=") for kv in line[len("qstr pool:"):].replace(",", " ").split())
            marks[-1] = marks[-1][:2] + (int(q["n_qstr"]), int(q["n_total_bytes"]), int(q["n_str_data_bytes"]))
        elif line.startswith(MARK + "-"):
            notes.append(line[len(MARK) + 1:])
    return marks, notes


def probe(binary, fw_dir, src_dir):
    start = [m for m in import_order(src_dir, start_up_roots(src_dir))]
    later = [m for m in all_modules(src_dir) if m not in start]
    head = "PORT = %r\nSTART = %r\nLATER = %r\n" % (PORT_MODULES, start, later)
    mods = _run_probe(binary, fw_dir, head + _PROBE_MODULES)
    one = _run_probe(binary, fw_dir, "PORT = %r\n" % (PORT_MODULES,) + _PROBE_ONE_ROUTE)
    return mods, one


def pro_rata(m0, m1, ptr_bytes):
    """Bytes in use from mark m0 to m1 with the qstr pools counted by entry (a pointer, a length
    byte and a 2-byte hash on the unix port: 11 bytes on 64-bit, 7 on 32-bit, measured) instead
    of as allocated. A pool doubles when it is full, so the step that crosses a line (620 names,
    then 1260) carries the room for hundreds more: 7 KB on 64-bit, 4.4 KB on 32-bit. A board runs
    more than the firmware (board.py, main.py, the port's own names) and crosses its lines
    elsewhere, so a firmware just under one is not that much smaller there; this figure is."""
    pools = (m1[3] - m1[4]) - (m0[3] - m0[4])
    return (m1[1] - m0[1]) - pools + (m1[2] - m0[2]) * (ptr_bytes + 3)


# ---- the sim board: the bench's figure, split ----

_SIM_MAIN = r'''# main.py wrapped by harness.heapmods: the heap marked after each of main.py's steps
import gc, micropython
def _m(label):
    gc.collect(); gc.collect()
    print("%s %s %d" % ("''' + MARK + r'''", label, gc.mem_alloc()))
    micropython.qstr_info()
_m("boot (_simboot)")
import asyncio
_m("import asyncio")
import network, machine, esp32
_m("fakes: network, machine, esp32")
import board
_m("import board")
import nostall.settings
_m("import nostall.settings")
import nostall.server
_m("import nostall.server (+ its modules)")
import app
_m("import app (+ web, ...)")
_make = app.make_app
def _make_app(hw):
    a = _make(hw)
    _m("app.make_app(hw)")
    return a
app.make_app = _make_app
_init = nostall.server.Server.__init__
def _server_init(self, *a, **kw):
    _m("main(): settings, Board, app (live at Server())")
    _init(self, *a, **kw)
    _m("Server(...)")
nostall.server.Server.__init__ = _server_init
import main_real  # noqa: F401 - firmware/main.py as it is
'''


def _bench_status(binary, fw, log=None, heap=None):
    """/status?gc=1 of a sim board on fw the way benchmem.heap reads it (the first /status warms
    caches), with binary as its MicroPython."""
    from harness import simboard
    from harness.target import get_status

    old = micropython.binary
    micropython.binary = lambda: binary
    try:
        kw = {"heap": heap} if heap else {}
        with simboard.SimBoard(firmware=fw, log=log, **kw) as s:
            get_status(s.url, gc=True)
            return get_status(s.url, gc=True)
    finally:
        micropython.binary = old


def sim_figures(binary, fw_dir, heap=None):
    """The sim board on fw_dir, binary as its MicroPython: marks after each of main.py's steps
    (main.py wrapped, so they include the wrapper's own bytecode), then the bench's figure from
    a board started as the bench starts it (main.py as it is). Returns (marks, figures)."""
    tmp = tempfile.mkdtemp(prefix="heapmods-sim-")
    try:
        fw = os.path.join(tmp, "fw")
        os.makedirs(fw)
        for name in os.listdir(fw_dir):
            if name not in ("main.py", "__pycache__"):
                os.symlink(os.path.join(os.path.abspath(fw_dir), name), os.path.join(fw, name))
        shutil.copyfile(os.path.join(fw_dir, "main.py"), os.path.join(fw, "main_real.py"))
        with open(os.path.join(fw, "main.py"), "w") as f:
            f.write(_SIM_MAIN)
        log = os.path.join(tmp, "sim.log")
        wrapped = _bench_status(binary, fw, log, heap)
        with open(log) as f:
            marks, notes = parse_marks(f)
        marks.append(("serving, /status?gc=1 (wrapped main.py)", wrapped["heap_alloc"], None, None))
        st = _bench_status(binary, fw_dir, None, heap)
        by = {m[0]: m[1] for m in marks}
        fakes = by["fakes: network, machine, esp32"] - by["import asyncio"]
        figures = {"bench": st["heap_alloc"], "fakes": fakes, "bench_minus_fakes": st["heap_alloc"] - fakes,
                   "connections_peak": st.get("connections_peak"), "limits": st.get("limits", {}), "notes": notes}
        return marks, figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- output ----

def table(marks, title, out=print):
    """marks: (label, bytes in use[, qstrs, qstr bytes]). The qstr columns: MicroPython's
    interned names and strings (qstr_info: pools, which double as they fill, and their text);
    "+ w/o qstr" is the step's cost without its qstrs."""
    out("%s" % title)
    out("  %-46s %8s %8s %7s %8s %9s" % ("step", "in use", "+ bytes", "+ qstrs", "+ qstr B", "+ w/o qstr"))
    prev = None
    for m in marks:
        label, n = m[0], m[1]
        q = m[2:4] if len(m) > 2 and m[2] is not None else None
        if prev is None:
            out("  %-46s %8d" % (label, n))
        else:
            d = n - prev[0]
            if q and prev[1]:
                dq, db = q[0] - prev[1][0], q[1] - prev[1][1]
                out("  %-46s %8d %+8d %+7d %+8d %+9d" % (label, n, d, dq, db, d - db))
            else:
                out("  %-46s %8d %+8d" % (label, n, d))
        prev = (n, q)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--firmware", default=FIRMWARE, help="firmware folder (sources; default %(default)s)")
    ap.add_argument("--mpy", action="store_true", help="compile it to .mpy first (main.py stays source)")
    ap.add_argument("--mpy-opt", type=int, default=None, help="mpy-cross -O level (default: none, as make deploy)")
    ap.add_argument("--micropython", default=None, help="the unix port binary (default: the venv's)")
    ap.add_argument("--m32", action="store_true", help="the 32-bit build in %s" % M32_DIR)
    ap.add_argument("--frozen", action="store_true", help="the binary has the firmware frozen in: import it from there")
    ap.add_argument("--sim", action="store_true", help="also the sim board's heap after start-up, split")
    ap.add_argument("--sim-only", action="store_true", help="only the sim board's figures")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    a = ap.parse_args(argv)
    binary = a.micropython or (os.path.join(M32_DIR, "micropython") if a.m32 else micropython.binary())
    if not os.path.exists(binary):
        sys.exit("error: no %s (build it: ../shared/facts.md, 32-bit recipe)" % binary)
    bits32 = a.m32 or subprocess.run([binary, "-c", "import sys; print(sys.maxsize)"], capture_output=True,
                                     text=True, timeout=30).stdout.strip() == str(2**31 - 1)
    src = os.path.abspath(a.firmware)
    tmp = None
    fw = src
    if a.frozen:
        if a.mpy or a.sim or a.sim_only:
            sys.exit("error: --frozen measures the frozen firmware alone (no --mpy, no --sim)")
        tmp = tempfile.mkdtemp(prefix="heapmods-")
        fw = tmp  # an empty folder on the path: every import comes from .frozen
    if a.mpy:
        tmp = tempfile.mkdtemp(prefix="heapmods-")
        fw = compile_tree(src, os.path.join(tmp, "mpy"), mpy_cross_for(binary), a.mpy_opt, "x86" if bits32 else "host")
    kind = ".mpy%s" % (" -O%d" % a.mpy_opt if a.mpy_opt else "") if a.mpy else "frozen" if a.frozen else "source"
    bits = "32-bit" if bits32 else "64-bit"
    report = {"firmware": src, "form": kind, "interpreter": binary}
    try:
        if not a.sim_only:
            (mods, notes), (one, one_notes) = probe(binary, fw, src)
            table(mods, "== %s, %s (%s): imports in dependency order, then the default app and Server" % (src, kind, bits))
            for n in notes:
                print("   ", n)
            by = {m[0]: m[1] for m in mods}
            base = by["port modules"]
            srv = by["Server(app, Config())"]
            ptr = 4 if bits32 else 8
            print("  nostall + app + Server over the port's modules: %d bytes (%d with qstr pools pro rata)"
                  % (srv - base, pro_rata(mods[1], [m for m in mods if m[0] == "Server(app, Config())"][0], ptr)))
            table(one, "== one-route app (App, 1 GET route, Server) from nothing, %s, %s" % (kind, bits))
            print("  one-route app over the port's modules: %d bytes (%d with qstr pools pro rata)"
                  % (one[-1][1] - one[1][1], pro_rata(one[1], one[-1], ptr)))
            for n in one_notes:
                print("   ", n)
            report.update(modules=mods, one_route=one)
        if a.sim or a.sim_only:
            marks, fig = sim_figures(binary, fw)
            table(marks, "== sim board (the bench's setup: fakes, board.py, settings, default app), %s, %s" % (kind, bits))
            lim = fig["limits"]
            print("  the bench's figure (main.py as it is): %d bytes in use after start-up; the fakes of the port's"
                  % fig["bench"])
            print("  modules hold %d of them (C modules on a board): %d without; connections_peak %s, slots %s x"
                  " recv_buffer_bytes %s" % (fig["fakes"], fig["bench_minus_fakes"], fig["connections_peak"],
                                            lim.get("max_connections"), lim.get("recv_buffer_bytes")))
            report["sim"] = marks
            report["sim_figures"] = {k: v for k, v in fig.items() if k != "notes"}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
