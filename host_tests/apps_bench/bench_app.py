# What every contestant's app script shares (MicroPython, unix port): the port to listen on and
# the 100 KB file /big serves, both from the environment the harness sets
# (harness/contestants.py), and the answer to GET /.

import os

HOST = "127.0.0.1"
PORT = int(os.getenv("BENCH_PORT") or "8080")
WWW = os.getenv("BENCH_WWW") or "."
BIG = WWW + "/big.bin"
HELLO = "hello"
PIECE = 1024  # bytes per read, where a framework has no file helper of its own


def pieces(path):
    # the file in PIECE-sized reads, for frameworks that stream a generator
    with open(path, "rb") as f:
        while True:
            b = f.read(PIECE)
            if not b:
                return
            yield b


def size(path):
    return os.stat(path)[6]
