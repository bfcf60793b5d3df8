"""The soak: N requests, paced, each on a new connection the way `requests.get` makes them (or all
on one keep-alive session), as in the reproduction of MicroPython issues #12819/#15844.

    PYTHONPATH=host_tests python -m harness.soak --board-ip 192.168.1.50   # a real board
    PYTHONPATH=host_tests python -m harness.soak                           # starts the sim board itself

Prints p50/p95/p99/max, checks the board's /status (the server never closed first, connections
back to baseline, heap in use after a collection not trending up) and, for a local server, its fd count and its
TIME_WAIT sockets; writes a JSON report and a PNG latency timeline where a stall stands out.
"""

import argparse
import datetime
import json
import os
import sys
import time

import requests

from harness.simboard import SimBoard
from harness.target import get_status, server_time_wait, wait_for

HEAP_SAMPLES = 10  # /status?gc=1 readings spread over the run


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def one_request(get, url, timeout):
    """One GET with the whole body read: None when it answered 200, else what went wrong."""
    # The Response stays local: requests keeps a connection open for as long as its Response
    # lives, and a client that holds one idle past idle_timeout_ms is closed by the server.
    try:
        r = get(url, timeout=timeout)
        r.content  # noqa: B018 - read the whole body
        if r.status_code != 200:
            return "status %d" % r.status_code
    except requests.RequestException as e:
        return type(e).__name__ + ": " + str(e)[:200]
    return None


def run_soak(url, count=1000, interval=0.15, timeout=5.0, session=False, path="/",
             fd_counter=None, time_wait=None, progress=False):
    """Run the soak against url; returns a report dict (check() judges it).

    fd_counter() -> the server process's open fds; time_wait() -> connections the server's TCP
    stack holds in TIME_WAIT (each one a close the server made first); both optional."""
    # the path once first: what it loads at its first use (static.py for "/", a few KB of code) is
    # not a leak, and would stand as one in the heap's first samples
    one_request(requests.get, url + path, timeout)
    s0 = get_status(url, gc=True)
    fd0 = fd_counter() if fd_counter else None
    tw0 = time_wait() if time_wait else None
    sess = requests.Session() if session else None
    get = sess.get if sess else requests.get
    every = max(1, count // HEAP_SAMPLES)
    heap = [(0, s0["heap_alloc"])]
    results = []  # (t since start, latency s, error or None)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count, unit="req", dynamic_ncols=True)
    start = time.monotonic()
    try:
        for i in range(count):
            t0 = time.monotonic()
            err = one_request(get, url + path, timeout)
            lat = time.monotonic() - t0
            results.append((round(t0 - start, 4), round(lat, 5), err))
            if bar is not None:
                bar.update(1)
                if err or lat > 1.0:
                    bar.write("request %d: %.2f s %s" % (i, lat, err or ""))
            if (i + 1) % every == 0 and i + 1 < count:
                heap.append((i + 1, get_status(url, gc=True)["heap_alloc"]))
            time.sleep(interval)
    finally:
        if bar is not None:
            bar.close()
        if sess is not None:
            sess.close()
    # let the last connections close, then read the end state
    base_open = s0["connections_open"]
    end = wait_for(lambda: (lambda s: s if s["connections_open"] <= base_open else None)(get_status(url, gc=True)), 5.0)
    end = end or get_status(url, gc=True)
    heap.append((count, end["heap_alloc"]))
    fd1 = None
    if fd_counter:
        fd1 = wait_for(lambda: (lambda n: n if n <= fd0 else None)(fd_counter()), 5.0) or fd_counter()
    lats = sorted(r[1] for r in results)
    return {
        "url": url, "path": path, "count": count, "interval_s": interval, "timeout_s": timeout,
        "session": session, "wall_s": round(time.monotonic() - start, 1),
        "ok": sum(1 for r in results if r[2] is None),
        "errors": [(i, r[2]) for i, r in enumerate(results) if r[2]],
        "latency_s": {"p50": percentile(lats, 50), "p95": percentile(lats, 95),
                      "p99": percentile(lats, 99), "max": lats[-1] if lats else None},
        "results": results,
        "heap_alloc": heap,
        "heap_total": s0["heap_free"] + s0["heap_alloc"],
        "status_before": s0, "status_after": end,
        "fds": [fd0, fd1],
        "server_time_wait": [tw0, time_wait() if time_wait else None],
    }


def heap_tolerance(report):
    # The heap in use after gc.collect() is exact, but it moves with the request that asks (the
    # /status handler's own dict) and with interned strings/caches filled on first use. 2 % of
    # the heap (5 KB at 256K) covers that and still catches a leak of ~5 bytes per request.
    # (Free heap is not judged: on an ESP32-C3 gc.mem_free() adds the largest free block of the
    # IDF heap, which moves with Wi-Fi's own allocations.)
    return max(2048, report["heap_total"] // 50)


def check(report, stall_threshold=2.0):
    """The list of failures; empty means the soak passed."""
    fails = []
    if report["errors"]:
        fails.append("%d failed requests, first: %s" % (len(report["errors"]), report["errors"][0]))
    slow = [(i, r[1]) for i, r in enumerate(report["results"]) if r[1] > stall_threshold]
    if slow:
        fails.append("%d requests slower than %.1f s (stalls), worst %.2f s" % (len(slow), stall_threshold, max(s[1] for s in slow)))
    a, b = report["status_before"], report["status_after"]
    first = b["closes_by_server_total"] - a["closes_by_server_total"]
    if first:
        fails.append("the server closed first %d times: %s" % (first, b["closes_by_server"]))
    if b["connections_open"] > a["connections_open"]:
        fails.append("open connections %d, baseline %d" % (b["connections_open"], a["connections_open"]))
    heap = [h for _, h in report["heap_alloc"]]
    tol = heap_tolerance(report)
    if max(heap[-3:]) > heap[0] + tol:
        fails.append("heap in use trends up: %s (tolerance %d)" % (heap, tol))
    fd0, fd1 = report["fds"]
    if fd0 is not None and fd1 > fd0:
        fails.append("open fds %d, baseline %d: a socket leaks" % (fd1, fd0))
    tw0, tw1 = report["server_time_wait"]
    if tw0 is not None and tw1 is not None and tw1 > tw0:
        fails.append("%d TIME_WAIT sockets on the server's side (it closed first)" % (tw1 - tw0))
    return fails


def summary(report):
    L = report["latency_s"]
    a, b = report["status_before"], report["status_after"]
    return (
        "soak %s%s: %d/%d ok in %.0f s; latency p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms; "
        "closes by client +%d, by server +%d; heap in use %s; fds %s"
        % (
            report["url"], " (keep-alive session)" if report["session"] else "", report["ok"], report["count"],
            report["wall_s"], L["p50"] * 1e3, L["p95"] * 1e3, L["p99"] * 1e3, L["max"] * 1e3,
            b["closes_by_client"] - a["closes_by_client"],
            b["closes_by_server_total"] - a["closes_by_server_total"],
            [h for _, h in report["heap_alloc"]], report["fds"],
        )
    )


def write_report(report, outdir, stall_threshold=2.0):
    """JSON and PNG side by side in outdir; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(outdir, exist_ok=True)
    stem = os.path.join(outdir, "soak-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=1)
    res = report["results"]
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(11, 6), height_ratios=(3, 1), constrained_layout=True)
    ok = [(t, lat * 1e3) for t, lat, e in res if not e]
    bad = [(t, lat * 1e3) for t, lat, e in res if e]
    if ok:
        ax.scatter(*zip(*ok), s=6, color="tab:blue", label="ok")
    if bad:
        ax.scatter(*zip(*bad), s=30, marker="x", color="tab:red", label="failed (%d)" % len(bad))
    ax.axhline(stall_threshold * 1e3, color="tab:red", linestyle="--", linewidth=1, label="stall threshold")
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.set_xlabel("time since start (s)")
    L = report["latency_s"]
    ax.set_title("%s  %d/%d ok  p50 %.1f ms  p99 %.1f ms  max %.1f ms" % (
        report["url"] + report["path"], report["ok"], report["count"], L["p50"] * 1e3, L["p99"] * 1e3, L["max"] * 1e3))
    ax.legend(loc="upper right")
    ax.grid(True, which="both", alpha=0.3)
    axh.plot([i for i, _ in report["heap_alloc"]], [h / 1024 for _, h in report["heap_alloc"]], marker="o")
    axh.set_xlabel("requests")
    axh.set_ylabel("heap in use after gc (KiB)")
    axh.grid(True, alpha=0.3)
    fig.savefig(stem + ".png", dpi=100)
    plt.close(fig)
    return stem + ".json", stem + ".png"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board-ip", default=os.environ.get("BOARD_IP"), help="a real board (else the sim board)")
    ap.add_argument("--board-port", type=int, default=80)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=0.15, help="seconds between requests")
    ap.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    ap.add_argument("--stall-threshold", type=float, default=2.0, help="slowest acceptable request, seconds")
    ap.add_argument("--path", default="/")
    ap.add_argument("--session", action="store_true", help="one keep-alive session instead of a connection per request")
    ap.add_argument("--out", default="reports")
    a = ap.parse_args(argv)
    if a.count < 1 or a.interval < 0 or a.timeout <= 0:
        ap.error("--count must be >= 1, --interval >= 0, --timeout > 0")
    sim = None
    if a.board_ip:
        url, fds, tw = "http://%s:%d" % (a.board_ip, a.board_port), None, None
    else:
        sim = SimBoard().start()
        url, fds, tw = sim.url, sim.fd_count, lambda: server_time_wait(sim.port)
        print("sim board started on %s (pid %d)" % (url, sim.pid))
    try:
        try:
            get_status(url)
        except requests.RequestException as e:
            sys.exit("error: %s/status does not answer (%s): is the board on and BOARD_IP right?" % (url, type(e).__name__))
        print("soak: %d requests to %s%s, %.2f s apart, %.0f s timeout each" % (a.count, url, a.path, a.interval, a.timeout))
        report = run_soak(url, a.count, a.interval, a.timeout, a.session, a.path, fds, tw, progress=True)
    finally:
        if sim:
            sim.stop()
    fails = check(report, a.stall_threshold)
    report["failures"] = fails
    paths = write_report(report, a.out, a.stall_threshold)
    print(summary(report))
    print("report: %s\ntimeline: %s" % paths)
    for f in fails:
        print("FAIL: " + f)
    print("soak %s" % ("FAILED" if fails else "passed"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
