# Checks the protocol table (harness/proto_table.py) against firmware/nostall/proto.py. The same
# file runs under CPython (test_proto.py parametrizes over CASES) and under the MicroPython unix
# port (harness.micropython.run with host_tests and firmware on MICROPYPATH prints "N passed,
# N failed"). Each case is fed whole, byte by byte, and with a further request after it (which
# must be parsed unless an error ended the connection). Plain Python only: no pytest, no
# f-strings, no typing.

import sys

from harness.proto_table import CASES, CFG, NEXT, R
from nostall.proto import HTTPError, RequestReader


def _outcome(req):
    return ("req", req.method, req.target, req.body, req.keep_alive, req.headers)


def feed_all(data, bytewise, cfg=CFG):
    """Outcomes of parsing data: requests in order, then ("error", status) if one was raised."""
    r = RequestReader(cfg)
    out = []
    step = 1 if bytewise else len(data) or 1
    pos = 0
    try:
        while True:
            req = r.next()
            if req is not None:
                out.append(_outcome(req))
                continue
            if pos >= len(data):
                if r.pending():
                    out.append(("incomplete",))
                return out
            n = r.feed(data[pos : pos + step])
            if n == 0:
                out.append(("stuck",))  # buffer full but no request and no error: a bug
                return out
            pos += n
    except HTTPError as e:
        out.append(("error", e.status))
        return out


def matches(got, want):
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if w[0] == "req":
            if g[0] != "req" or g[1:5] != w[1:5]:
                return False
            for k, v in (w[5] or {}).items():
                if g[5].get(k) != v:
                    return False
        elif g != w:
            return False
    return True


def check(case, mode):
    """None if the case passes in this mode, else a message."""
    name, data, want = case
    if mode == "trailing":
        if want and want[-1][0] == "error":
            return None if matches(feed_all(data + NEXT, False), want) else "trailing data changed the outcome"
        data = data + NEXT
        want = want + [R("GET", "/next")]
    got = feed_all(data, mode == "bytewise")
    if matches(got, want):
        return None
    return "%s [%s]: got %r, want %r" % (name, mode, got, want)


MODES = ("whole", "bytewise", "trailing")


def run():
    passed = failed = 0
    for case in CASES:
        for mode in MODES:
            msg = check(case, mode)
            if msg is None:
                passed += 1
            else:
                failed += 1
                print("FAIL", msg)
    print("%d passed, %d failed" % (passed, failed))
    return failed


if __name__ == "__main__":
    sys.exit(1 if run() else 0)
