# A test app that shadows firmware/app.py on the sim board (its dir comes first on the path):
# the real app's routes plus handlers that fail in every way a handler can. Unix port only.

import asyncio
import gc

from nostall.web import Response


from real_app import make_real_app as _real_app


class Weird:
    pass


_HELD = []  # /fault/hold's blocks, until /fault/release


def _hold(spare):
    # fill the heap, big blocks first, twice (the list's own old copies are garbage the second
    # time), then free 64-byte blocks worth `spare` bytes: what comes next (the next request's
    # head) finds the heap about that full
    for _ in range(2):
        gc.collect()
        for size in (16384, 4096, 1024, 256, 64):
            try:
                while True:
                    _HELD.append(bytearray(size))
            except MemoryError:
                pass
    del _HELD[-(spare // 64 + 1):]


def make_app(hw):
    app = _real_app(hw)

    @app.get("/fault/raise")
    def boom(req):
        raise ValueError("boom")

    @app.get("/fault/memory")
    def memory(req):
        raise MemoryError()

    @app.get("/fault/oom")
    def oom(req):
        # a real out-of-memory: allocate until the heap is full (the list is garbage after the raise)
        hog = []
        while True:
            hog.append(bytearray(4096))

    @app.get("/fault/hold")
    def hold(req):
        # the answer is built first: there is no room for it afterwards
        r = Response(b"held")
        _hold(int(req.args.get("spare", "1024")))
        return r

    @app.get("/fault/release")
    def release(req):
        _HELD.clear()
        gc.collect()
        return "released"

    @app.get("/fault/badtype")
    def badtype(req):
        return Weird()

    @app.get("/fault/badheader")
    def badheader(req):
        return Response("x", headers={"X-Reflect": req.args.get("v", "")})

    @app.get("/fault/slow")
    async def slow(req):
        await asyncio.sleep_ms(int(req.args.get("ms", "5000")))
        return "late"

    @app.get("/fault/stream")
    def stream(req):
        def gen():
            yield b"first\n"
            raise RuntimeError("mid-stream")

        return Response(stream=gen())

    @app.get("/fault/big")
    def big(req):
        # a large streamed body, for clients that stop reading
        chunk = b"x" * 1024

        def gen():
            for _ in range(int(req.args.get("kb", "4096"))):
                yield chunk

        return Response(stream=gen())

    # bad return values: each must cost its own request a 500, nothing more
    @app.get("/fault/badstatus")
    def badstatus(req):
        return "x", "teapot"  # a status that is not an int

    @app.get("/fault/hugestatus")
    def hugestatus(req):
        return "x", 12345  # not a 3-digit status

    @app.get("/fault/badtuple")
    def badtuple(req):
        return "x", 200, {}, "extra"

    @app.get("/fault/badheaders")
    def badheaders(req):
        return "x", 200, "not a dict"

    @app.get("/fault/badjson")
    def badjson(req):
        return {"led": Weird()}  # not JSON-serialisable

    @app.get("/fault/genstr")
    def genstr(req):
        def gen():
            yield "text, not bytes"

        return Response(stream=gen())

    @app.get("/fault/genint")
    def genint(req):
        def gen():
            yield 42

        return Response(stream=gen())

    @app.get("/fault/yields")
    def yields(req):
        # a handler that is a generator (yield instead of return): not a coroutine
        yield b"streamed by mistake"

    # heap probes for `make bench`: bytes allocated between start and stop, the GC held off
    probe = {"start": 0}

    @app.get("/probe/alloc/start")
    def alloc_start(req):
        gc.collect()
        gc.disable()
        probe["start"] = gc.mem_alloc()
        return "started"

    @app.get("/probe/alloc/stop")
    def alloc_stop(req):
        n = gc.mem_alloc() - probe["start"]
        gc.enable()
        return {"allocated": n}

    @app.errorhandler(KeyError)
    def key_error(req, exc):
        return {"error": "missing key"}, 422

    @app.get("/fault/keyerror")
    def keyerror(req):
        return {}["x"]

    return app
