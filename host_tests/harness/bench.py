"""Benchmarks that print numbers (`make bench`); nothing here asserts on time.

Each contestant is a firmware tree on the sim board: this checkout's firmware/ and, with --base
REV, the firmware/ (with its own sim glue) of that git revision. They run side by side in one
run, rounds interleaved, and the table gives each figure's ratio this/base: these machines are
noisy, ratios from one run hold where absolute numbers do not.

  throughput   - keep-alive requests/s and p50/p99 latency with wrk -t1 at 4 and 16 connections
  instructions - CPU instructions per keep-alive request, counted by valgrind (repeatable)
  heap         - heap after start-up and per idle keep-alive connection (/status?gc=1)
  scrape       - heap a GET /metrics allocates (with the GC held off), beside a GET /api/led
  minheap      - smallest -X heapsize at which a quick soak still passes (bisection)

    PYTHONPATH=host_tests python -m harness.bench [--base REV] [throughput instructions heap minheap]
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile

from harness.paths import APPS, CACHE, FIRMWARE, REPORTS, ROOT, SIM_GLUE
from harness.simboard import DEFAULT_HEAP, SimBoard, command, free_port, wait_listening
from harness.soak import check, run_soak
from harness.target import RawConn, get_status, server_time_wait

WHAT = ("throughput", "instructions", "heap", "scrape", "minheap")
PATH = "/api/led"  # a small JSON answer from a real handler: the common case of a board's API
THROUGHPUT_CONNS = (4, 16)
THROUGHPUT_MAX_CONNECTIONS = 20  # the sims' cap for these loads: wrk's 16 plus room for /status


class Contestant:
    def __init__(self, name, firmware, glue):
        self.name = name
        self.firmware = firmware
        self.glue = glue
        self.figures = {}


def base_contestant(rev):
    """The firmware (and sim glue) of git revision rev, exported once into .cache/bench/<sha>."""
    try:
        sha = subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", "-q", rev + "^{commit}"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        sys.exit("error: --base %s is not a git revision of this checkout (try a commit, tag or HEAD~3)" % rev)
    out = os.path.join(CACHE, "bench", sha)
    if not os.path.isdir(os.path.join(out, "firmware")):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=os.path.dirname(out))
        archive = subprocess.run(["git", "-C", ROOT, "archive", sha, "firmware", "host_tests/sim"],
                                 capture_output=True, check=True).stdout
        with tempfile.TemporaryFile() as f:
            f.write(archive)
            f.seek(0)
            with tarfile.open(fileobj=f) as t:
                t.extractall(tmp, filter="data")
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp, out)
    return Contestant("base %s" % rev, os.path.join(out, "firmware"), os.path.join(out, "host_tests", "sim"))


def sim(c, **kw):
    return SimBoard(firmware=c.firmware, glue=c.glue, **kw)


# ---- throughput ----

def wrk(url, conns, seconds):
    """(requests/s, p50 ms, p99 ms) of one wrk run."""
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    return rps, lat.get("50"), lat.get("99")


def _ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def throughput(contestants, rounds, seconds, tmp):
    settings = os.path.join(tmp, "bench-settings.json")
    with open(settings, "w") as f:
        json.dump({"http_port": 8080, "limits": {"max_connections": THROUGHPUT_MAX_CONNECTIONS}}, f)
    sims = [sim(c, settings=settings).start() for c in contestants]
    runs = {(c.name, n): [] for c in contestants for n in THROUGHPUT_CONNS}
    try:
        for r in range(rounds):
            pairs = list(zip(contestants, sims))
            if r % 2:
                pairs.reverse()  # A B, then B A: whoever runs first in a round gets no edge
            for n in THROUGHPUT_CONNS:
                for c, s in pairs:
                    runs[(c.name, n)].append(wrk(s.url + PATH, n, seconds))
                    print("  round %d, %2d connections, %-16s %8.0f req/s" % (r + 1, n, c.name, runs[(c.name, n)][-1][0]))
    finally:
        for s in sims:
            s.stop()
    for c in contestants:
        for n in THROUGHPUT_CONNS:
            rs = runs[(c.name, n)]
            c.figures["keep-alive req/s, %d connections" % n] = statistics.median(x[0] for x in rs)
        rs = runs[(c.name, max(THROUGHPUT_CONNS))]
        c.figures["p50 ms at %d connections" % max(THROUGHPUT_CONNS)] = statistics.median(x[1] for x in rs)
        c.figures["p99 ms at %d connections" % max(THROUGHPUT_CONNS)] = statistics.median(x[2] for x in rs)


# ---- instructions ----

def _counted(c, requests, tmp):
    """Instructions the sim board ran, start to stop, serving this many keep-alive requests."""
    port = free_port()
    argv, env = command(port, DEFAULT_HEAP, c.firmware, glue=c.glue)
    out = os.path.join(tmp, "callgrind.out")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv, env=env,
                         cwd=c.glue, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening("127.0.0.1", port, p, timeout=120)
        conn = RawConn("127.0.0.1", port, timeout=30)
        for _ in range(requests):
            r = conn.request("GET", PATH)
            assert r.status == 200, r
            if r.headers.get("connection") == "close":  # max_requests_per_connection reached
                conn.close()
                conn = RawConn("127.0.0.1", port, timeout=30)
        conn.close()
    finally:
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=120)[1]
    m = re.search(r"Collected : (\d+)", err)
    if not m:
        raise RuntimeError("valgrind reported no count for %s: %s" % (c.name, err[-300:]))
    return int(m.group(1))


def instructions(contestants, tmp, few=200, many=1200):
    # the difference of two runs leaves start-up and shutdown out
    for c in contestants:
        per = (_counted(c, many, tmp) - _counted(c, few, tmp)) / (many - few)
        c.figures["instructions per keep-alive request"] = per
        print("  %-16s %8.0f instructions per request" % (c.name, per))


# ---- heap ----

def heap(contestants, n=4):
    for c in contestants:
        with sim(c) as s:
            get_status(s.url, gc=True)  # warm caches: the first /status allocates its own strings
            before = get_status(s.url, gc=True)["heap_alloc"]
            conns = []
            for _ in range(n):
                conn = RawConn(s.host, s.port)
                assert conn.request("GET", PATH).status == 200  # open, used once, now idle
                conns.append(conn)
            after = get_status(s.url, gc=True)
            assert after["connections_open"] == n + 1, after["connections_open"]
            for conn in conns:
                conn.close()
        c.figures["heap after start-up, bytes"] = before
        c.figures["heap per idle connection, bytes"] = (after["heap_alloc"] - before) / n
        print("  %-16s start-up %6d B, per idle connection %4.0f B (%d connections; plus the slot's "
              "preallocated %d B receive buffer)" % (c.name, before, (after["heap_alloc"] - before) / n, n,
                                                      after["limits"]["recv_buffer_bytes"]))


# ---- allocation per request ----

def _allocated(conn, path):
    conn.request("GET", "/probe/alloc/start")
    r = conn.request("GET", path)
    if r.status != 200:
        return None
    return json.loads(conn.request("GET", "/probe/alloc/stop").body)["allocated"]


def scrape(contestants, rounds=5):
    for c in contestants:
        with sim(c, extra_path=[APPS]) as s:
            conn = RawConn(s.host, s.port)
            for path, key in (("/api/led", "heap allocated by GET /api/led, bytes"),
                              ("/metrics", "heap allocated by GET /metrics, bytes")):
                runs = [_allocated(conn, path) for _ in range(rounds)]
                c.figures[key] = None if None in runs else statistics.median(runs)
            conn.close()
        print("  %-16s /api/led %s B, /metrics %s B (median of %d, the probe requests included)" % (
            c.name, _fmt(c.figures["heap allocated by GET /api/led, bytes"]),
            _fmt(c.figures["heap allocated by GET /metrics, bytes"]), rounds))


# ---- smallest heap ----

def _soak_passes(c, heap_k, count, interval):
    try:
        with sim(c, heap="%dK" % heap_k) as s:
            r = run_soak(s.url, count=count, interval=interval, fd_counter=s.fd_count,
                         time_wait=lambda: server_time_wait(s.port))
            fails = check(r)
    except Exception as e:  # too small to start at all
        fails = ["did not run: %s" % e]
    print("  %-16s heap %4dK: %s" % (c.name, heap_k, "pass" if not fails else "FAIL " + "; ".join(fails)[:120]))
    return not fails


def min_heap(contestants, lo=48, hi=256, count=300, interval=0.01):
    for c in contestants:
        a, b = lo, hi
        if not _soak_passes(c, b, count, interval):
            c.figures["smallest heap for a %d-request soak, K" % count] = None
            continue
        while b - a > 4:
            mid = (a + b) // 2 // 4 * 4
            if _soak_passes(c, mid, count, interval):
                b = mid
            else:
                a = mid
        c.figures["smallest heap for a %d-request soak, K" % count] = b


# ---- report ----

def table(contestants):
    names = [c.name for c in contestants]
    rows = []
    for key in contestants[0].figures:
        vals = [c.figures.get(key) for c in contestants]
        ratio = ""
        if len(vals) == 2 and vals[0] and vals[1]:
            ratio = "%.2f" % (vals[0] / vals[1])
        rows.append([key] + [_fmt(v) for v in vals] + ([ratio] if len(vals) == 2 else []))
    head = ["figure"] + names + (["%s / %s" % tuple(names)] if len(names) == 2 else [])
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    lines = ["  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(r, widths)))
             for r in [head] + rows]
    return "\n".join(lines)


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and v < 100:
        return "%.2f" % v
    return "{:,}".format(int(round(v))).replace(",", " ")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="*", help="what to measure: %s (default: all)" % ", ".join(WHAT))
    ap.add_argument("--base", help="a git revision whose firmware runs beside this one (e.g. HEAD~5)")
    ap.add_argument("--rounds", type=int, default=4, help="throughput rounds, interleaved (default %(default)s)")
    ap.add_argument("--seconds", type=int, default=5, help="each wrk run (default %(default)s)")
    ap.add_argument("--out", default=REPORTS, help="folder for bench.json (default reports/)")
    a = ap.parse_args()
    a.what = a.what or list(WHAT)
    for w in a.what:
        if w not in WHAT:
            sys.exit("error: cannot measure %r: choose from %s" % (w, ", ".join(WHAT)))
    if "throughput" in a.what and not shutil.which("wrk"):
        sys.exit("error: wrk not found: apt-get install wrk (or leave throughput out: make bench BENCH=heap)")
    if "instructions" in a.what and not shutil.which("valgrind"):
        sys.exit("error: valgrind not found: apt-get install valgrind (or leave instructions out)")
    contestants = [Contestant("this", FIRMWARE, SIM_GLUE)]
    if a.base:
        contestants.append(base_contestant(a.base))
    print("bench: %s; sim board heap %s (MicroPython unix port, 64-bit), %s" % (
        ", ".join(c.name for c in contestants), DEFAULT_HEAP, ", ".join(a.what)))
    with tempfile.TemporaryDirectory() as tmp:
        for what in WHAT:
            if what not in a.what:
                continue
            print("== %s" % what)
            if what == "throughput":
                print("  wrk -t1 -d%ds on %s, %d rounds interleaved (order swapped every round), medians"
                      % (a.seconds, PATH, a.rounds))
                throughput(contestants, a.rounds, a.seconds, tmp)
            elif what == "instructions":
                instructions(contestants, tmp)
            elif what == "heap":
                heap(contestants)
            elif what == "scrape":
                scrape(contestants)
            else:
                min_heap(contestants)
    print()
    print(table(contestants))
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "bench.json")
    with open(path, "w") as f:
        json.dump({c.name: c.figures for c in contestants}, f, indent=1)
    print("\nwrote %s" % path)


if __name__ == "__main__":
    main()
