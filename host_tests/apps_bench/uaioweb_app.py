# uaioweb (PyPI micropython-uaioweb) serving the bench app: a handler writes its own status line
# and headers; /big is read and written in pieces (the framework has no file helper).

import asyncio

from bench_app import BIG, HELLO, HOST, PORT, pieces, size
from uaioweb import App

app = App(host=HOST, port=PORT)


@app.route("/")
async def hello(r, w):
    w.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
        len(HELLO), HELLO.encode()))
    await w.drain()


@app.route("/big")
async def big(r, w):
    w.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size(BIG))
    for piece in pieces(BIG):
        w.write(piece)
        await w.drain()


async def main():
    await app.serve()
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
