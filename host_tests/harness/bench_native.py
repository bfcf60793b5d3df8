"""MicroPython's native code emitter on the firmware's hot functions (issue 18): for each function
named, a copy of the firmware with @micropython.native (or =viper) on it alone; what mpy-cross makes
of its module for the C3 (rv32imc) and the ESP32 (xtensawin) (compiles or not, .mpy bytes added),
and the instructions its request phases save (harness.bench_phases, valgrind on the unix port, so
x64 native code: an estimate; phases without the allocator, whose cost moves with the heap's layout).
The firmware itself is never edited.

--set puts every named function native at once and counts the whole kept-alive request too
(benchmem.instructions; there the allocator's share moves by a few thousand with the layout);
--qemu also counts it on the QEMU C3 (harness.qemu_icount: real RV32 instructions, root).

    PYTHONPATH=host_tests:firmware python -m harness.bench_native [--firmware DIR] [--set] [--qemu]
        [nostall/head.py:request_head nostall/framing.py:plan=viper ...]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from harness import bench_phases, benchmem, contestants
from harness.paths import FIRMWARE
from harness.qemu import MPY_CROSS

ARCHS = ("rv32imc", "xtensawin")
# the hot functions of a kept-alive GET (make bench BENCH=phases), by phase
CANDIDATES = (
    "nostall/proto.py:RequestReader.next", "nostall/head.py:request_head",
    "nostall/head.py:_request_line", "nostall/proto.py:RequestReader._framing",
    "nostall/request.py:Request.__init__", "nostall/routes.py:Routes._find", "nostall/web.py:App.dispatch",
    "nostall/response.py:Response.__init__", "nostall/response.py:Response.set_header",
    "nostall/response.py:make_response", "nostall/response.py:_make_response", "nostall/framing.py:check_header",
    "nostall/framing.py:plan", "nostall/framing.py:response_head", "nostall/framing.py:status_line",
    "nostall/waiter.py:Waiter.recv", "nostall/waiter.py:Waiter.__next__",
)
PHASES = ("parse", "dispatch", "framing", "sched", "parse_browser")


def decorate(path, qual, emit="native"):
    """Put @micropython.<emit> on the def of qual ("func" or "Class.method") in the file at path."""
    with open(path) as f:
        lines = f.read().split("\n")
    parts = qual.split(".")
    start, indent = 0, ""
    if len(parts) == 2:
        start = next((i for i, line in enumerate(lines) if re.match(r"class %s\b" % re.escape(parts[0]), line)), None)
        if start is None:
            raise ValueError("no class %s in %s" % (parts[0], path))
        indent = "    "
    for i in range(start, len(lines)):
        if re.match(r"%s(async )?def %s\(" % (indent, re.escape(parts[-1])), lines[i]):
            lines.insert(i, "%s@micropython.%s" % (indent, emit))
            with open(path, "w") as f:
                f.write("\n".join(lines))
            return
    raise ValueError("no def %s in %s" % (qual, path))


def variant(src, out, names):
    """A copy of the firmware tree src at out with the named functions ("file:qual[=emitter]") native."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__"))
    for name in names:
        path, qual = name.split(":")
        qual, _, emit = qual.partition("=")
        decorate(os.path.join(out, path), qual, emit or "native")
    return out


def mpy_bytes(path, arch, tmp, name):
    """Size of the module's .mpy for arch (named name inside, as make mpy does), or mpy-cross's error."""
    out = os.path.join(tmp, "m.mpy")
    p = subprocess.run([MPY_CROSS, "-march=" + arch, "-s", name, "-o", out, path], capture_output=True, text=True)
    if p.returncode:
        return (p.stderr.strip().splitlines() or ["failed"])[-1]
    return os.path.getsize(out)


def sizes(src, fw, files, tmp):
    """{arch: .mpy bytes added (int) or mpy-cross's error (str)}, over the given files."""
    out = {}
    for arch in ARCHS:
        added = 0
        for f in files:
            a, b = mpy_bytes(os.path.join(src, f), arch, tmp, f), mpy_bytes(os.path.join(fw, f), arch, tmp, f)
            if isinstance(b, str):
                added = b
                break
            added += b - a
        out[arch] = added
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("functions", nargs="*", help="file:Class.func[=viper] (default: %d hot functions)" % len(CANDIDATES))
    ap.add_argument("--firmware", default=FIRMWARE, help="the firmware to copy (default firmware/)")
    ap.add_argument("--set", action="store_true", help="all named functions at once, and the whole request")
    ap.add_argument("--qemu", action="store_true", help="with --set: also on the QEMU C3 (root)")
    ap.add_argument("--heap", default="256K", help="the server's heap for --set (default %(default)s)")
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    names = a.functions or list(CANDIDATES)
    src = os.path.abspath(a.firmware)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("== the phases of %s as it is" % src)
        base = bench_phases.phases(src, tmp)
        groups = [names] if a.set else [[n] for n in names]
        for group in groups:
            label = "the set" if a.set else group[0]
            fw = variant(src, os.path.join(tmp, "fw"), group)
            size = sizes(src, fw, sorted({n.split(":")[0] for n in group}), tmp)
            r = {"mpy bytes added": size}
            if not any(isinstance(v, str) for v in size.values()):
                ph = bench_phases.phases(fw, tmp)
                r["saved per request"] = {k: round(base[k]["net"] - ph[k]["net"]) for k in PHASES if k in ph}
                if a.set:
                    cs = [contestants.Contestant(n, "-", sim=True, firmware=d) for n, d in (("as is", src), ("native", fw))]
                    t = {c.name: benchmem.instructions(c, tmp, heap=a.heap)["instructions per keep-alive request"]
                         for c in cs}
                    r["whole request"] = {k: round(v) for k, v in t.items()}
                    if a.qemu:
                        r["QEMU C3"] = qemu_counts({"as is": src, "native": fw})
            res[label] = r
            print("%-48s %s" % (label, json.dumps(r)), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


def qemu_counts(trees):
    """RV32 instructions per kept-alive request on the QEMU C3 for each firmware tree."""
    from harness import qemu, qemu_icount

    why = qemu.missing()
    if why:
        return why
    stage = qemu.stage
    out = {}
    try:
        for name, fw in trees.items():
            qemu.stage = lambda firmware=None, settings=None, app_dir=None, _fw=fw: stage(_fw, settings, app_dir)
            m = qemu_icount.measure("nostall", 50, 250, 1000, 3, kinds=("kept alive",))
            out[name] = m["kept alive"]["instructions per request"]
    finally:
        qemu.stage = stage
    return out


if __name__ == "__main__":
    if not shutil.which("valgrind"):
        sys.exit("error: valgrind not found: apt-get install valgrind")
    main()
