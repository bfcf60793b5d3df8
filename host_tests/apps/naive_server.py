# Negative control for the soak's checks: the typical forum example. It closes every connection
# first (TIME_WAIT on the server), and with --leak it never closes them at all (one fd per
# request). Its /status is honest about both, in the firmware's field names.
# micropython naive_server.py PORT [--leak]

import gc
import json
import socket
import sys

port = int(sys.argv[1])
leak = "--leak" in sys.argv
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
s.listen(5)
kept = []
st = {"requests": 0, "closes": 0}
while True:
    c, _ = s.accept()
    req = c.recv(1024)
    st["requests"] += 1
    if req.startswith(b"GET /status"):
        if b"gc=1" in req:
            gc.collect()
        body = json.dumps({
            "heap_free": gc.mem_free(), "heap_alloc": gc.mem_alloc(), "connections_open": len(kept) + 1,
            "closes_by_client": 0, "closes_by_server": {"after_reply": st["closes"]},
            "closes_by_server_total": st["closes"], "requests": st["requests"],
        }).encode()
    else:
        body = b"<h1>hello</h1>"
    c.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    if leak and not req.startswith(b"GET /status"):
        kept.append(c)
    else:
        c.close()
        st["closes"] += 1
