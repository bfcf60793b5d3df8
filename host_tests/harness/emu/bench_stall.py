"""Stall length on real lwIP: TCP_MSL 60000 (IDF default) vs 6000, side by side.

The naive close-first server (naive_server.py) behind the emulator, a client
pinned to one source port, 0.15 s pacing, 5 s per request: the time from one
success to the next is the stall (expected ~2*MSL). Both MSLs run at once,
each in its own namespace and thread, so the whole bench takes ~2*60 s + a bit.
Needs root; `make bench-emu` builds both gateways first.

    PYTHONPATH=host_tests python -m harness.emu.bench_stall [MSL_MS ...]
"""
import sys
import threading
import time

from harness.emu import netns, paced
from harness.emu.servers import upstream_server

PACING_S = 0.15
TIMEOUT_S = 5.0
SOURCE_PORT = 43210


def measure(emu, out):
    # Stop at the first recovery; bounded by count and by ~2.5 * 2*MSL.
    limit_s = 2.5 * 2 * emu.msl_ms / 1000 + 30
    with emu.client():
        res = paced.paced_requests(emu.ip, emu.port, count=200, pacing_s=PACING_S,
                                   timeout_s=TIMEOUT_S, source_port=SOURCE_PORT,
                                   deadline_s=limit_s, stop=lambda r: len(paced.stalls(r)) >= 1)
    out[emu.msl_ms] = (res, emu.stats())


def main(msls):
    ok, why = netns.available(msls[0])
    if not ok:
        sys.exit("error: " + why)
    results, threads, emus = {}, [], []
    with upstream_server("naive_server.py") as port:
        try:
            for msl in msls:
                emu = netns.Emulator(port, msl_ms=msl, name_prefix="nsb")
                emus.append(emu)
                emu.__enter__()
                emu.allow_port_reuse()
            t0 = time.monotonic()
            for emu in emus:
                t = threading.Thread(target=measure, args=(emu, results))
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
            wall = time.monotonic() - t0
        finally:
            for emu in emus:
                emu.close()

    print("%-10s %-10s %-13s %-9s %-9s %s" % ("TCP_MSL", "stall", "2*MSL", "requests", "failed",
                                              "SYNs->TIME_WAIT"))
    for msl in msls:
        res, st = results[msl]
        s = paced.summary(res)
        stall = "%.1f s" % s["stalls_s"][0] if s["stalls_s"] else "none"
        print("%-10s %-10s %-13s %-9d %-9d %d" % ("%d ms" % msl, stall, "%.1f s" % (2 * msl / 1000),
                                                  s["requests"], s["failed"], st["syn_to_time_wait"]))
    print("(wall time %.0f s; naive server, source port pinned, %.2f s pacing, %.0f s timeout)"
          % (wall, PACING_S, TIMEOUT_S))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [60000, 6000])
