# The negative control on the QEMU board: the typical forum/doc MicroPython web server (as
# host_tests/apps_emu/naive_server.py), which answers "Connection: close" and closes FIRST, so
# the board's lwIP keeps a TIME_WAIT pcb for 2*TCP_MSL per connection. The network comes up
# through the firmware's own board glue (settings.json's "lan" section).
import socket

import asyncio
import board
from nostall.settings import load

hw = board.Board(load(board.SETTINGS_PATH, board.NEEDS_WIFI))
ip = asyncio.run(hw.connect())
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(socket.getaddrinfo("0.0.0.0", 80)[0][-1])
s.listen(5)
print("naive server on", ip)
while True:
    cl, _ = s.accept()
    try:
        f = cl.makefile("rwb", 0)
        while True:
            line = f.readline()
            if not line or line == b"\r\n":
                break
        cl.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello\n")
    except OSError:
        pass
    cl.close()
