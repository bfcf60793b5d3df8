"""Clients through a lossy link (the lwIP emulator's weather, harness/emu): several paced clients
at once, each a soak of its own, a new connection per request (`requests.get`, which asks for
nothing and closes after the answer) or one kept-alive `requests.Session`, so that 1000 requests
through a slow, lossy link fit a test run. Before and after, the board's /status and lwIP's
counters, so a report says per scenario: requests answered, closes the board made first (by
reason), TIME_WAIT pcbs in lwIP, latency percentiles and what the gateway did to the frames.

    report = run(target, ns_path, clients=4, count=1000, interval=0.02, session=False)
    fails = check(report)          # [] when the promise held
    print(summary(report))
"""

import contextlib
import threading
import time

import requests

from harness.emu import netns
from harness.soak import heap_tolerance, one_request, percentile
from harness.target import get_status, wait_for

# a request slower than this failed: the stall this project removes lasts 12 s (MSL 6000) to
# 120 s; lwIP's retransmissions of one segment lost three times in a row take about 9 s
REQUEST_TIMEOUT_S = 30.0


def _closing_get(url, timeout):
    return requests.get(url, timeout=timeout, headers={"Connection": "close"})


def _settle(t, ns_path, base_open, timeout_s):
    # the last connections close (the clients close first), then the board's end state
    def status():
        with netns.in_netns(ns_path):
            return get_status(t.url, gc=True, timeout=REQUEST_TIMEOUT_S)

    end = wait_for(lambda: (lambda s: s if s["connections_open"] <= base_open else None)(status()), timeout_s, 0.5)
    return end or status()


def run(t, ns_path, clients=4, count=1000, interval=0.02, session=False, path="/", timeout=REQUEST_TIMEOUT_S):
    """count requests to target t (a sim behind an Emulator) from clients threads in the client
    namespace ns_path, each paced by interval seconds; returns the report check() judges."""
    with netns.in_netns(ns_path):
        # the path once first: what serves it is loaded at its first use (static.py for "/"),
        # which the baseline must not count as kept per request
        one_request(_closing_get, t.url + path, timeout)
        s0 = get_status(t.url, gc=True, timeout=timeout, retry_s=timeout)
    e0 = t.emu.stats()
    fd0 = t.fd_count()
    per = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]
    results = [[] for _ in range(clients)]
    start = time.monotonic()

    def client(i):
        with netns.in_netns(ns_path), (requests.Session() if session else contextlib.nullcontext()) as sess:
            # per request: "Connection: close" as curl and many scripts send it, so the board
            # answers, then lingers for the client's EOF: the wait a lost segment used to break
            get = sess.get if sess is not None else _closing_get
            for _ in range(per[i]):
                t0 = time.monotonic()
                err = one_request(get, t.url + path, timeout)
                results[i].append((round(t0 - start, 4), round(time.monotonic() - t0, 5), err))
                time.sleep(interval)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for th in threads:
        th.start()
    bound = max(per) * (interval + timeout) + 10
    for th in threads:
        th.join(max(0.0, start + bound - time.monotonic()))
    wall = time.monotonic() - start
    end = _settle(t, ns_path, s0["connections_open"], 10.0)
    e1 = t.emu.stats()
    fd1 = wait_for(lambda: (lambda n: n if n <= fd0 else None)(t.fd_count()), 5.0) or t.fd_count() if fd0 else None
    done = [r for rs in results for r in rs]
    lats = sorted(r[1] for r in done)
    first = {k: v - s0["closes_by_server"].get(k, 0) for k, v in end["closes_by_server"].items()
             if v - s0["closes_by_server"].get(k, 0)}
    return {
        "url": t.url, "count": count, "clients": clients, "interval_s": interval, "session": session,
        "wall_s": round(wall, 1), "sent": len(done), "ok": sum(1 for r in done if r[2] is None),
        "errors": [r for r in done if r[2]][:10],
        "latency_s": {"p50": percentile(lats, 50), "p99": percentile(lats, 99), "max": lats[-1] if lats else None},
        "closed_first": first, "server_resets": end["server_resets"] - s0["server_resets"],
        "accepted": end["connections_accepted"] - s0["connections_accepted"],
        "open": (s0["connections_open"], end["connections_open"]),
        "heap_alloc": (s0["heap_alloc"], end["heap_alloc"]), "heap_total": s0["heap_free"] + s0["heap_alloc"],
        "fds": (fd0, fd1),
        "lwip": {k: e1[k] - e0.get(k, 0) for k in ("active_closes", "passive_closes", "client_resets", "firmware_aborts")
                 if k in e1},
        "time_wait_max": e1["time_wait_max"], "time_wait": e1["time_wait"],
        "weather": e1.get("weather"),
        "status_after": end,
    }


def run_all(cases, ns_path):
    """Several run()s at once, each against a board of its own: cases [(target, {run's keyword
    arguments})], the reports in the same order. The link is what bounds a lossy soak, not the
    machine, so boards side by side cost a test run little more than one."""
    out, errors = [None] * len(cases), []

    def one(i, t, kw):
        try:
            out[i] = run(t, ns_path, **kw)
        except BaseException as e:  # re-raised below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i, t, kw), daemon=True) for i, (t, kw) in enumerate(cases)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()  # each run() bounds its own clients and waits
    if errors:
        raise errors[0]
    return out


def figure_row(report, what):
    """The report as a row of the README's weather table: (abuse, load, result, lost)."""
    r, L = report, report["latency_s"]
    fails = check(r)
    return (what, "%d requests, %d clients, %s" % (r["count"], r["clients"], "kept-alive sessions" if r["session"]
                                                   else "a new connection each"),
            "%d/%d answered, p50 %.0f ms, p99 %.0f ms, max %.1f s; board closed first %s; lwIP TIME_WAIT %d; "
            "the gateway dropped %s" % (r["ok"], r["count"], L["p50"] * 1e3, L["p99"] * 1e3, L["max"],
                                        r["closed_first"] or 0, r["time_wait_max"], weather_line(r) or "nothing"),
            "nothing" if not fails else "; ".join(fails))


def check(report):
    """The failures; [] when every request was answered, the board never closed first, lwIP never
    held a TIME_WAIT pcb and nothing leaked."""
    fails = []
    if report["sent"] < report["count"]:
        fails.append("only %d of %d requests sent in time" % (report["sent"], report["count"]))
    if report["ok"] < report["sent"]:
        fails.append("%d requests failed, first: %s" % (report["sent"] - report["ok"], report["errors"][:1]))
    if report["closed_first"]:
        fails.append("the board closed first: %s" % report["closed_first"])
    if report["time_wait_max"]:
        fails.append("lwIP held TIME_WAIT pcbs (at most %d at once)" % report["time_wait_max"])
    a, b = report["open"]
    if b > a:
        fails.append("open connections %d, baseline %d" % (b, a))
    h0, h1 = report["heap_alloc"]
    if h1 > h0 + heap_tolerance(report):
        fails.append("heap in use %d -> %d" % (h0, h1))
    f0, f1 = report["fds"]
    if f0 is not None and f1 is not None and f1 > f0:
        fails.append("open fds %d, baseline %d: a socket leaks" % (f1, f0))
    return fails


def weather_line(report):
    """What the gateway did to the frames, both ways, in a few words."""
    w = report.get("weather") or {}
    parts = []
    for way in ("to_client", "from_client"):
        d = w.get(way) or {}
        if d:
            parts.append("%d/%d frames %s" % (d.get("dropped_loss", 0) + d.get("dropped_down", 0) + d.get("dropped_queue", 0),
                                              d.get("frames", 0), way.replace("_", " ")))
    return "; ".join(parts)


def summary(report):
    L = report["latency_s"]
    return ("%d/%d answered (%d clients, %s) in %.0f s; p50 %.0f ms, p99 %.0f ms, max %.0f ms; closed first %s; "
            "lwIP TIME_WAIT max %d; %s" % (
                report["ok"], report["count"], report["clients"],
                "one keep-alive session each" if report["session"] else "a new connection per request",
                report["wall_s"], (L["p50"] or 0) * 1e3, (L["p99"] or 0) * 1e3, (L["max"] or 0) * 1e3,
                sum(report["closed_first"].values()) or 0, report["time_wait_max"], weather_line(report)))
