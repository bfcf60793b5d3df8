"""The client side of a board under test: `Target` (where requests go: the sim board, the sim
behind the lwIP emulator, or a real board), `RawConn` (raw HTTP/1.1 over one connection),
`get_status` (the one /status client: Target.status, the soak, the fuzzer and bench all use it),
`recv_by` (one deadline-bounded recv), `wait_for` (bounded polling) and `server_time_wait`
(closes a local server made first)."""

import contextlib
import socket
import subprocess
import time

import requests

from harness.emu import netns


def get_status(url, gc=False, timeout=5.0, retry_s=0.0):
    """GET url/status (gc: ?gc=1, the board collects first) -> its JSON as a dict.

    retry_s > 0: a browser's patience, for a board under a flood that may refuse or 503 anyone:
    on any failure try again every 0.2 s until retry_s have passed, then raise the last error."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            r = requests.get(url + "/status" + ("?gc=1" if gc else ""), timeout=timeout)
            r.raise_for_status()
            return r.json()
        except Exception:
            if retry_s <= 0 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def recv_by(sock, deadline, restore=None):
    """One recv() of up to 64 KB that waits until deadline (time.monotonic()) at the most: the
    bytes; b"" at the server's EOF; None when the server reset the connection. Nothing in time
    raises socket.timeout. restore: the socket's timeout afterwards (else it keeps the wait's)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("nothing from the server in time")
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return None
    finally:
        if restore is not None:
            sock.settimeout(restore)


def parse_metrics(text):
    """A Prometheus text page as {family: {labels: value}} (labels "" or '{k="v",...}')."""
    out = {}
    for line in (text.decode() if isinstance(text, bytes) else text).splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        brace = series.find("{")
        name, labels = (series, "") if brace < 0 else (series[:brace], series[brace:])
        out.setdefault(name, {})[labels] = float(value)
    return out


def wait_for(pred, timeout=3.0, step=0.05):
    """Poll pred() until it is true or the timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def update_info(t, until=None, timeout=20.0, why=""):
    """GET /api/update from the board t (a Target), waiting through its resets until it answers and
    until(answer) holds; AssertionError after timeout (why: what to add, e.g. the log's name). The
    request itself is what ends a new firmware's trial (its health check)."""
    deadline = time.monotonic() + timeout
    with t.client():
        while True:
            try:
                r = requests.get(t.url + "/api/update", timeout=3)
                if r.status_code == 200 and (until is None or until(r.json())):
                    return r.json()
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "no such answer from %s within %.0f s %s" % (t.url, timeout, why)
            time.sleep(0.2)


def server_time_wait(port):
    """TIME_WAIT sockets whose local port is the server's: each is a close the server made first."""
    try:
        out = subprocess.run(
            ["ss", "-Htan", "state", "time-wait", "( sport = :%d )" % port],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return len([line for line in out.stdout.splitlines() if line.strip()])


class Target:
    """Where the HTTP tests send requests. sim is the SimBoard (None for a real board); emu is the
    lwIP gateway in front of it (--board=emu), and then host:port is lwIP's address. ns_path: the
    network namespace the board is reached from (the QEMU board's, harness/qemu.py)."""

    def __init__(self, host, port, sim=None, emu=None, ns_path=None):
        self.host = host
        self.port = port
        self.sim = sim
        self.emu = emu
        self.ns_path = ns_path
        self.url = "http://%s:%d" % (host, port)

    def time_wait(self):
        """Connections the board's TCP stack holds in TIME_WAIT (closes it made first), or None."""
        if self.emu:
            return self.emu.stats()["time_wait"]
        if self.sim:
            with netns.in_home_ns():
                return server_time_wait(self.sim.port)
        return None

    def client(self):
        """Context manager: the current thread's new sockets reach this target (with --board=emu,
        from the client namespace; tests that use board/make_sim already run there)."""
        if self.emu:
            return self.emu.client()
        return netns.in_netns(self.ns_path) if self.ns_path else contextlib.nullcontext()

    def status(self, gc=False, retry_s=0.0):
        """The board's /status (see get_status)."""
        with self.client():
            return get_status(self.url, gc, retry_s=retry_s)

    def connect(self, timeout=5.0):
        with self.client():
            return RawConn(self.host, self.port, timeout)

    def socket(self, timeout=5.0, rcvbuf=None):
        """A plain TCP socket connected to the board; rcvbuf: its receive buffer, set before
        connect() so that the window it offers follows it (a client slow to read)."""
        with self.client():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.settimeout(timeout)
            s.connect((self.host, self.port))
        except BaseException:
            s.close()
            raise
        return s

    def fd_count(self):
        return self.sim.fd_count() if self.sim else None


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:80])


class SockClient:
    """A test client over one socket (self.sock): close() and `with`."""

    sock: socket.socket

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()  # not self.close(): WSClient's close() sends a close frame


class RawConn(SockClient):
    """One TCP connection speaking raw bytes, reading responses one by one (pipelining-safe)."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head_only=False):
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        assert parts[0] == b"HTTP/1.1", status_line
        status = int(parts[1])
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers[name.decode().lower()] = value.strip().decode()
        if head_only or status in (100, 204, 304):
            return Response(status, headers, b"")
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    assert self._line() == b""
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            return Response(status, headers, body)
        if "content-length" in headers:
            return Response(status, headers, self._exact(int(headers["content-length"])))
        while True:  # delimited by EOF
            try:
                self._fill()
            except EOFError:
                body, self.buf = self.buf, b""
                return Response(status, headers, body)

    def request(self, method="GET", path="/", headers=None, body=b""):
        h = {"Host": "test"}
        if body:
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, path, "".join("%s: %s\r\n" % kv for kv in h.items()))
        self.send(head.encode() + body)
        return self.response(head_only=method == "HEAD")

    def closed_by_peer(self, wait):
        """True if the server closed (EOF) within wait seconds; False if it kept the socket open."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(5.0)
        return data == b""
