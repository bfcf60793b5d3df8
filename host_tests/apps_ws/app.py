# The WebSocket and event-stream test app (host_tests/wire/test_websocket.py, test_events.py,
# abuse/test_ws_abuse.py): the real app's routes plus a channel the tests publish into, a
# WebSocket the server closes, and one that pushes without reading. Unix port only.

import asyncio

from nostall.channel import Channel
from nostall.web import Response

from real_app import make_real_app as _real_app

# kept: the last 4 messages (at most 4 KB): what a client coming back with Last-Event-ID gets
NEWS = Channel(ring=4, ring_bytes=4096)
_PUSH = b"p" * 4096


def make_app(hw):
    app = _real_app(hw)

    app.events("/events/news", NEWS)

    @app.route("/news", methods=("POST",))
    def publish(req):
        # the body is the message's data; ?event= its type
        return {"id": NEWS.publish(req.text, req.args.get("event"))}

    @app.route("/news/flood", methods=("POST",))
    def flood(req):
        # ?n= messages of ?bytes= each, one per ms, from a task of their own
        n = int(req.args.get("n", "1000"))
        size = int(req.args.get("bytes", "2000"))
        asyncio.create_task(_flood(n, size))
        return Response(b"", 202)

    @app.websocket("/ws/close")
    async def close_after_one(req, ws):
        # the server ends it: one message in, then close(?code=, ?reason=)
        await ws.receive()
        await ws.close(int(req.args.get("code", "1000")), req.args.get("reason", ""))

    @app.websocket("/ws/push")
    async def push(req, ws):
        # a stream the client never has to ask for: ?bytes= per message (at most 4096), as fast
        # as it takes them; one buffer for every client, as an app that pushes would keep it
        data = memoryview(_PUSH)[: int(req.args.get("bytes", "4096"))]
        while True:
            await ws.send(data)

    return app


async def _flood(n, size):
    data = "f" * size
    for _ in range(n):
        NEWS.publish(data)
        await asyncio.sleep_ms(1)
