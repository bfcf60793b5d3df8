"""Where a new connection's time goes, on loopback and through the lwIP emulator (issue 18).

Side by side in one run, interleaved (order swapped every round; a contestant's legs back to
back, as the machine's load moves): wrk -t1 -cN with "Connection: close" against
  bound        apps_bench/bound.py: answers without "Connection: close", so wrk keeps its
               connections alive whatever it sent (conn/req 0.00 through the emulator says so)
  bare-client  apps_bench/bare_close.py: the least a server does per connection when the client
               closes first: accept, read the head (whole reads), answer "Connection: close",
               wait for the client's EOF, close
  bare-server  the same, closing first (as every peer does)
  bare-lines   bare-client reading its head with readline(), as the bound does
  nostall      this firmware on the sim board with the bench app (--firmware DIR: a copy)
  <extra>      --extra NAME=DIR: another firmware copy (e.g. a change tried in /tmp)
  <peer>       the PyPI peers of make bench that are installed
Legs: loopback; emu-narrow (one client namespace for every round, Linux's ephemeral ports:
make bench before issue 18); emu (the same, netns.CLIENT_PORTS); emu-fresh (a namespace and
gateway of its own per run); emu-fresh@NAME (through the gateway build --gw NAME=PATH[,DIR]).
Per run: req/s; connections per request (the gateway's `accepted`); CPU microseconds per
request of the server, the gateway and wrk (the gateway's include the client's and the upstream
leg's kernel TCP work, done in its write()s and connect()s); frames each way per connection;
who closed first; the client namespace's TIME_WAIT sockets towards the board.

    PYTHONPATH=host_tests python -m harness.emu.newconn [--seconds 4] [--rounds 2] [--conns 4]
        [--only bare-client,nostall] [--firmware DIR] [--extra NAME=DIR] [--legs loopback,emu-fresh]
    ... --trace --conns 1 --legs emu     each connection's frames, step by step (ms from its SYN)

Root for the emulator legs (as the rest of harness.emu); every process is stopped by PID and
every namespace deleted on the way out.
"""
import argparse
import os
import re
import statistics
import subprocess
import time

from harness import contestants
from harness.emu import netns

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


class Bare(contestants.Contestant):
    """apps_bench/bare_close.py: mode "client" (waits for the client's EOF) or "server" (closes
    first); read "whole" or "line" (the bound's readline())."""

    def __init__(self, name, mode, read="whole"):
        super().__init__(name, "-", "bare_close.py", notes="apps_bench/bare_close.py, BARE_CLOSE=%s BARE_READ=%s" % (
            mode, read))
        self.mode = mode
        self.read = read

    def command(self, port, heap, cache_dir=contestants.CACHE_DIR):
        argv, env = super().command(port, heap, cache_dir)
        env["BARE_CLOSE"] = self.mode
        env["BARE_READ"] = self.read
        return argv, env


def cpu_us(pid):
    """utime + stime of pid and its reaped children, microseconds (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:13]) * TICK_US


def wrk(url, conns, seconds, ns=None):
    argv = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "-H", "Connection: close", url]
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + seconds + 20
    ru = None
    while True:  # reaped here, not by Popen, for its rusage (ip netns exec execs wrk in place)
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            p.kill()
        time.sleep(0.05)
    out = p.stdout.read()
    p.stdout.close()
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    reqs = re.search(r"(\d+) requests in", out)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"rps": float(m.group(1)) if m else 0.0, "requests": int(reqs.group(1)) if reqs else 0,
            "errors": errors, "wrk_cpu_us": (ru.ru_utime + ru.ru_stime) * 1e6 if ru else None}


def client_tw(ns, ip):
    """The client namespace's TIME_WAIT sockets towards ip (the client closed first)."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Htan", "state", "time-wait", "dst", ip],
                         capture_output=True, text=True).stdout
    return len(out.splitlines())


def capture(emu, ns, conns, seconds, limit=200000):
    """Frames on the client's side of the TAP while wrk runs: [(t, from_client, flags, client_port,
    payload_len)] (AF_PACKET in the namespace; the client is emu.peer_ip)."""
    import socket
    import struct
    import threading

    with netns.in_netns(str(netns.NETNS_DIR / ns)):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL: also what it sends
    s.bind((emu.tap, 0))
    s.settimeout(0.2)
    frames, done = [], threading.Event()

    def loop():
        while not done.is_set() and len(frames) < limit:
            try:
                b = s.recv(2048)
            except socket.timeout:
                continue
            t = time.monotonic()
            ip = b[14:]
            if len(ip) < 40 or b[12:14] != b"\x08\x00" or ip[9] != 6:
                continue
            ihl = (ip[0] & 15) * 4
            tl = struct.unpack("!H", ip[2:4])[0]
            th = ip[ihl:]
            sport, dport = struct.unpack("!HH", th[:4])
            doff = (th[12] >> 4) * 4
            mine = socket.inet_ntoa(ip[12:16]) == emu.peer_ip
            frames.append((t, mine, th[13], sport if mine else dport, tl - ihl - doff))

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    r = wrk("http://%s:%d/" % (emu.ip, emu.port), conns, seconds, ns)
    done.set()
    th.join()
    s.close()
    return r, frames


FIN, SYN, RST, ACK = 1, 2, 4, 16


def phases(frames):
    """Per connection (client port), the times of its steps from its SYN, ms; medians and p90 over
    the connections seen whole. Steps: SYN-ACK, request, answer, client FIN, board FIN, last ACK."""
    conns, now = [], {}
    for t, mine, flags, port, plen in frames:
        cur = now.get(port)
        if mine and flags & SYN and (cur is None or any(not m for _, m, _, _ in cur)):
            cur = now[port] = []  # a new connection from this port (a retransmitted SYN is not)
            conns.append(cur)
        if cur is not None:
            cur.append((t, mine, flags, plen))
    steps = {k: [] for k in ("syn_ack", "request", "answer", "client_fin", "board_fin", "last_ack", "frames")}
    for fs in conns:
        t0 = next((t for t, mine, fl, _ in fs if mine and fl & SYN), None)
        if t0 is None:
            continue
        seen = {}
        for t, mine, fl, plen in fs:
            k = None
            if not mine and fl & SYN:
                k = "syn_ack"
            elif mine and plen:
                k = "request"
            elif not mine and plen:
                k = "answer"
            elif mine and fl & FIN:
                k = "client_fin"
            elif not mine and fl & FIN:
                k = "board_fin"
            elif mine and fl == ACK and "board_fin" in seen and "client_fin" in seen:
                k = "last_ack"
            if k and k not in seen:
                seen[k] = (t - t0) * 1000
        if len(seen) == 6:
            for k, v in seen.items():
                steps[k].append(v)
            steps["frames"].append(len(fs))
    out = {}
    for k, v in steps.items():
        if v:
            v.sort()
            out[k] = (statistics.median(v), v[int(len(v) * 0.9)], len(v))
    return out


def one_run(c, h, emu, ns, conns, seconds):
    srv = h.pid
    s0 = emu.stats() if emu else None
    g0 = cpu_us(emu.proc.pid) if emu else 0.0
    c0 = cpu_us(srv)
    url = "http://%s:%d/" % ((emu.ip, emu.port) if emu else (h.host, h.port))
    r = wrk(url, conns, seconds, ns)
    time.sleep(0.3)  # the last closes settle
    c1 = cpu_us(srv)
    n = max(r["requests"], 1)
    r["server_us"] = (c1 - c0) / n
    if emu:
        s1 = emu.stats()
        r["gw_us"] = (cpu_us(emu.proc.pid) - g0) / n
        acc = s1["accepted"] - s0["accepted"]
        r["conns_per_req"] = acc / n
        w0, w1 = s0["weather"], s1["weather"]
        per = max(acc, 1)
        r["frames_in"] = (w1["from_client"]["frames"] - w0["from_client"]["frames"]) / per
        r["frames_out"] = (w1["to_client"]["frames"] - w0["to_client"]["frames"]) / per
        r["passive"] = s1["passive_closes"] - s0["passive_closes"]
        r["active"] = s1["active_closes"] - s0["active_closes"]
        r["dropped_backlog"] = s1["syns_dropped_backlog"] - s0["syns_dropped_backlog"]
        r["no_pcb"] = s1["syns_dropped_no_pcb"] - s0["syns_dropped_no_pcb"]
        r["client_tw"] = client_tw(ns, emu.ip)
        r["syn_to_tw"] = s1["syn_to_time_wait"] - s0["syn_to_time_wait"]
    else:
        r["conns_per_req"] = None  # loopback: see the emulator's count
    return r


def fmt(r, emu):
    s = "%7.0f req/s  conn/req %s  server %5.0f us/req" % (
        r["rps"], "-   " if r["conns_per_req"] is None else "%.2f" % r["conns_per_req"], r["server_us"])
    if r["wrk_cpu_us"] is not None:
        s += "  wrk %4.0f us" % (r["wrk_cpu_us"] / max(r["requests"], 1))
    if emu:
        s += "  gw %4.0f us  frames in/out %.1f/%.1f  closes passive/active %d/%d  syn drops %d/%d" % (
            r["gw_us"], r["frames_in"], r["frames_out"], r["passive"], r["active"], r["dropped_backlog"], r["no_pcb"])
        s += "  client TIME_WAIT %d  SYNs to lwIP's TIME_WAIT %d" % (r["client_tw"], r["syn_to_tw"])
    if r["errors"]:
        s += "  errors %d" % r["errors"]
    return s


def fresh_run(c, h, conns, seconds, gw=None):
    """one_run through a gateway in a namespace of its own, both gone afterwards; gw: (binary,
    scratch folder) of another gateway build."""
    ns = netns.new_namespace("nsn", "fresh")
    binary, scratch = gw or (None, None)
    try:
        with netns.Emulator(h.port, shared_ns=ns, binary=binary, scratch=scratch) as emu:
            return one_run(c, h, emu, ns, conns, seconds), emu
    finally:
        netns.delete_namespace(ns)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--only", help="comma-separated: bound,bare-client,bare-server,bare-lines,nostall,<peer>,<extra>")
    ap.add_argument("--firmware", help="this server's firmware/ (default the checkout's)")
    ap.add_argument("--glue", help="its sim glue (default the checkout's host_tests/sim)")
    ap.add_argument("--app", action="append", default=[], metavar="NAME=SCRIPT",
                    help="another app script on the unix port (e.g. a bound.py changed in /tmp; apps_bench/ on its path)")
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=FIRMWARE_DIR",
                    help="another copy of this server (e.g. a patched firmware in /tmp), same glue")
    ap.add_argument("--legs", default="loopback,emu-narrow,emu,emu-fresh",
                    help="loopback; emu-narrow: one client namespace for every round with Linux's default "
                         "ephemeral ports (make bench before issue 18); emu: the same with netns.CLIENT_PORTS; "
                         "emu-fresh: a new namespace and gateway for each run, so no TIME_WAIT from earlier "
                         "runs; emu-fresh@NAME: the same through the gateway --gw NAME gives. Default: %(default)s")
    ap.add_argument("--gw", action="append", default=[], metavar="NAME=PATH[,DIR]",
                    help="a gateway build for emu-fresh@NAME legs, DIR: its stats and log folder (e.g. /tmp)")
    ap.add_argument("--trace", action="store_true",
                    help="instead: the frames of each connection through the emulator, step by step (try --conns 1)")
    a = ap.parse_args()

    this = contestants.Contestant("nostall", "-", sim=True, firmware=a.firmware, glue=a.glue)
    cs = [contestants.BOUND, Bare("bare-client", "client"), Bare("bare-server", "server"),
          Bare("bare-lines", "client", "line"), this]
    for spec in a.extra:
        name, fw = spec.split("=", 1)
        cs.append(contestants.Contestant(name, "-", sim=True, firmware=fw, glue=a.glue))
    for spec in a.app:
        name, script = spec.split("=", 1)
        cs.append(contestants.Contestant(name, "-", os.path.abspath(script)))
    cs += [p for p in contestants.PEERS if p.installed()]
    if a.only:
        want = a.only.split(",")
        cs = [c for c in cs if c.name in want]
    gws = {}
    for spec in a.gw:
        name, rest = spec.split("=", 1)
        gws[name] = tuple(rest.split(",", 1)) if "," in rest else (rest, None)
    legs = a.legs.split(",")
    if a.trace:
        legs = [leg for leg in legs if leg in ("emu", "emu-narrow")] or ["emu"]
    if [leg for leg in legs if leg != "loopback"]:
        ok, why = netns.available()
        if not ok:
            raise SystemExit("emulator: " + why)
    results = {(c.name, leg): [] for c in cs for leg in legs}
    handles, emus, nss = {}, {}, {}
    try:
        for c in cs:
            handles[c.name] = contestants.start(c)
        for leg in legs:
            if leg == "loopback" or leg.startswith("emu-fresh"):  # emu-fresh: made for each run
                continue
            nss[leg] = netns.new_namespace("nsn", leg.replace("-", ""),
                                           ports=None if leg == "emu-narrow" else netns.CLIENT_PORTS)
            for c in cs:
                emus[(c.name, leg)] = netns.Emulator(handles[c.name].port, shared_ns=nss[leg])
                emus[(c.name, leg)].start()
        if a.trace:
            for c in cs:
                for leg in nss:
                    r, frames = capture(emus[(c.name, leg)], nss[leg], a.conns, a.seconds)
                    print("%-10s %-12s %7.0f req/s, ms from the SYN (median / p90, connections):" % (
                        leg, c.name, r["rps"]))
                    for k, (med, p90, n) in phases(frames).items():
                        print("    %-10s %8.3f %8.3f  %d" % (k, med, p90, n))
            return
        for rnd in range(a.rounds):
            order = cs if rnd % 2 == 0 else list(reversed(cs))
            for c in order:  # the legs of one contestant back to back: the machine's load moves
                for leg in (legs if rnd % 2 == 0 else list(reversed(legs))):
                    if leg.startswith("emu-fresh"):
                        gw = gws[leg.split("@", 1)[1]] if "@" in leg else None
                        r, emu = fresh_run(c, handles[c.name], a.conns, a.seconds, gw)
                    else:
                        emu = emus.get((c.name, leg))
                        r = one_run(c, handles[c.name], emu, nss.get(leg), a.conns, a.seconds)
                    results[(c.name, leg)].append(r)
                    print("round %d %-14s %-12s %s" % (rnd + 1, leg, c.name, fmt(r, emu)), flush=True)
    finally:
        for e in emus.values():
            e.close()
        for ns in nss.values():
            netns.delete_namespace(ns)
        for h in handles.values():
            h.stop()
    print("\nmedians, req/s (ratio to bare-client / to bound):")
    for leg in legs:
        med = {c.name: statistics.median(r["rps"] for r in results[(c.name, leg)]) for c in cs}
        for c in cs:
            parts = ["%7.0f" % med[c.name]]
            for ref in ("bare-client", "bound"):
                if med.get(ref):
                    parts.append("%.2fx %s" % (med[c.name] / med[ref], ref))
            print("  %-14s %-12s %s" % (leg, c.name, "  ".join(parts)))


if __name__ == "__main__":
    main()
