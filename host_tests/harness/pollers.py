"""Clients that poll a board the way monitoring users do, each in a thread of its own, and the
host side of their TIME_WAIT.

- KeepAlivePoller: one kept-alive connection, a request every interval, optionally from one
  pinned source port (the worst case: a reconnect lands on the old 4-tuple); it reconnects when
  the board closed the connection, and counts that.
- ConnectPoller: a new connection per poll, closed by the client after one answer (the "240
  devices polled with connect/close" case).
- SessionPoller: a script's requests.Session, kept alive by urllib3's pool.
- AiohttpPoller: Home Assistant's REST sensor: aiohttp's pooled session, which closes an idle
  connection after keepalive_timeout (15 s by default) and polls every 30 s (both scaled).

Every poller records one Poll per request: when, how long, ok or why not. Start them inside the
namespace the board is reached from (they create their sockets when started)."""

import asyncio
import socket
import subprocess
import threading
import time

from harness.emu import netns

REQUEST = "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: nostall-poller\r\nAccept: */*\r\n\r\n"
STALL_S = 2.0  # a poll slower than this is a stall (the stall this project removes lasts 12-120 s)


class Poll:
    __slots__ = ("t", "latency_s", "ok", "error")

    def __init__(self, t, latency_s, ok, error=None):
        self.t, self.latency_s, self.ok, self.error = t, latency_s, ok, error

    def __repr__(self):
        return "<poll %.1fs %s %.3fs%s>" % (self.t, "ok" if self.ok else "FAIL", self.latency_s,
                                            "" if self.ok else " " + str(self.error))


class _Poller:
    def __init__(self, host, port, path="/api/temperature", interval_s=1.0, count=10, ns_path=None):
        self.host, self.port, self.path = host, port, path
        self.interval_s, self.count = interval_s, count
        self.ns_path = ns_path
        self.polls = []
        self._thread = None
        self._t0 = None

    def start(self):
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        return self

    def join(self, timeout=None):
        self._thread.join(timeout)
        return self

    def _main(self):
        ctx = netns.in_netns(self.ns_path) if self.ns_path else _nothing()
        with ctx:
            try:
                self.run()
            finally:
                self.finish()

    def run(self):
        for i in range(self.count):
            due = self._t0 + i * self.interval_s
            time.sleep(max(0.0, due - time.monotonic()))
            t = time.monotonic()
            try:
                self.poll_once()
                self.polls.append(Poll(t - self._t0, time.monotonic() - t, True))
            except Exception as e:  # any failure is a failed poll: the user's poll would fail too
                self.polls.append(Poll(t - self._t0, time.monotonic() - t, False, repr(e)))

    def finish(self):
        pass

    # ---- results ----
    @property
    def failed(self):
        return [p for p in self.polls if not p.ok]

    @property
    def stalls(self):
        return [p for p in self.polls if not p.ok or p.latency_s > STALL_S]

    def summary(self):
        lat = sorted(p.latency_s for p in self.polls if p.ok)
        return "%d/%d ok, max %.0f ms" % (len(lat), len(self.polls), 1000 * lat[-1] if lat else -1)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _read_response(sock):
    """One response (Content-Length framed, as the board answers small JSON): (status, headers)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the board before an answer")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the board mid-answer")
        body += chunk
    return int(lines[0].split(" ")[1]), headers


class KeepAlivePoller(_Poller):
    """One kept-alive connection; source_port pins it (and every reconnect) to one local port."""

    def __init__(self, *a, source_port=None, **kw):
        super().__init__(*a, **kw)
        self.source_port = source_port
        self.sock = None
        self.reconnects = 0
        self.closed_by_board = 0  # the board ended the connection between polls

    def _connect(self):
        s = socket.socket()
        s.settimeout(10)
        if self.source_port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", self.source_port))
        s.connect((self.host, self.port))
        return s

    def _board_closed(self):
        # between polls, a readable socket means EOF or a reset from the board
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(1)
            return data == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self.sock.setblocking(True)
            self.sock.settimeout(10)

    def poll_once(self):
        if self.sock is not None and self._board_closed():
            self.closed_by_board += 1
            self.sock.close()
            self.sock = None
        if self.sock is None:
            if self.polls:
                self.reconnects += 1
            self.sock = self._connect()
        self.sock.sendall(REQUEST.format(path=self.path, host=self.host).encode())
        status, headers = _read_response(self.sock)
        if status != 200:
            raise RuntimeError("status %d" % status)
        if headers.get("connection") == "close":  # the board asked to end it: we close first
            self.sock.close()
            self.sock = None

    def finish(self):
        if self.sock is not None:
            self.sock.close()


class ConnectPoller(_Poller):
    """A new connection per poll; the client closes it after the answer (so its side keeps the
    TIME_WAIT)."""

    def poll_once(self):
        with socket.create_connection((self.host, self.port), timeout=10) as s:
            s.sendall(REQUEST.format(path=self.path, host=self.host).encode())
            status, _ = _read_response(s)
        if status != 200:
            raise RuntimeError("status %d" % status)


class SessionPoller(_Poller):
    """A script's poller: one requests.Session (urllib3's pool keeps the connection alive), a GET
    every interval."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.session = None

    def poll_once(self):
        import requests

        if self.session is None:
            self.session = requests.Session()
        r = self.session.get("http://%s:%d%s" % (self.host, self.port, self.path), timeout=30)
        r.content  # noqa: B018 - the whole answer
        if r.status_code != 200:
            raise RuntimeError("status %d" % r.status_code)

    def finish(self):
        if self.session is not None:
            self.session.close()


class AiohttpPoller(_Poller):
    """Home Assistant's REST integration: one shared aiohttp session (its connector keeps an idle
    connection keepalive_timeout seconds, 15 by default), a GET every interval (30 s default)."""

    def __init__(self, *a, keepalive_s=15.0, source_port=None, **kw):
        super().__init__(*a, **kw)
        self.keepalive_s = keepalive_s
        self.source_port = source_port

    def run(self):
        asyncio.run(self._run())

    async def _run(self):
        import aiohttp

        local = ("0.0.0.0", self.source_port) if self.source_port else None
        conn = aiohttp.TCPConnector(keepalive_timeout=self.keepalive_s, local_addr=local)
        url = "http://%s:%d%s" % (self.host, self.port, self.path)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=10)) as session:
            for i in range(self.count):
                due = self._t0 + i * self.interval_s
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                t = time.monotonic()
                try:
                    async with session.get(url) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError("status %d" % r.status)
                    self.polls.append(Poll(t - self._t0, time.monotonic() - t, True))
                except Exception as e:
                    self.polls.append(Poll(t - self._t0, time.monotonic() - t, False, repr(e)))


def time_wait_to(ns_name, ips):
    """TIME_WAIT sockets in namespace ns_name whose peer is one of ips (the host side)."""
    out = subprocess.run(["ip", "netns", "exec", ns_name, "ss", "-Htan", "state", "time-wait"],
                         capture_output=True, text=True, timeout=10)
    peers = set(ips)
    n = 0
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[-1].rpartition(":")[0] in peers:
            n += 1
    return n
