"""An event-stream (text/event-stream) client over one raw socket, for the tests of the board's
server-sent events: it parses the stream as the WHATWG EventSource does (fields, multi-line data,
comments, retry, blank-line dispatch), sends Last-Event-ID when told, and, unlike a browser's,
can offer a tiny receive window and stop reading. Every wait is bounded by its timeout.

    with SSEClient(target, "/events", last_event_id=3) as s:
        s.head["content-type"]      # text/event-stream; charset=utf-8
        s.next(timeout=2)           # {"id": "4", "event": None, "data": "..."} / ("comment", "") / ("retry", 3000)
"""

import socket
import time

from harness.target import SockClient, recv_by


class SSEClient(SockClient):
    def __init__(self, target, path, timeout=5.0, last_event_id=None, rcvbuf=None, read_head=True):
        self.timeout = timeout
        s = target.socket(timeout, rcvbuf)
        try:
            head = "GET %s HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n" % path
            if last_event_id is not None:
                head += "Last-Event-ID: %s\r\n" % last_event_id
            s.sendall((head + "\r\n").encode())
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.raw = b""  # bytes received, not yet taken apart
        self.body = b""  # the stream's bytes (chunked coding removed), not yet parsed
        self.chunked = False
        self.chunk_left = 0
        self.ended = None  # "eof" or "reset" once the server ended the connection
        self.status = None
        self.head = {}
        self._event = {}
        self._data = []
        if read_head:
            self.read_head()

    def read_head(self):
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.raw:
            if not self._recv(deadline):
                raise EOFError("the server closed before the response head")
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.head[k.strip().lower()] = v.strip()
        self.chunked = self.head.get("transfer-encoding", "").lower() == "chunked"
        return self.status

    def next(self, timeout=None):
        """The next event (a dict: id, event, data), comment ("comment", text) or ("retry", ms);
        None at the end of the stream; socket.timeout if nothing comes in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            item = self._parse_line()
            if item is not None:
                return item
            if self.ended is not None or not self._recv(deadline):
                return self._parse_line()

    def events(self, n, timeout=None):
        """The next n events (comments and retry skipped)."""
        out = []
        while len(out) < n:
            item = self.next(timeout)
            assert item is not None, "the stream ended after %d events" % len(out)
            if isinstance(item, dict):
                out.append(item)
        return out

    def wait_end(self, timeout=None):
        """Read (and drop) until the server ends the connection: "eof" or "reset"; None if not
        within timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            while self.ended is None:
                self._recv(deadline)
                self.body = b""
        except socket.timeout:
            return None
        return self.ended

    # ---- inside ----

    def _recv(self, deadline):
        data = recv_by(self.sock, deadline)
        if not data:
            self.ended = "eof" if data == b"" else "reset"
            return False
        self.raw += data
        if self.status is not None:
            self._dechunk()
        return True

    def _dechunk(self):
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return
        while self.raw:
            if self.chunk_left == 0:
                if b"\r\n" not in self.raw:
                    return
                size, self.raw = self.raw.split(b"\r\n", 1)
                self.chunk_left = int(size.split(b";")[0], 16) + 2  # the data and its CRLF
                if self.chunk_left == 2:  # the last chunk: the stream is over
                    self.ended = "eof"
            take = self.raw[:self.chunk_left]
            self.raw = self.raw[len(take):]
            self.chunk_left -= len(take)
            self.body += take[:max(0, len(take) - max(0, 2 - self.chunk_left))]

    def _parse_line(self):
        # one line of the stream, as the EventSource's parser takes it; an item or None
        while b"\n" in self.body:
            line, self.body = self.body.split(b"\n", 1)
            line = line.decode().rstrip("\r")
            if not line:  # a blank line dispatches the event
                if not self._data and not self._event:
                    continue
                ev = {"id": self._event.get("id"), "event": self._event.get("event"), "data": "\n".join(self._data)}
                self._event = {}
                self._data = []
                return ev
            if line.startswith(":"):
                return ("comment", line[1:].strip())
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                self._data.append(value)
            elif field == "retry":
                return ("retry", int(value))
            elif field in ("id", "event"):
                self._event[field] = value
        return None
