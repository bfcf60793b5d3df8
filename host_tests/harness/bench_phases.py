"""`make bench BENCH=phases`: where the instructions of one kept-alive request go, this server
beside the bare asyncio bound (issue 18). Counted by valgrind (callgrind) on the unix port, so the
numbers hold on a busy machine; kernel work (the system calls themselves) is not counted.

  total      - instructions per kept-alive GET / (benchmem.instructions: two server runs, 200 and
               1200 requests on one connection, the difference)
  parse      - proto.RequestReader.next() on the bench's request: a Request, then None
  dispatch   - web.App.dispatch() awaited: the route, the handler, its Response (of which: the
               route lookup App._find, and the handler alone)
  framing    - framing.plan(): body mode, keep-alive, the response head as bytes
  remainder  - total minus those three, split into: the scheduler (one readiness wait: Waiter.recv,
               asyncio's loop, select.poll, the task resumed), socket reads and writes (the C side
               of readinto/write, mp_stream_rw, from the server's run), garbage collection
               (gc_collect, from the server's run), the ticker (the server's idle rate times the
               time a request took under valgrind), and the shell: what is left (the connection
               loop, pool and stats bookkeeping, joining head and body)

Each phase runs on its own in a loop (apps_bench/phases/phases.py, after one warm-up request),
N1 and N2 times, in one valgrind run that dumps its count at every gc.isenabled() the script calls
between loops; a phase is its loop's cost per iteration minus its baseline's (the same loop
without the phase's call). The GC runs as usual in the bench's heap, but its collections are
left out of the phases (told apart by C function): the server's run counts them where they fall. The bound's parse and dispatch are its startswith and comparisons (it has no
framing: canned answers). Also printed: heap bytes each phase allocates, and each phase's
instructions by kind of C function (self cost): the bytecode loop (what MicroPython's native
emitter can remove), dict and attribute lookups, interned-string searches (every new str),
allocation, regular expressions, calls and frames, thread-state look-ups (unix port only).

    PYTHONPATH=host_tests:firmware python -m harness.bench_phases [--firmware DIR] [--base REV]
        [--n1 100 --n2 600] [--heap 256K] [--no-bound] [--no-idle] [--json FILE]
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

from harness import benchmem, contestants, micropython
from harness.paths import APPS_BENCH
from harness.simboard import DEFAULT_HEAP

SCRIPT = os.path.join(APPS_BENCH, "phases", "phases.py")
IDLE_S = 4  # seconds of idle server, for the ticker's rate
# what each phase's loop is measured against (its loop without the phase's call)
PHASES = (
    ("parse", "parse", "feed", "parse: RequestReader.next() on the bench's GET /"),
    ("dispatch", "dispatch", "empty", "dispatch: App.dispatch awaited (route, handler, Response)"),
    ("find", "find", "empty", "  of which the route lookup, App._find"),
    ("handler", "handler", "empty", "  of which the handler, Response(\"hello\")"),
    ("framing", "framing", "empty", "framing: framing.plan, the response head"),
    ("join", "join", "empty", "head + body joined for one write"),
    ("parse_browser", "parse_browser", "feed_browser", "parse: a browser's GET (9 fields)"),
    ("sched", "sched", "sched_base", "scheduler: one readiness wait"),
    ("bound_parse", "bound_parse", "empty", "the bound's line checks and startswith"),
)
# C functions by kind, on self cost (first match wins; the rest is "other")
KINDS = (
    ("bytecode loop", r"mp_execute_bytecode"),
    ("dict/attribute lookups", r"mp_map_lookup|mp_obj_instance_attr|mp_obj_class_lookup|mp_load_method|mp_load_global|"
     r"mp_load_name|mp_load_attr|mp_store_attr|mp_convert_member_lookup|mp_map_rehash|dict_get_helper|"
     r"mp_obj_instance_store_attr|mp_load_super_method"),
    ("interned-string search", r"qstr_find_strn|find_qstr|qstr_compute_hash|qstr_hash|qstr_len|qstr_str|qstr_data"),
    ("heap allocation", r"gc_alloc|gc_free|gc_realloc|m_malloc|m_free|m_realloc|mp_obj_malloc"),
    ("garbage collection", r"gc_collect|gc_mark|gc_sweep|gc_deal_with_stack_overflow|gccollect|gc_helper"),
    ("regular expressions", r"recursiveloop|_re1_5|re1_5|re_exec|mod_re"),
    ("calls and frames", r"mp_setup_code_state|fun_bc_call|mp_call_|fun_builtin|mp_arg_check|nlr_|mp_cstack|"
     r"mp_obj_gen_resume|mp_resume|gen_instance|gen_resume|mp_native_|mp_obj_fun_"),
    ("thread state (unix port)", r"pthread_|mp_thread_"),
)
# inclusive C costs taken from the server's own runs
# (the Python-callable entry points: readinto/read/write go through mp_stream_rw, readline does not)
SOCKET_IO = ("stream_readinto", "stream_read", "stream_write_method", "stream_unbuffered_readline", "socket_accept",
             "socket_recv", "socket_send")
POLL = ("poll_ipoll", "poll_poll", "poll_register", "poll_modify", "poll_unregister")
GC = ("gc_collect",)


def read_callgrind(path):
    """(total Ir, self Ir by function, inclusive Ir by function) of one callgrind profile. The
    inclusive cost is a function's own and that of the calls it made: right for functions that
    do not recurse (the interpreter's do, and are not asked for)."""
    names = {}
    own = collections.Counter()
    out = collections.Counter()
    total = 0
    fn = None
    call = False
    with open(path) as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in ("+", "-", "*"):
                parts = line.split()
                ir = int(parts[1]) if len(parts) > 1 else 0
                if call:
                    out[fn] += ir
                    call = False
                else:
                    own[fn] += ir
            elif line.startswith("fn="):
                fn = _name(names, line[3:].strip())
            elif line.startswith("cfn="):
                _name(names, line[4:].strip())
            elif line.startswith("calls="):
                call = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    incl = collections.Counter(own)
    incl.update(out)
    return total, own, incl


def _name(names, s):
    # callgrind's compressed names: "(12) name" the first time, "(12)" after
    m = re.match(r"\((\d+)\)(?: (.*))?$", s)
    if not m:
        return s
    if m.group(2) is not None:
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), "?" + m.group(1))


def kinds(own):
    """Self costs summed by KINDS (and "other")."""
    out = collections.Counter()
    pats = [(k, re.compile(p)) for k, p in KINDS]
    for fn, ir in own.items():
        base = fn.split("'")[0] if fn else ""
        for k, p in pats:
            if p.match(base):
                out[k] += ir
                break
        else:
            out["other"] += ir
    return out


def _per(a, b, n):
    return {k: (b.get(k, 0) - a.get(k, 0)) / n for k in set(a) | set(b)}


def phases(firmware, tmp, n1=100, n2=600):
    """Each phase's instructions per request (its loop minus its baseline, collections left out),
    heap bytes and kinds, on the firmware in that folder.
    Returns {phase: {"instructions", "bytes", "kinds": {kind: instructions}}}."""
    out = os.path.join(tmp, "phases")
    argv = micropython.argv(SCRIPT, [n1, n2, contestants.free_port(), contestants.NOSTALL_SETTINGS], heap=DEFAULT_HEAP)
    env = micropython.env([contestants.NOSTALL_APP, firmware])
    p = subprocess.run(["valgrind", "--tool=callgrind", "--dump-before=gc_isenabled", "--callgrind-out-file=" + out]
                       + argv, env=env, cwd=tmp, capture_output=True, text=True, timeout=900)
    try:
        if p.returncode != 0:
            raise RuntimeError("the phase script failed: %s" % (p.stdout + p.stderr)[-600:])
        result = json.loads(p.stdout.strip().splitlines()[-1])
        loops = {}
        for k, label in enumerate(result["labels"]):
            # two dumps per mark (phases.py _mark); the loop after mark k is in dump 2k+3
            total, own, _ = read_callgrind("%s.%d" % (out, 2 * k + 3))
            ks = kinds(own)
            ks["total"] = total - ks.get("garbage collection", 0)
            loops[label] = ks
    finally:
        for f in os.listdir(tmp):
            if f.startswith("phases"):
                os.remove(os.path.join(tmp, f))
    figures = {}
    for key, loop, base, _ in PHASES:
        if "%s:%d" % (loop, n2) not in loops:
            continue
        d = {name: _per(loops["%s:%d" % (name, n1)], loops["%s:%d" % (name, n2)], n2 - n1) for name in (loop, base)}
        ks = {k: d[loop][k] - d[base].get(k, 0) for k in d[loop]}
        ks.pop("garbage collection", None)
        nbytes = result["alloc"].get(loop, 0) - result["alloc"].get(base, 0)
        total = ks.pop("total")
        figures[key] = {"instructions": total, "net": total - ks.get("heap allocation", 0), "bytes": nbytes,
                        "kinds": ks}
    return figures


def server_split(keep, requests):
    """From the server's two runs (benchmem.instructions keep=): per request, the C costs that are
    the remainder's (socket I/O, poll, GC) and the whole request by kind."""
    (pa, _), (pb, _) = keep["few"], keep["many"]
    ta, own_a, inc_a = read_callgrind(pa)
    tb, own_b, inc_b = read_callgrind(pb)
    out = {
        "socket I/O": sum(inc_b[f] - inc_a[f] for f in SOCKET_IO) / requests,
        "poll": sum(inc_b[f] - inc_a[f] for f in POLL) / requests,
        "gc": sum(inc_b[f] - inc_a[f] for f in GC) / requests,
    }
    ka, kb = kinds(own_a), kinds(own_b)
    out["kinds"] = {k: (kb[k] - ka[k]) / requests for k in set(ka) | set(kb)}
    return out


def idle_rate(c, tmp, seconds=IDLE_S, heap=DEFAULT_HEAP):
    """Instructions per second of the sim board idle (its ticker), after one request."""
    counts = []
    for idle in (0, seconds):
        port = contestants.free_port()
        board = benchmem._sim(c, port=port, heap=heap, settings=contestants.NOSTALL_SETTINGS, extra_path=[contestants.NOSTALL_APP])
        env = board.env
        env.update(contestants.app_env(port))
        counts.append(benchmem._counted(board.argv, env, board.cwd, port, 1, tmp, idle_s=idle))
    return (counts[1] - counts[0]) / seconds


def measure(c, tmp, n1=100, n2=600, idle=True, few=200, many=1200, firmware=None, heap=DEFAULT_HEAP, out=print):
    """Every figure of one contestant: {"total", "phases", "split", "ticker"} (the bound: no ticker).
    firmware: the one its phases run on (default its own, or firmware/); heap: the server's."""
    keep = {}
    out("  %s: the server, %d and %d requests" % (c.name, few, many))
    total = benchmem.instructions(c, tmp, few, many, keep=keep, heap=heap)["instructions per keep-alive request"]
    split = server_split(keep, many - few)
    for path, _ in keep.values():
        os.remove(path)
    out("  %s: the phases, %d and %d times" % (c.name, n1, n2))
    ph = phases(firmware or c.firmware or contestants.FIRMWARE, tmp, n1, n2)
    ticker = None
    if idle and c.sim:
        out("  %s: idle for %d s" % (c.name, IDLE_S))
        try:
            rate = idle_rate(c, tmp, heap=heap)
        except Exception as e:  # the rest stands; the ticker stays in the shell's share
            out("  %s: no idle rate: %s" % (c.name, str(e)[-200:]))
        else:
            ticker = rate * (keep["many"][1] - keep["few"][1]) / (many - few)
    return {"total": total, "phases": ph, "split": split, "ticker": ticker}


def rows(m, bound=False):
    """(label, instructions, note) rows of one contestant's breakdown. The phases are counted
    without the allocator (its cost in isolation depends on the heap's layout): the allocator and
    the collections come from the server's own run, as rows of their own."""
    ph, sp = m["phases"], m["split"]
    alloc = sp["kinds"].get("heap allocation", 0)
    r = [("total per kept-alive request", m["total"], "benchmem.instructions")]

    def get(k):
        return ph[k]["net"] if k in ph else None

    if bound:
        used = get("bound_parse") or 0
        r.append(("parse + dispatch: line checks, startswith", get("bound_parse"), "isolated"))
        r.append(("heap allocator (gc_alloc, gc_free, ...)", alloc, "server run"))
        r.append(("garbage collection (gc_collect)", sp["gc"], "server run"))
        rest = m["total"] - used - alloc - sp["gc"]
        r.append(("remainder", rest, "total minus the above"))
        r.append(("  socket reads and writes (C, user side)", sp["socket I/O"], "server run: readline reads byte by byte"))
        r.append(("  poll (C)", sp["poll"], "server run: select.poll methods"))
        r.append(("  asyncio streams and scheduler: the rest", rest - sp["socket I/O"] - sp["poll"], ""))
        return r
    used = sum(get(k) or 0 for k in ("parse", "dispatch", "framing"))
    for k, _, _, label in PHASES:
        if k in ("parse", "dispatch", "find", "handler", "framing"):
            r.append((label, get(k), "isolated"))
    r.append(("heap allocator (gc_alloc, gc_free, ...)", alloc, "server run: every phase's allocations"))
    r.append(("garbage collection (gc_collect)", sp["gc"], "server run"))
    rest = m["total"] - used - alloc - sp["gc"]
    r.append(("remainder", rest, "total minus the above"))
    sched = get("sched")
    r.append(("  scheduler: one readiness wait", sched, "isolated: Waiter.recv, asyncio's loop, poll, resume"))
    r.append(("    of which poll (C)", sp["poll"], "server run: select.poll methods"))
    r.append(("  socket reads and writes (C, user side)", sp["socket I/O"], "server run: readinto, write"))
    r.append(("  ticker", m["ticker"], "idle rate x time per request under valgrind"))
    shell = rest - (sched or 0) - sp["socket I/O"] - (m["ticker"] or 0)
    r.append(("  shell: the rest", shell, "connection loop, pool, stats, Waiter"))
    r.append(("    of which head + body joined", get("join"), "isolated"))
    r.append(("(parse: a browser's GET, 9 fields)", get("parse_browser"), "isolated; not in the total"))
    return r


def _fmt(v):
    return "-" if v is None else "{:,}".format(int(round(v))).replace(",", " ")


def report(results):
    """The tables, as text: results is [(contestant name, figures, is the bound)]."""
    lines = []
    for name, m, bound in results:
        lines.append("%s: instructions per kept-alive request" % name)
        for label, v, note in rows(m, bound):
            pct = " %5.1f%%" % (100.0 * v / m["total"]) if v is not None and m["total"] else "       "
            lines.append("  %-48s %9s%s  %s" % (label, _fmt(v), pct, note))
        lines.append("")
    lines.append("heap allocated, bytes per request:")
    for name, m, bound in results:
        if bound:
            continue
        lines.append("  %s: %s" % (name, ", ".join("%s %s" % (k, _fmt(v["bytes"])) for k, v in m["phases"].items()
                                                    if k != "bound_parse")))
    kinds_order = [k for k, _ in KINDS] + ["other"]
    for name, m, bound in results:
        cols = ["whole request"] + ([] if bound else [k for k in ("parse", "dispatch", "framing", "sched", "parse_browser")
                                                  if k in m["phases"]])
        lines.append("")
        lines.append("%s: instructions per request by kind of C function (self cost; the bytecode loop is what native code"
                     " can remove; phases in isolation, without collections)" % name)
        lines.append("  %-26s" % "" + "".join("%15s" % c for c in cols))
        for k in kinds_order:
            vals = [m["split"]["kinds"].get(k, 0)] + [m["phases"][c]["kinds"].get(k, 0) for c in cols[1:]]
            lines.append("  %-26s" % k + "".join("%15s" % _fmt(v) for v in vals))
    return "\n".join(lines)


def figures_of(m, bound=False):
    """The rows as bench.json figures ("instructions, <row>")."""
    return {"instructions, " + label.strip(): v for label, v, _ in rows(m, bound) if v is not None and "total" not in label}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--firmware", help="this server's firmware from DIR (e.g. a copy with native code)")
    ap.add_argument("--base", help="also this server at a git revision (e.g. HEAD)")
    ap.add_argument("--n1", type=int, default=100, help="short loop of each phase (default %(default)s)")
    ap.add_argument("--n2", type=int, default=600, help="long loop of each phase (default %(default)s)")
    ap.add_argument("--heap", default=DEFAULT_HEAP, help="the servers' heap (default %(default)s, the bench's; the sim "
                    "board gets its fakes' share on top)")
    ap.add_argument("--no-bound", action="store_true", help="leave the bound out")
    ap.add_argument("--no-idle", action="store_true", help="leave the ticker's idle measurement out")
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    from harness import bench  # bench imports this module

    this = contestants.THIS
    if a.firmware:
        this = contestants.Contestant("nostall " + os.path.basename(a.firmware.rstrip("/")), "-", sim=True,
                                      firmware=os.path.abspath(a.firmware))
    cs = ([] if a.no_bound else [contestants.BOUND]) + [this] + ([bench.base_contestant(a.base)] if a.base else [])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in cs:
            try:
                # the bound's own phases (its startswith) run beside this server's firmware
                fw = this.firmware if c is contestants.BOUND else None
                results.append((c.name, measure(c, tmp, a.n1, a.n2, not a.no_idle, firmware=fw, heap=a.heap),
                                c is contestants.BOUND))
            except Exception as e:
                print("  %s: %s" % (c.name, e))
    print()
    print(report(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({name: m for name, m, _ in results}, f, indent=1)
    if not results:
        sys.exit(1)


if __name__ == "__main__":
    main()
