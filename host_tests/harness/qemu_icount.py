"""Cost per request on the real instruction set (issue 17): guest instructions per GET on the QEMU
ESP32-C3 board (harness/qemu.py), for this server, for bound.py (the bench's bare asyncio server:
readline()s, a canned answer) and for bare-read (the same with one read(512) a head), on the same
image, and the requests/s on a 160 MHz C3 that follow.

Method. QEMU runs with -icount shift=3,sleep=on (an instruction is 8 ns of virtual time), and the
RISC-V instret CSR (0xC02) then reads QEMU's raw instruction count: executed instructions only (a
CPU halted in WFI executes none; the idle warp of the virtual clock is a separate bias). The board
reads it in a viper function whose constant load is patched into `csrr a0, instret` (the image has
no inline assembler) and answers GET /_icount with it and time.ticks_us() (the virtual clock), on a
connection of its own. Between two probes the host sends n GETs from one client (kept alive on one
connection, or one new connection each). What the board runs while it waits for the client
(FreeRTOS ticks, poll wake-ups, the server's ticker) is subtracted: the idle rate (instructions per
ns of idle) comes from probe pairs with nothing between, and a window's idle time is its virtual
time minus 8 ns an instruction. The probes' own cost cancels in the difference of loads n1 < n2.

    python -m harness.qemu_icount [--n1 50 --n2 250 --reps 3 --shift 3] [--unix]   (reports/qemu_icount.json)"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from harness import qemu
from harness.paths import HOST_TESTS, ROOT
from harness.target import RawConn

MHZ = 160
SHIFT = 3  # -icount shift: 8 ns an instruction, near the C3's 6.25 ns at 160 MHz (see measure())
CPI = 1.0  # assumed cycles per instruction on the C3 (see notes())
REPORT = os.path.join(ROOT, "reports", "qemu_icount.json")

PROBE = '''# the icount measurement's probe: instret and the virtual clock, as the body GET /_icount answers
import time


@micropython.viper
def instret() -> uint:
    return uint(0x12345)  # its "lui a0; addi a0" are patched into "csrr a0, instret; addi a0, a0, 0"


def answer():
    i = instret()
    return "%d %d" % (i, time.ticks_us())
'''

APP = '''# GET / -> hello: the bench's minimal app (apps_bench/nostall) without /big; GET /_icount: the probe
import qprobe
from nostall.web import TEXT, App, Response


def make_app(hw):
    app = App()

    @app.get("/")
    def hello(req):
        return Response("hello", content_type=TEXT)

    @app.get("/_icount")
    def icount(req):
        return Response(qprobe.answer(), content_type=TEXT)

    return app
'''

LOAD_CONST = bytes.fromhex("3725010013055534")  # lui a0, 0x12; addi a0, a0, 0x345
READ_INSTRET = bytes.fromhex("7325 20c0 1305 0500")  # csrrs a0, instret (0xc02), zero; addi a0, a0, 0
SERVERS = ("bare", "nostall", "bare-read")  # bare: bound.py's readline()s; bare-read: one read(512) a head
KINDS = ("kept alive", "new connection")
REQ = b"GET / HTTP/1.1\r\nHost: c3\r\n\r\n"


def staged(which, tmp):
    """The board's files: the firmware with the hello app and the probe; main.py its own or BARE."""
    with open(os.path.join(tmp, "app.py"), "w") as f:
        f.write(APP)
    files = qemu.stage(app_dir=tmp)
    files["qprobe.mpy"] = probe_mpy(tmp)
    if which != "nostall":
        with open(os.path.join(HOST_TESTS, "apps_qemu", "bare_main.py"), "rb") as f:
            files["main.py"] = ("ONE_READ = %s\n" % (which == "bare-read")).encode() + f.read()
    return files


def probe_mpy(tmp):
    """The probe compiled for the C3 with its viper constant load replaced by a read of instret: the
    board's firmware has no inline assembler (MICROPY_EMIT_INLINE_ASM), but it runs viper code."""
    src, out = os.path.join(tmp, "qprobe.py"), os.path.join(tmp, "qprobe.mpy")
    with open(src, "w") as f:
        f.write(PROBE)
    subprocess.run([qemu.MPY_CROSS, "-march=" + qemu.MPY_ARCH, "-o", out, src], check=True)
    with open(out, "rb") as f:
        mpy = f.read()
    if mpy.count(LOAD_CONST) != 1:
        raise RuntimeError("mpy-cross no longer emits lui/addi for the probe's constant: %s" % mpy.hex())
    os.remove(src)
    return mpy.replace(LOAD_CONST, READ_INSTRET)


def probe(addr):
    """(instret, virtual µs) on the board, read while it serves GET /_icount (a connection of its own)."""
    with RawConn(addr, 80, timeout=10) as c:
        r = c.request("GET", "/_icount")
    i, t = r.body.split()
    return int(i) % (1 << 32), int(t)


def window(addr, load, n, shift):
    """(instructions, idle ns) between two probes around load(n): idle is the virtual time the
    instructions do not account for (2**shift ns each)."""
    i0, t0 = probe(addr)
    load(addr, n)
    time.sleep(0.05)  # the board's last FIN/ACK handled before the closing probe
    i1, t1 = probe(addr)
    di = (i1 - i0) % (1 << 32)
    dv = ((t1 - t0) % (1 << 30)) * 1000  # ticks_us wraps at 2**30 on the esp32 port
    return di, max(dv - (di << shift), 0)


def kept_alive(addr, n):
    with RawConn(addr, 80, timeout=10) as c:
        for _ in range(n):
            c.send(REQ)
            assert c.response().body == b"hello"


def new_connections(addr, n):
    for _ in range(n):
        with RawConn(addr, 80, timeout=10) as c:
            c.send(REQ)
            assert c.response().body == b"hello"


def idle(addr, n):
    time.sleep(n / 1000)


def measure(which, n1, n2, idle_ms, reps, shift=SHIFT, kinds=KINDS, warm=20, log=None):
    """Instructions per request ({kind: figures} for kinds) for one of SERVERS on a fresh board."""
    with tempfile.TemporaryDirectory() as tmp:
        qb = qemu.QemuBoard(ns="qicount-%d" % os.getpid(), files=staged(which, tmp), log=log,
                            qemu_args=["-icount", "shift=%d,sleep=on,align=off" % shift])
        with qb, qb.target().client():
            kept_alive(qb.addr, warm)  # warm-up: first-use allocations, imports, caches
            new_connections(qb.addr, warm)
            idles = [window(qb.addr, idle, idle_ms, shift) for _ in range(reps)]
            rate = sum(i for i, _ in idles) / max(sum(d for _, d in idles), 1)  # instructions per idle ns
            out = {"idle instructions per ms": round(rate * 1e6), "boot s": round(qb.boot_s, 1)}
            for name in kinds:
                load = kept_alive if name == "kept alive" else new_connections
                per, raw = [], []
                for _ in range(reps):
                    w = {n: window(qb.addr, load, n, shift) for n in (n1, n2)}
                    net = {n: i - rate * d for n, (i, d) in w.items()}
                    per.append((net[n2] - net[n1]) / (n2 - n1))
                    raw.append((w[n2][0] - w[n1][0]) / (n2 - n1))
                out[name] = {"instructions per request": round(sorted(per)[len(per) // 2]),
                             "runs": [round(p) for p in per], "uncorrected": [round(r) for r in raw]}
            return out


def firmware_rev():
    """The commit measured, and "+ changes" when firmware/ differs from it (the working tree is staged)."""
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "firmware"], capture_output=True, text=True).stdout
    return rev + (" + changes in firmware/" if dirty.strip() else "")


def unix_figures():
    """valgrind instructions per kept-alive request on the unix port (make bench BENCH=instructions)."""
    from harness import benchmem, contestants

    with tempfile.TemporaryDirectory() as tmp:
        return {c.name: round(benchmem.instructions(c, tmp)["instructions per keep-alive request"])
                for c in (contestants.BOUND, contestants.THIS)}


def notes():
    return ("%d MHz / (CPI %.1f x instructions): the C3 is single-issue in-order RV32IMC, most instructions "
            "one cycle, but taken branches, loads, mul/div and flash-cache misses (code runs from flash through "
            "a 16 KB cache) cost more, so these are upper bounds; Wi-Fi (not QEMU's Ethernet) not included" % (MHZ, CPI))


def main():
    ap = argparse.ArgumentParser(description="Guest instructions per request on the QEMU ESP32-C3 board.")
    ap.add_argument("--n1", type=int, default=50, help="requests in the small load (default %(default)s)")
    ap.add_argument("--n2", type=int, default=250, help="requests in the large load (default %(default)s)")
    ap.add_argument("--reps", type=int, default=3, help="load pairs per kind; the median is kept (default %(default)s)")
    ap.add_argument("--idle-ms", type=int, default=1000, help="each idle window (default %(default)s)")
    ap.add_argument("--shift", type=int, default=SHIFT, help="-icount shift (default %(default)s: 8 ns an instruction)")
    ap.add_argument("--unix", action="store_true", help="also the unix port's valgrind figure (make bench's)")
    ap.add_argument("--out", default=REPORT, help="JSON report (default reports/qemu_icount.json)")
    a = ap.parse_args()
    why = qemu.missing()
    if why:
        sys.exit("error: " + why)
    t0 = time.monotonic()
    res = {}
    for which in SERVERS:
        print("== %s on the QEMU C3 (-icount shift=%d), loads of %d and %d requests" % (which, a.shift, a.n1, a.n2), flush=True)
        res[which] = measure(which, a.n1, a.n2, a.idle_ms, a.reps, a.shift)
        print("   " + json.dumps(res[which]), flush=True)
    kinds = KINDS
    per = {w: {k: res[w][k]["instructions per request"] for k in kinds} for w in SERVERS}
    est = {w: {k: round(MHZ * 1e6 / (CPI * per[w][k])) for k in kinds} for w in SERVERS}
    ratios = {"nostall / %s" % w: {k: round(per["nostall"][k] / per[w][k], 2) for k in kinds} for w in SERVERS if w != "nostall"}
    print("\n%-22s %12s %15s %13s %15s" % ("instructions/request", "kept alive", "new connection", "req/s kept", "req/s new"))
    for w in SERVERS:
        print("%-22s %12d %15d %13d %15d" % (w, per[w]["kept alive"], per[w]["new connection"], est[w]["kept alive"],
                                             est[w]["new connection"]))
    for name, r in ratios.items():
        print("%-22s %12.2f %15.2f" % (name, r["kept alive"], r["new connection"]))
    print("  req/s: %s" % notes())
    report = {"method": __doc__.split("\n\n")[1], "mhz": MHZ, "cpi assumed": CPI, "note": notes(), "n1": a.n1,
              "n2": a.n2, "icount shift": a.shift, "firmware": firmware_rev(), "servers": res, "ratios": ratios, "req/s at 160 MHz": est}
    if a.unix:
        try:
            u = unix_figures()
        except Exception as e:  # e.g. the sim board out of heap: the QEMU figures stand
            u = None
            print("unix port figure unavailable: %s" % e)
    if a.unix and u:
        report["unix port valgrind kept alive"] = dict(u, ratio=round(u["nostall"] / u["bound"], 2))
        print("unix port (make bench's valgrind count, user space only), kept alive: bound %d, nostall %d, "
              "nostall / bound %.2f" % (u["bound"], u["nostall"], u["nostall"] / u["bound"]))
    report["run s"] = round(time.monotonic() - t0)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print("wrote %s (%d s)" % (a.out, report["run s"]))


if __name__ == "__main__":
    main()
