"""Socket fuzzer: random and mutated byte streams over real TCP connections to a (sim) board.

Each case is one connection: bytes made from the hand-written malformed corpus, the protocol
table and valid requests, mutated (bit flips, truncation, duplication, splicing, inserted
tokens, random bytes), sent in random pieces with random short pauses; then the client either
half-closes (EOF) or keeps its side open and lets the server's own timeouts end it, and reads
whatever comes back until the server closes. Several connections run at once (bounded).

Checked: every reply is well-formed HTTP/1.1 with a status below 500 (a 500 would be a crash in
the parser path); no connection outlives the server's own timeouts (a hang); every N cases a
good request on a new connection gets its 200; at the end the server is alive, its open
connections and (on a sim) fds are back to their baselines, /status counted no 5xx, no handler
error and no close for an unexpected error, and the sim's log shows no traceback.
Deterministic: case i of --seed S is the same bytes on every run.

    python -m harness.fuzz_socket --cases 100000 --seed 1            # starts its own sim board
    python -m harness.fuzz_socket --host 192.168.1.50 --port 80 --concurrency 2 --cases 2000
    python -m harness.fuzz_socket --seed 1 --show 1234               # print case 1234's bytes

(with PYTHONPATH=host_tests:firmware, as `make fuzz` runs it)
"""

import argparse
import collections
import json
import os
import pathlib
import random
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import corpus, proto_table
from harness.simboard import SimFleet
from harness.target import get_status, wait_for

# A sim board for fuzzing: short timeouts so that a case left open costs a fraction of a
# second, and more slots than the fuzzer's concurrency plus its health checks. The backlog is the
# most a board honours: past its accept mailbox (CONFIG_LWIP_TCP_ACCEPTMBOX_SIZE, 6) connections
# the server has not accepted yet are reset, where past the backlog a SYN only waits for its
# retransmission (through lwIP, 16 here had a few cases reset whenever the sim fell behind).
FAST_LIMITS = {
    "max_connections": 12,
    "listen_backlog": 6,
    "header_timeout_ms": 300,
    "body_timeout_ms": 300,
    "idle_timeout_ms": 300,
    "linger_timeout_ms": 300,
    "write_timeout_ms": 1000,
    "tick_ms": 20,
}
DEFAULT_CONCURRENCY = 8
HOLD_SHARE = 0.03  # cases where the client never half-closes: the server's timeouts end them
MAX_CASE_BYTES = 16384
# The 5xx the reader may refuse with (an unknown method or transfer coding, another HTTP major
# version). Any other 5xx is a failure: 500 is a crash in the parser/app path, 503 a busy server.
REFUSALS_5XX = (501, 505)

VALID = [
    b"GET / HTTP/1.1\r\nHost: b\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET /index.html HTTP/1.1\r\nHost: b\r\nAccept: */*\r\nUser-Agent: fuzz\r\n\r\n",
    b"GET /api/led HTTP/1.1\r\nHost: b\r\n\r\n",
    b"PUT /api/led HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"on\": true}",
    b"POST /api/led HTTP/1.1\r\nHost: b\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\noff",
    b"PUT /api/led HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n2\r\non\r\n0\r\nX-T: 1\r\n\r\n",
    b"PUT /api/led HTTP/1.1\r\nHost: b\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\non",
    b"GET /api/temperature HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET /api/samples?n=3 HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: b\r\n\r\n",
    b"OPTIONS /api/led HTTP/1.1\r\nHost: b\r\n\r\n",
    b"DELETE /api/led HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET http://b/api/led?x=1 HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET /api/led HTTP/1.0\r\n\r\n",
    b"GET /nope/%2e%2e/x?a=%zz HTTP/1.1\r\nHost: b\r\n\r\n",
    b"\r\nGET /api/led HTTP/1.1\r\nHost: b\r\n\r\nGET /api/temperature HTTP/1.1\r\nHost: b\r\n\r\n",
]
TOKENS = [
    b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\x00", b" ", b"\t", b":", b";", b",", b"%", b"%00", b"%0d%0a",
    b"..", b"/../", b"\\", b"\xff", b"\xc3\xa9", b"Content-Length: 5\r\n", b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n", b"Expect: 100-continue\r\n", b"Connection: close\r\n", b"Host: h\r\n",
    b"0\r\n\r\n", b"fffffff\r\n", b"HTTP/1.1", b"HTTP/2.0", b"GET ", b"http://h", b"*", b"A" * 1100,
    b"X: " + b"y" * 2100 + b"\r\n", b"A: b\r\n" * 40,
]


def seeds():
    """Byte strings the mutations start from: valid requests, the wire corpus, the proto table."""
    out = list(VALID)
    out += [row[1] for row in corpus.CORPUS]
    out += [c[1] for c in proto_table.CASES]
    return out


# ---- cases ----


def _mutate(rng, data, pool):
    op = rng.randrange(9)
    n = len(data)
    if op == 0 and n:  # bit flips
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if op == 1:  # insert a token
        i = rng.randint(0, n)
        return data[:i] + rng.choice(TOKENS) + data[i:]
    if op == 2 and n:  # delete a slice
        i = rng.randrange(n)
        return data[:i] + data[i + rng.randint(1, 16) :]
    if op == 3 and n:  # duplicate a slice
        i = rng.randrange(n)
        j = min(n, i + rng.randint(1, 64))
        return data[:j] + data[i:j] * rng.randint(1, 40) + data[j:]
    if op == 4:  # truncate
        return data[: rng.randint(0, n)]
    if op == 5:  # splice with another seed
        other = rng.choice(pool)
        return data[: rng.randint(0, n)] + other[rng.randint(0, len(other)) :]
    if op == 6 and n:  # random bytes over a stretch
        i = rng.randrange(n)
        k = rng.randint(1, 8)
        return data[:i] + bytes(rng.randrange(256) for _ in range(k)) + data[i + k :]
    if op == 7:  # the whole thing twice (pipelining)
        return data + data
    return data + rng.choice(pool)  # op 8: followed by another seed


def make_case(seed, i, pool):
    """(pieces, pauses_s, hold) of case i: the same on every run for the same seed."""
    rng = random.Random("%d:%d" % (seed, i))
    kind = rng.random()
    if kind < 0.08:
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 600)))
    elif kind < 0.16:
        data = rng.choice(pool)
    else:
        data = rng.choice(pool)
        for _ in range(rng.randint(1, 4)):
            data = _mutate(rng, data, pool)
    data = data[:MAX_CASE_BYTES]
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.choice((0, 0, 1, 2, 4, 8))))
    pieces = []
    last = 0
    for c in cuts + [len(data)]:
        if c > last:
            pieces.append(data[last:c])
            last = c
    pauses = [rng.uniform(0.001, 0.02) if rng.random() < 0.05 else 0.0 for _ in pieces]
    hold = rng.random() < HOLD_SHARE
    return pieces, pauses, hold


def run_case(host, port, case, hang_s):
    """Send one case; read until the server closes. ("eof"|"reset"|"hang"|"refused", bytes, s)."""
    pieces, pauses, hold = case
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=hang_s)
    except OSError:
        return "refused", b"", time.monotonic() - t0
    got = []
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece, pause in zip(pieces, pauses):
                s.sendall(piece)
                if pause:
                    time.sleep(pause)
            if not hold:
                s.shutdown(socket.SHUT_WR)
        except socket.timeout:  # sendall could not finish: the server stopped reading for good
            return "hang", b"", time.monotonic() - t0
        except OSError:
            pass  # the server refused, drained and closed (EPIPE, reset, ENOTCONN): read what it sent
        deadline = time.monotonic() + hang_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "hang", b"".join(got), time.monotonic() - t0
            s.settimeout(left)
            try:
                data = s.recv(65536)
            except socket.timeout:
                return "hang", b"".join(got), time.monotonic() - t0
            except ConnectionResetError:
                return "reset", b"".join(got), time.monotonic() - t0
            if not data:
                return "eof", b"".join(got), time.monotonic() - t0
            got.append(data)
    finally:
        s.close()


def parse_responses(data):
    """(statuses, problem or None, cut): the responses in data, in order. A body shorter than
    announced at the very end is "cut" (the server may end a connection mid-stream)."""
    statuses = []
    pos = 0
    n = len(data)
    while pos < n:
        if not data.startswith(b"HTTP/1.1 ", pos):
            return statuses, "not a status line at byte %d: %r" % (pos, data[pos : pos + 40]), False
        he = data.find(b"\r\n\r\n", pos)
        if he < 0:
            return statuses, None, True
        lines = data[pos:he].split(b"\r\n")
        code = lines[0][9:12]
        if not code.isdigit() or lines[0][12:13] != b" ":
            return statuses, "bad status line %r" % lines[0][:60], False
        status = int(code)
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or b"\r" in line or b"\n" in line:
                return statuses, "bad response header %r" % line[:60], False
            headers[name.strip().lower()] = value.strip()
        statuses.append(status)
        pos = he + 4
        if status < 200 or status in (204, 304):
            continue
        nxt = _body_end(data, pos, headers)
        if nxt is None:  # no body as announced: a HEAD response, or a body cut at the end
            if pos == n or data.startswith(b"HTTP/1.1 ", pos):
                continue
            return statuses, None, True
        pos = nxt
    return statuses, None, False


def _body_end(data, pos, headers):
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            e = data.find(b"\r\n", pos)
            if e < 0:
                return None
            try:
                size = int(data[pos:e].split(b";")[0], 16)
            except ValueError:
                return None
            pos = e + 2
            if size == 0:
                if data[pos : pos + 2] != b"\r\n":
                    return None
                return pos + 2
            if data[pos + size : pos + size + 2] != b"\r\n":
                return None
            pos += size + 2
    if b"content-length" in headers:
        end = pos + int(headers[b"content-length"])
        if end <= len(data) and (end == len(data) or data.startswith(b"HTTP/1.1 ", end)):
            return end
        return None
    return len(data)  # delimited by the server's close


# ---- talking to the server ----


def http_get(host, port, path, timeout=3.0):
    """(status, body) of GET path on a new connection; the client closes first, as it should."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            he = data.find(b"\r\n\r\n")
            if he >= 0:
                head = data[:he].lower()
                k = head.find(b"content-length:")
                if k >= 0:
                    cl = int(head[k + 15 :].split(b"\r\n")[0])
                    if len(data) >= he + 4 + cl:
                        return int(data[9:12]), data[he + 4 : he + 4 + cl]
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("server closed before a whole response")
            data += chunk


class Summary:
    def __init__(self, concurrency):
        self.concurrency = concurrency
        self.cases = 0
        self.unanswered = 0  # connections that ended in a reset (or cut short) before any answer
        self.statuses = collections.Counter()
        self.outcomes = collections.Counter()
        self.problems = []  # (case, what)
        self.health_checks = self.health_ok = 0
        self.slowest = 0.0
        self.elapsed = self.rate = 0.0
        self.fds_before = self.fds_after = -1
        self.open_before = self.open_after = -1
        self.server = {}

    def status_text(self):
        top = sorted(self.statuses.items())
        return "statuses " + " ".join("%dx%d" % (n, code) for code, n in top) if top else "no responses"

    def text(self):
        lines = [
            "fuzz: %d cases in %.1f s = %.0f cases/s (%d at once)" % (self.cases, self.elapsed, self.rate, self.concurrency),
            "  ends: %s; slowest case %.2f s" % (dict(self.outcomes), self.slowest),
            "  %s" % self.status_text(),
            "  health checks: %d/%d answered 200" % (self.health_ok, self.health_checks),
            "  open connections %d->%d, fds %s"
            % (self.open_before, self.open_after,
               "%d->%d" % (self.fds_before, self.fds_after) if self.fds_before >= 0 else "n/a (not a sim)"),
            "  server: %s" % json.dumps(self.server, sort_keys=True),
            "  problems: %d%s" % (len(self.problems), "".join("\n    case %s: %s" % p for p in self.problems[:20])),
        ]
        return "\n".join(lines)


def run(host, port, cases, seed=1, concurrency=DEFAULT_CONCURRENCY, health_every=500, hang_s=None,
        fd_count=None, log=None, time_limit=None, progress=None, lossy=False):
    """Run cases 0..cases-1 of seed; returns a Summary (problems empty when all checks held).
    hang_s: a connection still open this long after its last byte was sent is a hang (default:
    the server's longest timeout plus 2 s, read from /status). lossy: the server's TCP stack is
    lwIP (a board, the emulator), where closing with unread data resets the connection and drops
    an answer not yet acknowledged: a refusal /status counted may then never arrive, so up to one
    per reset without an answer is not a problem."""
    pool = seeds()
    url = "http://%s:%d" % (host, port)
    before = get_status(url)
    limits = before.get("limits", {})
    if hang_s is None:
        hang_s = max(limits.get(k, 10000) for k in ("header_timeout_ms", "body_timeout_ms", "idle_timeout_ms",
                                                      "linger_timeout_ms", "write_timeout_ms")) / 1000 + 2.0
    sm = Summary(concurrency)
    sm.open_before = before["connections_open"]
    if fd_count is not None:
        time.sleep(0.2)  # the /status connection above is closing
        sm.fds_before = min(fd_count() for _ in range(3))
    log_from = os.path.getsize(log) if log else 0
    lock = threading.Lock()

    def one(i):
        case = make_case(seed, i, pool)
        try:
            end, data, took = run_case(host, port, case, hang_s)
        except OSError as e:
            end, data, took = "client error %r" % e, b"", 0.0
        statuses, problem, cut = parse_responses(data)
        with lock:
            sm.outcomes["cut" if cut else end] += 1
            if not statuses and (cut or end == "reset"):
                sm.unanswered += 1
            sm.statuses.update(statuses)
            sm.slowest = max(sm.slowest, took)
            if end not in ("eof", "reset"):
                sm.problems.append((i, "%s after %.1f s, got %r" % (end, took, data[:80])))
            if problem:
                sm.problems.append((i, problem))
            bad = [s for s in statuses if s >= 500 and s not in REFUSALS_5XX]
            if bad:
                sm.problems.append((i, "status %s: %r" % (bad, data[:200])))

    t0 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as ex:
        i = 0
        while i < cases:
            if time_limit is not None and time.monotonic() - t0 > time_limit:
                break
            j = min(cases, i + health_every)
            list(ex.map(one, range(i, j)))
            sm.cases = j
            i = j
            sm.health_checks += 1
            try:
                code, _ = http_get(host, port, "/api/led")
                sm.health_ok += code == 200
                if code != 200:
                    sm.problems.append(("health after %d" % j, "status %d" % code))
            except OSError as e:
                sm.problems.append(("health after %d" % j, repr(e)))
            if progress:
                progress(sm, time.monotonic() - t0)
    sm.elapsed = time.monotonic() - t0
    sm.rate = sm.cases / sm.elapsed if sm.elapsed else 0.0

    # the end: alive, back to the baselines, nothing counted that should not be
    after = wait_for(lambda: (lambda s: s if s["connections_open"] <= sm.open_before else None)(get_status(url)), 5)
    after = after or get_status(url)
    sm.open_after = after["connections_open"]
    if sm.open_after > sm.open_before:
        sm.problems.append(("end", "open connections %d -> %d" % (sm.open_before, sm.open_after)))
    if fd_count is not None:
        wait_for(lambda: fd_count() <= sm.fds_before, 5)
        sm.fds_after = fd_count()
        if sm.fds_after > sm.fds_before:
            sm.problems.append(("end", "fds %d -> %d" % (sm.fds_before, sm.fds_after)))
    d5 = after["status_5xx"] - before["status_5xx"]
    dh = after["handler_errors"] - before["handler_errors"]
    busy = after["rejected_busy"] - before["rejected_busy"]
    seen5 = sum(sm.statuses[c] for c in REFUSALS_5XX)
    closes = {k: v - before["closes_by_server"].get(k, 0) for k, v in after["closes_by_server"].items()}
    closes = {k: v for k, v in closes.items() if v}
    sm.server = {"requests": after["requests"] - before["requests"], "status_4xx": after["status_4xx"] - before["status_4xx"],
                 "status_5xx": d5, "501_505_seen": seen5, "handler_errors": dh, "rejected_busy": busy,
                 "closes_by_server": closes,
                 "heap_free_after_gc": get_status(url, gc=True)["heap_free"]}
    if dh or busy or d5 < seen5 or d5 > seen5 + (sm.unanswered if lossy else 0):
        sm.problems.append(("end", "/status counted %d 5xx (%d 501/505 seen), %d handler errors, %d busy"
                            % (d5, seen5, dh, busy)))
    for reason in ("error", "memory"):
        if closes.get(reason):
            sm.problems.append(("end", "%d connections closed for %r" % (closes[reason], reason)))
    if log:
        with open(log, "rb") as f:
            f.seek(log_from)
            text = f.read().decode("utf-8", "replace")
        for word in ("Traceback", "xception", "handler error"):
            k = text.find(word)
            if k >= 0:
                sm.problems.append(("log", text[max(0, k - 200) : k + 600]))
                break
    return sm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    ap.add_argument("--health-every", type=int, default=500, help="a good request after every N cases")
    ap.add_argument("--host", help="fuzz this server (default: start a sim board with short timeouts)")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--time-limit", type=float, default=3600, help="stop starting cases after this many s")
    ap.add_argument("--show", type=int, metavar="I", help="print case I's pieces and exit")
    a = ap.parse_args()
    if a.show is not None:
        pieces, pauses, hold = make_case(a.seed, a.show, seeds())
        for p, z in zip(pieces, pauses):
            print(repr(p), "then %.3f s pause" % z if z else "")
        print("then", "keep the connection open" if hold else "half-close (EOF)")
        return 0
    sim = fleet = tmp = None
    if a.host:
        host, port, fd_count, log = a.host, a.port, None, None
    else:
        tmp = tempfile.TemporaryDirectory(prefix="fuzz-")
        fleet = SimFleet(pathlib.Path(tmp.name))
        sim = fleet.start(FAST_LIMITS).sim
        host, port, fd_count, log = sim.host, sim.port, sim.fd_count, sim.log
        print("fuzz: sim board on %s (limits %s)" % (sim.url, json.dumps(FAST_LIMITS)))
    print("fuzz: %d cases, seed %d, %d connections at once, a health check every %d cases"
          % (a.cases, a.seed, a.concurrency, a.health_every))

    def progress(sm, t):
        sys.stdout.write("\r  %d/%d cases, %.0f/s, %d problems   " % (sm.cases, a.cases, sm.cases / t, len(sm.problems)))
        sys.stdout.flush()

    try:
        sm = run(host, port, a.cases, a.seed, a.concurrency, a.health_every, fd_count=fd_count, log=log,
                 time_limit=a.time_limit, progress=progress if sys.stdout.isatty() else None)
        print()
        print(sm.text())
        if sim is not None and sim.proc.poll() is not None:
            sm.problems.append(("end", "sim board exited with %s" % sim.proc.returncode))
    finally:
        if fleet is not None:
            fleet.close()
        if tmp is not None:
            tmp.cleanup()
    if sm.cases < a.cases:
        print("fuzz: FAILED: time limit reached after %d of %d cases" % (sm.cases, a.cases))
        return 1
    if sm.problems:
        print("fuzz: FAILED: %d problems (reproduce one: --seed %d --show CASE)" % (len(sm.problems), a.seed))
        return 1
    print("fuzz: OK: no 500/503 (501/505 are refusals), 0 hangs, server alive and back to its baselines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
