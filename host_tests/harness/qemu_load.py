"""Load on the QEMU ESP32-C3 board (issue 17): this server against a bare asyncio streams server
on the same image, five loads (1 and 4 clients kept alive; 1, 2 and 4 clients with a new
connection per request, `Connection: close`), from Python clients in the board's namespace over
TAP, and optionally over QEMU's user-mode network (slirp, a hostfwd to the board's port 80).

Per load: req/s, p50/p99 latency (from the request's send, or its connect, to the answer's last
byte), errors, and for this server how many connections the board closed first (/status
closes_by_server). The table is printed and written to reports/qemu_load.json.

    cd host_tests && ../.venv/bin/python -m harness.qemu_load [--net tap,user] [--seconds 4]
        [--limits '{"listen_backlog": 2}'] [--servers nostall,bare] [--loads 3,4] [--timeout 30]
"""

import argparse
import json
import os
import socket
import sys
import threading
import time

from harness import qemu
from harness.paths import HOST_TESTS, ROOT

LOADS = (("1 client, kept-alive", 1, True), ("1 client, new connection each", 1, False),
         ("2 clients, new connection each", 2, False), ("4 clients, kept-alive", 4, True),
         ("4 clients, new connection each", 4, False))
PATH = "/api/temperature"  # a small JSON answer from the default app
STALL_S = 0.9
USER_ADDR, USER_GW, USER_PORT = "10.0.2.15", "10.0.2.2", 8080

def _answer(s, buf):
    """Read one answer (head + Content-Length body) from s; buf carries bytes past it."""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        if not b:
            raise ConnectionError("EOF before the answer")
        buf += b
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError("answer %r" % head[:40])
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(rest) < n:
        b = s.recv(4096)
        if not b:
            raise ConnectionError("EOF in the body")
        rest += b
    buf[:] = rest[n:]


def _client(target, keep, until, lat, errs, timeout):
    req = ("GET %s HTTP/1.1\r\nHost: board\r\n%s\r\n" % (PATH, "" if keep else "Connection: close\r\n")).encode()
    s = None
    with target.client():
        while time.monotonic() < until:
            t0 = time.monotonic()
            try:
                if s is None:
                    s = socket.create_connection((target.host, target.port), timeout=timeout)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    buf = bytearray()
                s.sendall(req)
                _answer(s, buf)
                lat.append(time.monotonic() - t0)
            except OSError as e:
                errs.append((round(t0 - until, 2), round(1000 * (time.monotonic() - t0)), type(e).__name__))
                if s is not None:
                    s.close()
                s = None
                continue
            if not keep:
                s.close()  # the client closes first, after the whole answer
                s = None
    if s is not None:
        s.close()


def _pct(xs, p):
    xs = sorted(xs)
    return round(1000 * xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 1) if xs else None


def run_load(target, clients, keep, seconds, status=True, timeout=5.0):
    before = target.status() if status else None
    lat, errs = [], []
    t0 = time.monotonic()
    until = t0 + seconds
    th = [threading.Thread(target=_client, args=(target, keep, until, lat, errs, timeout)) for _ in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join(seconds + timeout + 10)
    el = time.monotonic() - t0
    r = {"requests": len(lat), "rps": round(len(lat) / el, 1), "p50_ms": _pct(lat, 50), "p90_ms": _pct(lat, 90),
         "p99_ms": _pct(lat, 99), "max_ms": _pct(lat, 100), "errors": len(errs),
         # answers that took a SYN retransmission or more (Linux: 1 s; slirp: longer), and errors
         "stalls": sum(1 for x in lat if x >= STALL_S) + len(errs),
         "errors_at": errs[:20], "lat_ms": [round(1000 * x, 1) for x in lat[:400]]}
    if status:
        time.sleep(0.3)  # let connections still lingering end
        after = target.status()
        r["closes_by_server"] = {k: v - before["closes_by_server"].get(k, 0) for k, v in after["closes_by_server"].items()
                                 if v != before["closes_by_server"].get(k, 0)}
        r["closes_by_client"] = after["closes_by_client"] - before["closes_by_client"]
        r["rejected_busy"] = after.get("rejected_busy", 0) - before.get("rejected_busy", 0)
    return r


def board_files(server, net, limits):
    addr, gw = (qemu.ADDR, qemu.HOST_ADDR) if net == "tap" else (USER_ADDR, USER_GW)
    files = qemu.stage(settings=qemu.board_settings(addr, gw, limits=limits or None))
    if server == "bare":
        with open(os.path.join(HOST_TESTS, "apps_qemu", "bare_main.py"), "rb") as f:
            files["main.py"] = f.read()
    return files


def measure(server, net, limits, seconds, loads, n, timeout=5.0):
    files = board_files(server, net, limits)
    ns = "qload-%d-%d" % (os.getpid(), n)
    with qemu.QemuBoard(ns=ns, files=files, user_port=None if net == "tap" else USER_PORT) as qb:
        t = qb.target()
        out = {}
        for name, clients, keep in loads:
            out[name] = run_load(t, clients, keep, seconds, status=server == "nostall", timeout=timeout)
            time.sleep(0.5)
        return out


def table(results, servers):
    lines = []
    for net, by_server in results.items():
        lines.append("\n%s network: req/s, p50/p99/max ms, stalls (answers >= %.1f s, or errors: a dropped SYN), "
                     "closes the board made first (this server)" % (net, STALL_S))
        head = "%-32s" % "load" + "".join("| %-40s" % s for s in servers)
        lines.append(head)
        lines.append("-" * len(head))
        for name, _, _ in LOADS:
            row = "%-32s" % name
            for s in servers:
                r = by_server.get(s, {}).get(name)
                if r is None:
                    row += "| %-40s" % "-"
                    continue
                cell = "%6.1f %s/%s/%s st %d" % (r["rps"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["stalls"])
                if "closes_by_server" in r:
                    cell += " srv %d" % sum(r["closes_by_server"].values())
                row += "| %-40s" % cell
            lines.append(row)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description="Issue 17: loads on the QEMU board, this server and a bare asyncio one.")
    ap.add_argument("--net", default="tap", help="tap, user or tap,user")
    ap.add_argument("--servers", default="nostall,bare")
    ap.add_argument("--seconds", type=float, default=4.0, help="per load")
    ap.add_argument("--limits", default="", help='settings.json "limits" for this server, JSON')
    ap.add_argument("--loads", default="", help="comma-separated indexes into the five loads (default all)")
    ap.add_argument("--timeout", type=float, default=5.0, help="client socket timeout, s (bounds a stalled connect)")
    ap.add_argument("--out", default=os.path.join(ROOT, "reports", "qemu_load.json"))
    a = ap.parse_args()
    why = qemu.missing()
    if why:
        sys.exit("error: " + why)
    limits = json.loads(a.limits) if a.limits else {}
    loads = [LOADS[int(i)] for i in a.loads.split(",")] if a.loads else list(LOADS)
    servers = a.servers.split(",")
    t0 = time.monotonic()
    results, n = {}, 0
    for net in a.net.split(","):
        results[net] = {}
        for s in servers:
            n += 1
            print("==> %s over %s ..." % (s, net), flush=True)
            results[net][s] = measure(s, net, limits if s == "nostall" else {}, a.seconds, loads, n, a.timeout)
    print(table(results, servers))
    took = time.monotonic() - t0
    print("\n(%.0f s; %s s per load; path %s; limits %s)" % (took, a.seconds, PATH, limits or "defaults"))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"seconds_per_load": a.seconds, "limits": limits, "path": PATH, "run_s": round(took),
                   "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
