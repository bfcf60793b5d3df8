# The bare asyncio bound: a keep-alive server that reads a request head and writes a canned
# answer, with no parsing beyond telling /big from the rest. No real server on this interpreter
# can do less work per request, so its figures are the ceiling for every contestant.

import asyncio

from bench_app import BIG, HELLO, HOST, PIECE, PORT, size

HELLO_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
    len(HELLO), HELLO.encode())
BIG_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size(BIG)


HELLO_CLOSE = HELLO_ANSWER.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)


async def serve(r, w):
    buf = bytearray(PIECE)
    mv = memoryview(buf)
    try:
        while True:
            line = await r.readline()
            if not line:
                break
            close = False
            while True:  # the rest of the head: only "Connection: close" is looked for
                h = await r.readline()
                if not h or h == b"\r\n":
                    break
                if h.lower() == b"connection: close\r\n":
                    close = True
            if close:  # wrk reconnects only when the answer says so; the client closes first
                w.write(HELLO_CLOSE)
                await w.drain()
                while await r.read(64):
                    pass
                break
            if line.startswith(b"GET /big "):
                w.write(BIG_HEAD)
                with open(BIG, "rb") as f:
                    while True:
                        n = f.readinto(buf)
                        if not n:
                            break
                        w.write(mv[:n])
                        await w.drain()
            else:
                w.write(HELLO_ANSWER)
                await w.drain()
    except OSError:
        pass
    w.close()
    await w.wait_closed()


async def main():
    # backlog 16, as this server's bench settings: wrk opens its 16 connections at once, and a
    # listen queue they overflow costs a few first requests a retransmission (200-400 ms), which
    # wrk's latency correction turns into the run's p99
    await asyncio.start_server(serve, HOST, PORT, backlog=16)
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
