# Well-behaved stand-in for the firmware: answers with Content-Length, keeps
# the connection open (HTTP/1.1 keep-alive) and closes only after the client
# has closed (EOF) or has been idle for IDLE_S. The client therefore closes
# first and the board's lwIP never holds TIME_WAIT.
# Runs on the MicroPython unix port (or CPython):  micropython polite_server.py PORT
import asyncio
import sys

IDLE_S = 30
BODY = b"ok\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


async def handle(reader, writer):
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), IDLE_S)
            if not line:
                break  # the client closed: now it is our turn
            while line and line != b"\r\n":
                line = await asyncio.wait_for(reader.readline(), IDLE_S)
            writer.write(RESPONSE)
            await writer.drain()
    except Exception:
        pass
    writer.close()
    await writer.wait_closed()


async def main(port):
    await asyncio.start_server(handle, "127.0.0.1", port)
    print("listening on", port)
    while True:
        await asyncio.sleep(3600)


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
