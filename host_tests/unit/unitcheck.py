# What the unit tests share: plain Python that runs on CPython (under pytest) and on the
# MicroPython unix port (under mp_run.py). No pytest, no f-string "=", no typing, no dataclasses.

import asyncio

from nostall.config import Config
from nostall.proto import RequestReader


class raises:
    """with raises(ValueError, "part of its message") as r: ... ; then r.value is the exception."""

    def __init__(self, exc, match=None):
        self.exc = exc
        self.match = match
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        if typ is None:
            raise AssertionError("did not raise %s" % self.exc.__name__)
        if not issubclass(typ, self.exc):
            return False  # another exception: let it through
        if self.match is not None and self.match not in str(value):
            raise AssertionError("%r does not mention %r" % (str(value), self.match))
        self.value = value
        return True


class Lcg:
    """Seeded splits the same on CPython and MicroPython (whose random has no Random)."""

    def __init__(self, seed):
        self.x = seed

    def randint(self, a, b):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return a + self.x % (b - a + 1)


def splits(data, how, rnd, most=9):
    """data as reads: whole, byte by byte, or ("split") in pieces of 1..most bytes drawn from rnd."""
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    out = []
    i = 0
    while i < len(data):
        n = rnd.randint(1, most)
        out.append(data[i : i + n])
        i += n
    return out


class Clock:
    """A fake ticks_ms: call it for the time; advance it by hand."""

    def __init__(self, t=1000):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t += ms


class Task:
    """A fake asyncio task: remembers being cancelled."""

    def __init__(self):
        self.cancelled = 0

    def cancel(self):
        self.cancelled += 1


def header(resp, name):
    """The value of a response's header name, or None."""
    for k, v in resp.headers:
        if k == name:
            return v
    return None


def run(coro):
    """Run a coroutine to its end on either interpreter's asyncio."""
    return asyncio.run(coro)


def request(method, target, headers=None, body=b""):
    """The Request the reader makes of method, target, headers (Host: x first) and body."""
    h = {"Host": "x"}
    if body:
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    raw = "%s %s HTTP/1.1\r\n%s\r\n" % (method, target, "".join("%s: %s\r\n" % kv for kv in h.items()))
    r = RequestReader(Config())
    r.feed(raw.encode() + body)
    return r.next()
