# The bare asyncio bound (host_tests/apps_bench/bound.py, without its /big and bench_app's
# environment) as the QEMU board's main.py, on the firmware's own network bring-up: a keep-alive
# server that reads a head and writes a canned answer. harness/qemu_load.py runs it beside this
# server; harness/qemu_icount.py too, with its instruction probe (qprobe, staged beside) answering
# GET /_icount, and with ONE_READ = True put before this text: the head taken with one read(512)
# instead of readline()s (on the esp32 port one lwIP receive a byte).
import asyncio
import board
from nostall.settings import load

try:
    import qprobe
except ImportError:
    qprobe = None

ONE_READ = globals().get("ONE_READ", False)
HELLO = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"


async def serve(r, w):
    try:
        while True:
            line = await (r.read(512) if ONE_READ else r.readline())
            if not line:
                break
            while not ONE_READ:
                h = await r.readline()
                if not h or h == b"\r\n":
                    break
            if qprobe is not None and line.startswith(b"GET /_icount"):
                body = qprobe.answer().encode()
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            else:
                w.write(HELLO)
            await w.drain()
    except OSError:
        pass
    w.close()
    await w.wait_closed()


async def main():
    await board.Board(load(board.SETTINGS_PATH, board.NEEDS_WIFI)).connect()
    await asyncio.start_server(serve, "0.0.0.0", 80)
    print("bare server up")
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
