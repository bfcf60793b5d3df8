# An upstream that listens and does not accept until told: lets a test fill the board's listen
# backlog on purpose. It listens with BACKLOG and accepts nothing while GO_FILE is absent; once
# it exists, it accepts every connection, greets it with b"hi\n" and keeps it open (the client
# closes first, so lwIP keeps no TIME_WAIT pcb).
# Runs on the MicroPython unix port (or CPython):  micropython held_server.py PORT BACKLOG GO_FILE
import os
import socket
import sys
import time

port, backlog, go_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
s.listen(backlog)
print("listening on", port)

while True:
    try:
        os.stat(go_file)
        break
    except OSError:
        time.sleep(0.02)

held = []  # kept open until the process ends
while True:
    cl, _ = s.accept()
    try:
        cl.send(b"hi\n")
        held.append(cl)
    except OSError:
        cl.close()
