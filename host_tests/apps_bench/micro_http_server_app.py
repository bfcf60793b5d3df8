# micro-http-server (PyPI) serving the bench app, wired as its README shows: handle_client with a
# GET handler, then finalise_client. A handler returns the whole body, so /big reads the file
# into memory for each request: the framework has no file or streaming helper.

import asyncio

from bench_app import BIG, HELLO, HOST, PORT
from micro_http_server import userver


def get(url, data):
    if url == "/big":
        with open(BIG, "rb") as f:
            return 200, f.read(), {"content_type": "application/octet-stream"}
    if url == "/":
        return 200, HELLO, {"content_type": "text/plain"}
    return 404, "not found", {}


async def client(reader, writer):
    await userver.handle_client(reader, writer, {"get": get})
    await userver.finalise_client(reader, writer)


async def main():
    await asyncio.start_server(client, HOST, PORT)
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
