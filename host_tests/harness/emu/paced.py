"""Paced HTTP requests, the way the stall was reproduced upstream.

The maintainers' reproduction is `requests.get(url, timeout=...)` in a loop
with `time.sleep(0.15)`. This does the same with a plain socket so a test can
also pin the source port (SO_REUSEADDR + bind), which makes every request
land on the previous connection's 4-tuple: the worst case for a server that
closes first. The client always closes after reading one response, like
`requests.get` does, so a server that waits for the client never holds
TIME_WAIT.

Call it from inside `Emulator.client()` so the sockets live in the test
namespace:

    with emu.client():
        results = paced_requests(emu.ip, emu.port, count=100, source_port=43210)
    assert not failures(results)
"""
import socket
import time

# Same header set as requests.get(), so the firmware sees an ordinary client.
REQUEST = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: nostall-emu\r\n"
    "Accept-Encoding: identity\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
)
MAX_RESPONSE_BYTES = 1 << 20


class Result:
    __slots__ = ("index", "t_start", "t_end", "ok", "status", "error")

    def __init__(self, index, t_start):
        self.index, self.t_start = index, t_start
        self.t_end, self.ok, self.status, self.error = t_start, False, None, None

    @property
    def latency_s(self):
        return self.t_end - self.t_start

    def __repr__(self):
        what = "ok %s" % self.status if self.ok else "FAIL %s" % self.error
        return "<#%d %s %.3fs>" % (self.index, what, self.latency_s)


def _more(sock, buf, where):
    """buf plus the next bytes from sock; EOF here means the response was cut short."""
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("closed " + where)
    buf += chunk
    if len(buf) > MAX_RESPONSE_BYTES:
        raise ValueError("response too large")
    return buf


def _read_response(sock):
    """Return the status code after reading one whole response."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf = _more(sock, buf, "before the response head")
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip().lower()
    if "content-length" in headers:
        need = int(headers["content-length"])
        while len(body) < need:
            body = _more(sock, body, "inside the body")
    elif "chunked" in headers.get("transfer-encoding", ""):
        while not body.endswith(b"0\r\n\r\n"):
            body = _more(sock, body, "inside a chunked body")
    else:
        while True:  # no length: the server closes to end the body
            try:
                body = _more(sock, body, "")
            except ConnectionError:
                break
    return status


def request_once(host, port, index=0, timeout_s=5.0, source_port=None, path="/"):
    res = Result(index, time.monotonic())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if source_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("", source_port))
        # One deadline for connect + response, so a stall cannot hide in a
        # series of short waits.
        deadline = res.t_start + timeout_s
        sock.settimeout(timeout_s)
        sock.connect((host, port))
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        sock.sendall(REQUEST.format(path=path, host=host).encode())
        res.status = _read_response(sock)
        res.ok = 200 <= res.status < 500
    except (OSError, ValueError, IndexError) as e:
        res.error = "%s: %s" % (type(e).__name__, e)
    finally:
        sock.close()
        res.t_end = time.monotonic()
    return res


def paced_requests(host, port, count, pacing_s=0.15, timeout_s=5.0, source_port=None,
                   path="/", deadline_s=None, stop=None):
    """Run up to `count` requests, sleeping `pacing_s` between them.

    Stops early after `deadline_s` seconds or when stop(results) is true.
    Always bounded: count and deadline cap the traffic.
    """
    results = []
    t0 = time.monotonic()
    for i in range(count):
        if deadline_s is not None and time.monotonic() - t0 > deadline_s:
            break
        results.append(request_once(host, port, i, timeout_s, source_port, path))
        if stop and stop(results):
            break
        time.sleep(pacing_s)
    return results


def failures(results):
    return [r for r in results if not r.ok]


def stalls(results):
    """Lengths (s) of the outages: from the end of a success to the end of
    the next success, wherever at least one failure lies between them."""
    out, last_ok, failed = [], None, False
    for r in results:
        if r.ok:
            if last_ok is not None and failed:
                out.append(r.t_end - last_ok.t_end)
            last_ok, failed = r, False
        else:
            failed = True
    return out


def summary(results):
    lat = sorted(r.latency_s for r in results if r.ok)
    return {
        "requests": len(results),
        "ok": len(lat),
        "failed": len(results) - len(lat),
        "max_latency_s": round(lat[-1], 4) if lat else None,
        "p50_latency_s": round(lat[len(lat) // 2], 4) if lat else None,
        "stalls_s": [round(s, 2) for s in stalls(results)],
    }
