# The phases of one kept-alive request, each in a loop of its own, for harness.bench_phases (make
# bench BENCH=phases). MicroPython, unix port, run under valgrind --tool=callgrind
# --dump-before=gc_isenabled: every gc.isenabled() here ends a segment of the count, so each loop
# is counted on its own in one run. Each phase runs twice (N1 and N2 times) and the harness takes
# the difference, so what a loop costs once (its set-up, the marks) cancels; a phase's cost is its
# loop's per-iteration count minus its baseline's (the same loop without the phase's call).
#
# The phases are what the server does per request on the bench's GET / (apps_bench/nostall/app.py),
# through the firmware's own sans-IO pieces (proto, web, framing); the scheduler phase is one
# readiness wait through asyncio, as the server makes one per kept-alive request. Every phase is
# run once before it is counted (the caches a first request fills). The GC runs as it would, in
# the bench's heap: the harness counts collections apart (by C function), as the server's own
# run has them where they fall.
#
#   micropython -X heapsize=256K phases.py N1 N2 PORT [SETTINGS]   (MICROPYPATH: apps_bench/nostall, firmware)
#
# Prints one JSON line: the segment labels in order, and the heap bytes each loop allocates per
# iteration (counted apart, with the GC held off).

import gc
import json
import socket
import sys

import asyncio
from asyncio import core

from nostall.config import Config
from nostall.framing import COALESCE_BYTES, plan
from nostall.proto import RequestReader

import app as bench_app

# what harness.target.RawConn sends for the bench's GET / (benchmem.instructions)
REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
# a browser's GET: 9 header fields, for the parse of a fuller head
BROWSER = (b"GET /api/led?x=1 HTTP/1.1\r\nHost: 192.168.4.1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) "
           b"Gecko/20100101 Firefox/128.0\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: "
           b"gzip, deflate\r\nReferer: http://192.168.4.1/\r\nConnection: keep-alive\r\nSec-Fetch-Dest: empty\r\n"
           b"Sec-Fetch-Mode: cors\r\n\r\n")
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello"

n1, n2, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
settings = json.load(open(sys.argv[4])) if len(sys.argv) > 4 else {}
cfg = Config(**settings.get("limits", {}))
cap = cfg.max_requests_per_connection
left = cap - 1 if cap else None  # as the server's _respond has it for a connection's first request
idle_s = max(1, cfg.idle_timeout_ms // 1000)

app = bench_app.make_app(None)
for path in ("/status", "/metrics"):  # the routes Server() adds to every app
    if not app.has_route(path):
        app.route(path)(lambda req: None)

reader = RequestReader(cfg)
reader.feed(REQUEST)
req = reader.next()
assert req is not None and req.path == "/", req
resp = None


def _run(coro):
    # a coroutine that never waits, to its end
    try:
        coro.send(None)
    except StopIteration as e:
        return e.value
    raise RuntimeError("a phase waited")


resp = _run(app.dispatch(req))
assert resp.status == 200, resp.status
plan(req, resp, left, idle_s)  # a first answer fills framing's caches (status line, header lines)
try:  # this server's plan() joins a short body to the head itself (coalesce)
    plan(req, resp, left, idle_s, COALESCE_BYTES)
    JOINED = True
except TypeError:  # a base revision's: the shell joined them (head + body)
    JOINED = False
resp = _run(app.dispatch(req))
exact = getattr(app, "_exact", {}).get("/", {})
handler = exact.get("GET")


# ---- the loops: each `async def` takes n; run with _run, or asyncio.run for the waits ----

async def empty(n):
    for _ in range(n):
        pass


def _feeds(data):
    async def feed(n):  # the baseline of its parse: the bytes back in the buffer
        r = reader
        for _ in range(n):
            r.reset()
            r.feed(data)

    async def parse(n):  # the server's reader.next() (a Request), then next() again (None: more bytes)
        r = reader
        for _ in range(n):
            r.reset()
            r.feed(data)
            r.next()
            r.next()

    return feed, parse


feed, parse = _feeds(REQUEST)
feed_browser, parse_browser = _feeds(BROWSER)


async def dispatch(n):  # as the server awaits it: route, handler, Response, make_response
    d = app.dispatch
    q = req
    for _ in range(n):
        await d(q)


async def find(n):  # the route lookup alone
    f = app._find
    m, p = req.method, req.path
    for _ in range(n):
        f(m, p)


async def handler_only(n):  # the bench's handler alone: Response("hello", content_type=TEXT)
    h = handler
    q = req
    for _ in range(n):
        h(q)


async def framing(n):  # framing.plan: body mode, keep-alive, the response head as bytes
    q, r, lt, i, c = req, resp, left, idle_s, COALESCE_BYTES
    if JOINED:  # with the short body, as the server asks for it
        for _ in range(n):
            plan(q, r, lt, i, c)
    else:
        for _ in range(n):
            plan(q, r, lt, i)


async def join(n):  # the head and its short body in one write, where the shell joined them
    if JOINED:  # plan() did it (framing, above): nothing more
        for _ in range(n):
            pass
        return
    head = plan(req, resp, left, idle_s)[0]
    body = resp.body
    for _ in range(n):
        head + body


async def bound_parse(n):  # what the bound does with the lines it reads, beyond reading them
    line, host, blank = b"GET / HTTP/1.1\r\n", b"Host: test\r\n", b"\r\n"
    for _ in range(n):
        if not line:
            break
        if not host or host == b"\r\n":
            break
        if not blank or blank == b"\r\n":
            pass
        if line.startswith(b"GET /big "):
            break


# ---- the scheduler: one readiness wait on a socket, as the server makes per kept-alive request ----

class _ReadWait:
    """One readiness wait on sock, as asyncio's streams make it; then readinto(space), if given."""

    def __init__(self, sock=None, space=None):
        self.sock, self.space, self.armed = sock, space, True

    def recv(self, sock, space):
        self.sock, self.space, self.armed = sock, space, True
        return self

    def __iter__(self):
        return self

    def __next__(self):
        if self.armed:
            self.armed = False
            core._io_queue.queue_read(self.sock)
            return None
        raise StopIteration(None if self.space is None else self.sock.readinto(self.space))


try:
    from nostall.waiter import Waiter
except ImportError:  # a firmware without waiter.py: asyncio's own wait, as its streams make it
    Waiter = _ReadWait


def _pair():
    addr = socket.getaddrinfo("127.0.0.1", port)[0][-1]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(addr)
    ls.listen(1)
    c = socket.socket()
    c.connect(addr)
    s, _ = ls.accept()
    s.setblocking(False)
    c.setblocking(False)
    return ls, c, s


listener, client, server = _pair()
space = memoryview(bytearray(2048))
cbuf = bytearray(256)


async def _other_tasks():
    # what else the server's loop holds: the accept loop parked on the listener, a ticker asleep
    async def accept_wait():
        await _ReadWait(listener)  # the listener never is readable here

    async def ticker():
        await asyncio.sleep(3600)

    asyncio.create_task(accept_wait())
    asyncio.create_task(ticker())
    await asyncio.sleep_ms(0)


async def sched_base(n):  # the exchange with no wait: the request is read as soon as it is there
    c, s, sp, cb = client, server, space, cbuf
    for _ in range(n):
        c.write(REQUEST)
        s.readinto(sp)
        s.write(ANSWER)
        c.readinto(cb)


async def sched(n):  # the same, with the read through the scheduler: Waiter.recv, poll, resume
    c, s, sp, cb = client, server, space, cbuf
    w = Waiter()
    for _ in range(n):
        c.write(REQUEST)
        await w.recv(s, sp)
        s.write(ANSWER)
        c.readinto(cb)


PHASES = [("empty", empty), ("feed", feed), ("parse", parse), ("feed_browser", feed_browser),
          ("parse_browser", parse_browser), ("dispatch", dispatch), ("find", find), ("handler", handler_only),
          ("framing", framing), ("join", join), ("bound_parse", bound_parse)]
WAITS = [("sched_base", sched_base), ("sched", sched)]
if handler is None:
    PHASES.remove(("handler", handler_only))
if not hasattr(app, "_find"):
    PHASES.remove(("find", find))


def _mark():
    # valgrind dumps its count before each gc.isenabled(): the first ends the segment before, the
    # second leaves the collection of that loop's garbage out of the next one
    gc.isenabled()
    gc.collect()
    gc.isenabled()


labels = []
alloc = {}
BYTES_N = 10  # iterations for the heap each phase allocates (not counted: after the last mark)


def _bytes(name, loop):
    # heap bytes per iteration, the GC held off
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    loop()
    alloc[name] = (gc.mem_alloc() - before) // BYTES_N
    gc.enable()


async def _waits():
    await _other_tasks()
    for name, fn in WAITS:
        for n in (n1, n2):
            _mark()
            labels.append("%s:%d" % (name, n))
            await fn(n)
    _mark()
    for name, fn in WAITS:
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        await fn(BYTES_N)
        alloc[name] = (gc.mem_alloc() - before) // BYTES_N
        gc.enable()


# the counted loops, the GC on (its collections are told apart by the harness, by function)
for name, fn in PHASES:
    for n in (n1, n2):
        _mark()
        labels.append("%s:%d" % (name, n))
        _run(fn(n))
_mark()
labels.append("setup:0")  # asyncio's start and the other tasks: a segment of their own, not used
asyncio.run(_waits())
for name, fn in PHASES:
    _bytes(name, lambda: _run(fn(BYTES_N)))
print(json.dumps({"labels": labels, "alloc": alloc}))
