# A bare asyncio server for the new-connection loads: like the bound (apps_bench/bound.py) it reads
# a request head (in whole reads, where the bound's readline() costs a syscall per byte) and
# writes a canned answer without parsing, but that answer says
# "Connection: close", so wrk (which reconnects only when the answer says so) really opens a new
# connection per request. The bound answers HTTP/1.1 without it, and wrk then keeps its
# connections alive whatever "-H Connection: close" it sent: its "new connection" figure is a
# keep-alive one.
#
# BARE_CLOSE=client (default): answer, then wait for the client's EOF and close (the client
#   closes first: no TIME_WAIT on the board, as this firmware does), with nothing else per
#   connection: the least any client-closes server can do.
# BARE_CLOSE=server: answer and close at once (the server closes first, as every peer does:
#   TIME_WAIT on the board's side).
# BARE_READ=line: read the head line by line with readline(), as the bound does (on the unix port
#   a read() syscall per byte: 58 for wrk's request); default: whole reads.

import asyncio
import os

from bench_app import HELLO, HOST, PORT

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
    len(HELLO), HELLO.encode())
CLIENT_CLOSES = (os.getenv("BARE_CLOSE") or "client") == "client"
BY_LINE = os.getenv("BARE_READ") == "line"


async def serve(r, w):
    try:
        if await (head_lines(r) if BY_LINE else head_whole(r)):
            w.write(ANSWER)
            await w.drain()
            if CLIENT_CLOSES:
                while await r.read(64):  # until the client's FIN
                    pass
    except OSError:
        pass
    w.close()
    await w.wait_closed()


async def head_whole(r):
    # whole reads, not readline(): the unix port's readline() reads one byte per syscall
    head = b""
    while b"\r\n\r\n" not in head:
        got = await r.read(512)
        if not got:
            return False
        head += got
    return True


async def head_lines(r):
    # as the bound reads it: line by line
    line = await r.readline()
    while line and line != b"\r\n":
        line = await r.readline()
    return bool(line)


async def main():
    await asyncio.start_server(serve, HOST, PORT)
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
