"""Start the emulator's upstream servers (host_tests/apps_emu: naive_server.py,
polite_server.py, held_server.py) on 127.0.0.1, on the MicroPython unix port.

    with upstream_server("naive_server.py") as port:
        ...
"""
import contextlib
import os
import socket
import subprocess
import tempfile
import time

from harness import micropython
from harness.paths import APPS_EMU


def free_port():
    # Tiny race (port could be taken before the server binds); the server
    # then fails to start and we say so.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def upstream_server(script, port=None, ready_timeout_s=10.0, args=()):
    """script PORT [args...] on the MicroPython unix port, until it prints "listening"."""
    port = port or free_port()
    # Output goes to a file, not a pipe: a chatty server must never block on
    # a pipe nobody drains.
    log = tempfile.TemporaryFile()
    proc = micropython.popen(os.path.join(APPS_EMU, script), [port] + list(args),
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            log.seek(0)
            out = log.read()
            if b"listening" in out:
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("%s did not start on port %d: %r" % (script, port, out[-500:]))
            time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
