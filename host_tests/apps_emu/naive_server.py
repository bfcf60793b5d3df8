# Negative control: the typical forum/doc MicroPython web server.
# It reads a request, answers "Connection: close" and closes FIRST, so the
# board's lwIP keeps a TIME_WAIT pcb for 2*TCP_MSL per connection. A client
# that reuses its source port then stalls (see shared facts, "The stall").
# Runs on the MicroPython unix port (or CPython):  micropython naive_server.py PORT
# (and on the QEMU board: host_tests/apps_qemu/naive_main.py calls serve())
import socket
import sys


def serve(host, port):
    addr = socket.getaddrinfo(host, port)[0][-1]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    s.listen(5)
    print("listening on", port)
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


if __name__ == "__main__":
    serve("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8080)
