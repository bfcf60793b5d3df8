"""The contestants of `make bench`: this server beside the bare asyncio bound and the MicroPython
web servers that install from PyPI and run on the unix port, all serving the same minimal app on
the same interpreter and heap: GET / -> `hello` (text/plain), GET /big -> one 100 KB file from
disk (through the framework's static-file helper where it has one).

- `bound`: a bare asyncio keep-alive server writing canned answers (apps_bench/bound.py), the
  ceiling for any server on this interpreter.
- `nostall`: this firmware on the sim board, its app.py shadowed by apps_bench/nostall/app.py.
- the PyPI peers (PEERS): each pinned, installed by install() into a folder of its own under
  .cache/contestants/ (never committed), run by its script in apps_bench/ with the smallest shims
  it needs beside it (the notes say which). LEFT_OUT says why the others are not here.

Each runs as a subprocess bound to 127.0.0.1, started and stopped by PID (SIGINT, then SIGKILL):

    install()                                    # once; offline once installed
    with start(PEERS[0], heap="256K") as h:      # h.url, h.pid, h.port, h.stop()
        requests.get(h.url + "/big")

    PYTHONPATH=host_tests python -m harness.contestants [--heap 256K] [--wrk 5] [NAME ...]
"""

import argparse
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from harness import micropython
from harness.loads import wrk
from harness.paths import APPS_BENCH, CACHE, FIRMWARE, SIM_GLUE
from harness.simboard import DEFAULT_HEAP, SimBoard, free_port  # noqa: F401 (free_port: for benchmem)

CACHE_DIR = os.path.join(CACHE, "contestants")
BIG_NAME = "big.bin"
BIG_BYTES = 100 * 1024
HELLO = b"hello"
NOSTALL_APP = os.path.join(APPS_BENCH, "nostall")  # app.py alone: the shims stay off the firmware's path
NOSTALL_SETTINGS = os.path.join(NOSTALL_APP, "settings.json")
STAMP = ".installed"


class Contestant:
    """One server of the bench. packages: the pinned PyPI requirements install() puts in its own
    folder (none for the bound and this server); app: its script in apps_bench/; notes: shims
    and settings it needed, shown in the bench table."""

    def __init__(self, name, version, app=None, packages=(), notes="", sim=False, firmware=None, glue=None):
        self.name = name
        self.version = version
        self.app = app
        self.packages = tuple(packages)
        self.notes = notes
        self.sim = sim  # this server on the sim board: firmware/ (or another tree, with its glue)
        self.firmware = firmware
        self.glue = glue
        self.closes = None  # closes every connection? measured by check()

    def __repr__(self):
        return "<Contestant %s %s>" % (self.name, self.version)

    def folder(self, cache_dir=CACHE_DIR):
        return os.path.join(cache_dir, self.name)

    def installed(self, cache_dir=CACHE_DIR):
        if not self.packages:
            return True
        try:
            with open(os.path.join(self.folder(cache_dir), STAMP)) as f:
                return f.read().split() == list(self.packages)
        except OSError:
            return False

    def command(self, port, heap, cache_dir=CACHE_DIR):
        """(argv, env) running its app script on the unix port: apps_bench/ (script and shims),
        then its installed packages, on MICROPYPATH; the port and the www folder in the env."""
        path = [APPS_BENCH] + ([self.folder(cache_dir)] if self.packages else [])
        env = micropython.env(path)
        env.update(app_env(port, cache_dir))
        return micropython.argv(os.path.join(APPS_BENCH, self.app), heap=heap), env


def _version_of_this():
    with open(os.path.join(FIRMWARE, "nostall", "__init__.py")) as f:
        return re.search(r'VERSION = "([^"]+)"', f.read()).group(1)


BOUND = Contestant("bound", "-", "bound.py", notes="bare asyncio, canned answers, no parsing; honours Connection: close; "
                   "listen backlog 16")
THIS = Contestant("nostall", _version_of_this(), notes="the sim board; for wrk -c16 max_connections 20 (default 6) and "
                  "listen_backlog 16 (default 4), as the bound's backlog: wrk opens its 16 connections at once, and with a "
                  "smaller backlog a run's first requests could wait for a retransmission (200-400 ms), which wrk's "
                  "latency correction made its p99",
                  sim=True)
PEERS = [
    Contestant("microdot", "2.7.0", "microdot_app.py", ["microdot==2.7.0"], notes="Response.send_file for /big"),
    Contestant("chumicro", "0.21.3", "chumicro_app.py",
               ["chumicro-http-server==0.21.3", "chumicro-sockets==0.21.3", "chumicro-timing==0.8.4",
                "chumicro-config==0.7.7", "chumicro-msgpack==0.2.7", "chumicro-runner==0.22.2"],
               notes="streaming response from the file for /big; chumicro-runner's loop"),
    Contestant("phew", "0.0.3", "phew_shims/phew_app.py", ["micropython-phew==0.0.3"],
               notes="serve_file for /big; shims machine.RTC, empty network; logs each request to stdout and a file; "
                     "answers with no Content-Length (hasattr(str, '__len__') is False here): bodies end at close"),
    Contestant("phew-ccrighton", "0.0.5", "phew_shims/phew_app.py", ["micropython-ccrighton-phew==0.0.5"],
               notes="a fork of Phew! (minified); the same script and shims"),
    Contestant("micro-http-server", "0.1.2", "micro_http_server_app.py", ["micro-http-server==0.1.2"],
               notes="no file helper or streaming: /big read whole per request; answers HTTP/1.1 without "
                     "Connection: close, then closes"),
    Contestant("uaioweb", "0.0.3", "uaioweb_app.py", ["micropython-uaioweb==0.0.3"],
               notes="handlers write their own head; /big in 1 KB reads"),
]
# (PyPI name, version, why not) for the servers tried and left out; none of them is patched
LEFT_OUT = [
    ("picoweb", "1.8.2", "pip cannot install it: an sdist made for upip (no setup.py); written for pycopy's uasyncio"),
    ("micropython-picowebrouter", "0.1.3", "pip cannot install it: an sdist made for upip (no setup.py)"),
    ("micropython-uapi", "0.0.1", "pip cannot install it: an sdist made for upip (no setup.py)"),
    ("phew", "1.2.0", "another package of that name (insurance maths); Phew! is micropython-phew, above"),
    ("ampule", "0.9.6", "another package of that name (a matplotlib tool); the CircuitPython Ampule is not on PyPI"),
    ("pwebserver", "25.8a6", "str bodies only (a binary file cannot be sent; static_route is a stub); each handler "
     "then awaits the server's wait_closed, so no connection is ever closed"),
    ("biplane", "1.0.4", "reads with socket.recv_into (CPython, CircuitPython): MicroPython sockets have readinto, "
     "and a wrapper would put shim code on every read"),
    ("uhttp-server", "3.2.0", "binds an (address, port) tuple, which the unix port refuses (the ESP32 port takes "
     "it), and select.poll misreads a socket subclass, so no shim helps; its 2 500-line module does not compile "
     "in 256K"),
    ("adafruit-circuitpython-httpserver", "4.8.2", "CircuitPython's socketpool API: recv_into, tuple bind, "
     "time.monotonic"),
    ("microweb", "0.2.1", "MicroWeb() starts a Wi-Fi access point; run() binds ('0.0.0.0', port): no 127.0.0.1, "
     "and a tuple the unix port refuses"),
    ("pico-server", "0.0.1", "binds ('', 80) inside connect_wifi(): port 80 on every interface, Wi-Fi first"),
    ("micropidash", "2.0.1", "a dashboard that listens on 0.0.0.0, with no host to give"),
    ("gerent", "0.0.2", "malformed answers: an extra CRLF before every body, Content-Type always text/html"),
    ("mhask", "0.0.0", "reads a request until the client closes (reader.read()), so an HTTP client never gets "
     "an answer"),
    ("MicroPythonHttp", "0.2", "not HTTP: a status line, then the file, no header block; files from the cwd only"),
    ("picohttp", "0.0.11", "CPython only (http.client, urllib.parse, mimetypes)"),
    ("dupgee", "0.3", "a CPython project generator: its server is code it copies into a new project"),
    ("espresso-server", "1.0", "CPython only (tornado)"),
]
CONTESTANTS = [BOUND, THIS] + PEERS


def by_name(name):
    for c in CONTESTANTS:
        if c.name == name:
            return c
    raise KeyError("no contestant %r: choose from %s" % (name, ", ".join(c.name for c in CONTESTANTS)))


# ---- install ----

def install(cache_dir=CACHE_DIR, peers=None, out=print):
    """Install each PyPI peer's pinned packages into cache_dir/<name> (pip --target, --no-deps:
    exactly the pinned set). Idempotent: a stamp file names what is there, so a second call
    touches no network. Returns {name: "installed" or why not}, and says each in one line."""
    result = {}
    for c in peers if peers is not None else PEERS:
        if c.installed(cache_dir):
            result[c.name] = "installed"
            out("  %-17s installed (cached)" % c.name)
            continue
        result[c.name] = _pip_install(c, cache_dir)
        out("  %-17s %s" % (c.name, result[c.name]))
    return result


def _pip_install(c, cache_dir):
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=c.name + ".", dir=cache_dir)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
           "--no-compile", "--target", tmp] + list(c.packages)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        return "not installed: %s" % e
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("ERROR")] or p.stderr.splitlines() or ["?"]
        return "not installed: %s" % errors[-1][:160]
    with open(os.path.join(tmp, STAMP), "w") as f:
        f.write("\n".join(c.packages) + "\n")
    shutil.rmtree(c.folder(cache_dir), ignore_errors=True)
    os.rename(tmp, c.folder(cache_dir))  # whole or not at all
    return "installed"


# ---- the file /big serves ----

def big_file(cache_dir=CACHE_DIR):
    """The 100 KB file every contestant serves at /big (made once: every byte value in turn)."""
    www = os.path.join(cache_dir, "www")
    path = os.path.join(www, BIG_NAME)
    data = bytes(range(256)) * (BIG_BYTES // 256)
    if not os.path.exists(path) or os.path.getsize(path) != BIG_BYTES:
        os.makedirs(www, exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)
    return path, data


def app_env(port, cache_dir=CACHE_DIR):
    www = os.path.dirname(big_file(cache_dir)[0])
    # SIM_HOST_DIRS: this server on the sim board sees its flash as "/"; the bench file's folder
    # stays where it is on the host (sim/_simboot.py)
    return {"BENCH_PORT": str(port), "BENCH_WWW": www, "SIM_HOST_DIRS": www}


# ---- start and stop ----

class Handle:
    """A started contestant: url, port, pid; stop() (SIGINT, then SIGKILL); a context manager."""

    def __init__(self, contestant, board):
        self.contestant = contestant
        self.board = board
        self.host = board.host
        self.port = board.port
        self.url = board.url
        self.pid = board.pid

    def alive(self):
        return self.board.proc.poll() is None

    def stop(self):
        self.board.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start(contestant, port=None, heap=DEFAULT_HEAP, cache_dir=CACHE_DIR, log=None, timeout=10.0):
    """Start a contestant on 127.0.0.1:port (a free one if None) with -X heapsize=heap; returns
    a Handle once GET / answers 200. Raises RuntimeError if it is not installed or never gets ready."""
    c = contestant
    if not c.installed(cache_dir):
        raise RuntimeError("%s is not installed: run install() (python -m harness.contestants)" % c.name)
    # a scratch dir of its own: the default log, and the cwd of a peer (files it writes land there)
    run_dir = os.path.join(cache_dir, "run", c.name)
    os.makedirs(run_dir, exist_ok=True)
    if log is None:
        log = os.path.join(run_dir, "server.log")
        open(log, "w").close()
    if c.sim:
        board = SimBoard(port=port, heap=heap, settings=NOSTALL_SETTINGS, extra_path=[NOSTALL_APP], log=log,
                         firmware=c.firmware or FIRMWARE, glue=c.glue or SIM_GLUE)
        board.env.update(app_env(board.port, cache_dir))
    else:
        # the sim board's process handling, with the contestant's own command
        board = SimBoard(port=port, heap=heap, log=log, glue=run_dir)
        board.argv, board.env = c.command(board.port, heap, cache_dir)
    try:
        board.start()
        _wait_ready(Handle(c, board), timeout)
    except Exception as e:
        board.stop()
        raise RuntimeError("%s; %s says: %s" % (e, log, _last_line(log))) from e
    return Handle(c, board)


def _last_line(path):
    try:
        with open(path, "rb") as f:
            lines = f.read()[-2000:].decode(errors="replace").strip().splitlines()
    except OSError:
        return "-"
    return lines[-1] if lines else "nothing"


def _wait_ready(h, timeout):
    # a GET, not a bare connect: some servers keep a socket for good per connection that sends nothing
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not h.alive():
            raise RuntimeError("%s exited with %s before it answered" % (h.contestant.name, h.board.proc.returncode))
        try:
            status, _, _ = get(h, "/")
            if status == 200:
                return
            last = "status %d" % status
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        time.sleep(0.1)
    raise RuntimeError("%s did not answer GET / with 200 within %.0f s (%s)" % (h.contestant.name, timeout, last))


# ---- the check ----

def _exchange(sock, path):
    """Send one HTTP/1.1 GET on sock; (status, headers, body) of its answer."""
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
    r = http.client.HTTPResponse(sock, method="GET")
    r.begin()
    body = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def get(h, path, timeout=5.0):
    """One GET on a connection of its own: (status, headers, body)."""
    with socket.create_connection((h.host, h.port), timeout=timeout) as s:
        return _exchange(s, path)


def closes_every_connection(h, wait=2.0):
    """Measured: two HTTP/1.1 requests on one connection; True unless the second is answered."""
    with socket.create_connection((h.host, h.port), timeout=5.0) as s:
        _exchange(s, "/")
        s.settimeout(wait)
        try:
            status, _, body = _exchange(s, "/")
        except (OSError, http.client.HTTPException):
            return True
        return not (status == 200 and body == HELLO)


def check(h, cache_dir=CACHE_DIR):
    """GET / -> 200 hello, GET /big -> the 100 KB file, and keep-alive measured (also kept in
    h.contestant.closes). Returns (problems: a list of strings, closes every connection: bool)."""
    problems = []
    status, headers, body = get(h, "/")
    if status != 200 or body != HELLO:
        problems.append("GET / -> %d %r" % (status, body[:40]))
    elif not headers.get("content-type", "").startswith("text/plain"):
        problems.append("GET / content-type %r" % headers.get("content-type"))
    status, _, body = get(h, "/big")
    if status != 200 or body != big_file(cache_dir)[1]:
        problems.append("GET /big -> %d, %d bytes%s" % (status, len(body), "" if len(body) != BIG_BYTES else ", not the file"))
    h.contestant.closes = closes_every_connection(h)
    return problems, h.contestant.closes


def main():
    ap = argparse.ArgumentParser(description="Install, start and check each contestant of `make bench`.")
    ap.add_argument("names", nargs="*", help="contestants to check (default: all)")
    ap.add_argument("--heap", default=DEFAULT_HEAP, help="micropython -X heapsize (default %(default)s)")
    ap.add_argument("--cache", default=CACHE_DIR, help="where the PyPI peers are installed (default %(default)s)")
    ap.add_argument("--wrk", type=int, default=0, metavar="S",
                    help="also one wrk -t1 -c4 run of S seconds on GET / per contestant")
    a = ap.parse_args()
    try:
        chosen = [by_name(n) for n in a.names] if a.names else CONTESTANTS
    except KeyError as e:
        sys.exit("error: %s" % e.args[0])
    print("== install (%s)" % a.cache)
    installed = install(a.cache, [c for c in chosen if c.packages])
    print("== check at heap %s" % a.heap)
    failed = 0
    for c in chosen:
        if installed.get(c.name, "installed") != "installed":
            print("  %-17s %-8s %s" % (c.name, c.version, installed[c.name]))
            failed += 1
            continue
        try:
            with start(c, heap=a.heap, cache_dir=a.cache) as h:
                problems, closes = check(h, a.cache)
                rps = ""
                if a.wrk and not problems:
                    rps = ", wrk -t1 -c4: %.0f req/s" % wrk(h.url + "/", 4, a.wrk)["rps"]
        except Exception as e:
            problems, closes, rps = ["did not run: %s" % e], None, ""
        failed += bool(problems)
        what = "; ".join(problems) if problems else "ok: / and /big, %s%s" % (
            "closes every connection" if closes else "keep-alive", rps)
        print("  %-17s %-8s %s%s" % (c.name, c.version, what, " [%s]" % c.notes if c.notes else ""))
    if not a.names:
        for name, version, why in LEFT_OUT:
            print("  %-17s %-8s left out: %s" % (name, version, why))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
