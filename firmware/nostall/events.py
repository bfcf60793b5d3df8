# Server-sent events (the WHATWG EventSource protocol): a Channel's messages down one
# long-lived response, for clients that have no WebSocket. The stream runs in its connection's
# task like everything else: it sleeps in a recv() that wakes when the channel publishes, when a
# heartbeat is due (sse_heartbeat_ms of silence; proxies and browsers drop quiet streams), or
# when the client sends or closes. A client slow to read gets write_timeout_ms, then a reset.

# pyright: reportGeneralTypeIssues=false
# (it says a Waiter "is not awaitable": MicroPython awaits anything with __next__, see waiter.py)

from micropython import const

from nostall.framing import CHUNKED, chunk, plan
from nostall.pool import STREAM
from nostall.response import Response

_RETRY_MS = const(3000)  # an EventSource that lost its connection comes back after this
_NO_CACHE = const((("Cache-Control", "no-cache"),))


async def serve_events(conn, req, resp):
    """Send resp.channel's messages on conn until the client goes (then it returns True: the
    client closed)."""
    session = conn.session
    head, mode, _ = plan(req, resp, None, session.server.idle_s)
    chunked = mode == CHUNKED
    await conn.send(head)
    channel = resp.channel
    # a client coming back says what it saw last; a new one gets the newest message
    seen = _int(req.headers.get("last-event-id"), channel.last_id - 1)
    session.opened(STREAM)
    channel.follow(session)
    try:
        await _send(conn, b"retry: %d\n\n" % _RETRY_MS, chunked)
        while True:
            for mid, event, data in channel.since(seen):
                seen = mid
                await _send(conn, event_bytes(mid, event, data), chunked)
            if session.overdue():  # STREAM's deadline: a heartbeat is due
                await _send(conn, b": \n\n", chunked)
            session.drop()  # what a client sends on an event stream is read and dropped
            if await conn.recv() == 0:
                return True
    finally:
        channel.unfollow(session)


async def _send(conn, data, chunked):
    await conn.send(chunk(data) if chunked else data)
    conn.session.opened(STREAM)  # sent: the next heartbeat is due sse_heartbeat_ms from now


def event_bytes(mid, event, data):
    """One event: id, event, one data: line per line of data, a blank line."""
    out = b"id: %d\n" % mid
    if event:
        out += b"event: %s\n" % event.encode()
    for line in (data if isinstance(data, str) else str(data, "utf-8")).split("\n"):
        out += b"data: %s\n" % line.encode()
    return out + b"\n"


def _int(text, default):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


class EventStream(Response):
    """An event stream (text/event-stream) of a Channel's messages, sent as they are published.

    Example::

        @app.get("/events")
        def events(req):
            return EventStream(my_channel)
    """

    protocol = staticmethod(serve_events)

    def __init__(self, channel):
        Response.__init__(self, b"", 200, _NO_CACHE, "text/event-stream; charset=utf-8", stream=())
        self.channel = channel
