"""Benchmarks that print numbers (`make bench`); nothing here asserts on time.

  heap   - heap per idle keep-alive connection, from /status?gc=1 before and after
  minheap - smallest -X heapsize at which a (quick) soak still passes, by bisection

    PYTHONPATH=host_tests python -m harness.bench [heap] [minheap]
"""

import argparse

from harness.simboard import DEFAULT_HEAP, SimBoard
from harness.soak import check, run_soak
from harness.target import RawConn, get_status, server_time_wait


def heap_per_idle_connection(n=4, heap=DEFAULT_HEAP):
    with SimBoard(heap=heap) as sim:
        get_status(sim.url, gc=True)  # warm caches: the first /status allocates its own strings
        before = get_status(sim.url, gc=True)["heap_alloc"]
        conns = []
        for _ in range(n):
            c = RawConn(sim.host, sim.port)
            assert c.request("GET", "/api/led").status == 200  # open, used once, now idle
            conns.append(c)
        after = get_status(sim.url, gc=True)
        assert after["connections_open"] == n + 1, after["connections_open"]
        for c in conns:
            c.close()
        per = (after["heap_alloc"] - before) / n
        print("heap per idle keep-alive connection: %.0f bytes (unix port, 64-bit; %d connections, "
              "alloc %d -> %d)" % (per, n, before, after["heap_alloc"]))
        print("fixed per slot (preallocated at start): recv buffer %d bytes"
              % after["limits"]["recv_buffer_bytes"])
        return per


def soak_passes(heap_k, count, interval):
    try:
        with SimBoard(heap="%dK" % heap_k) as sim:
            r = run_soak(sim.url, count=count, interval=interval, fd_counter=sim.fd_count, time_wait=lambda: server_time_wait(sim.port))
            fails = check(r)
    except Exception as e:  # too small to start at all
        fails = ["did not run: %s" % e]
    print("  heap %4dK: %s" % (heap_k, "pass" if not fails else "FAIL " + "; ".join(fails)[:150]))
    return not fails


def min_heap(lo=48, hi=256, count=300, interval=0.01):
    print("smallest heap for a %d-request soak (%.2f s apart), bisecting %dK..%dK:" % (count, interval, lo, hi))
    if not soak_passes(hi, count, interval):
        print("fails even at %dK" % hi)
        return None
    while hi - lo > 8:
        mid = (lo + hi) // 2 // 8 * 8
        if soak_passes(mid, count, interval):
            hi = mid
        else:
            lo = mid
    print("smallest passing heap: %dK" % hi)
    return hi


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="*", default=["heap", "minheap"], choices=["heap", "minheap"])
    a = ap.parse_args()
    if "heap" in a.what:
        heap_per_idle_connection()
    if "minheap" in a.what:
        min_heap()


if __name__ == "__main__":
    main()
