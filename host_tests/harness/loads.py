"""The loads of `make bench`, driven by wrk (Debian's package): requests/s, latency percentiles,
bytes/s and errors of one run, on loopback or from inside a network namespace (through the lwIP
emulator, so the board's TCP stack is in the figures).

    r = wrk("http://127.0.0.1:8080/", conns=4, seconds=5)            # {"rps": ..., "p99_ms": ...}
    r = wrk(url, 4, 5, new_connections=True, ns="nsb-123-b")          # Connection: close each time
"""

import re
import subprocess


class Load:
    """One load: path, connections, whether each request comes on a new connection, and the
    header fields wrk adds to its own (Host only)."""

    def __init__(self, key, path, conns, new_connections=False, headers=()):
        self.key = key
        self.path = path
        self.conns = conns
        self.new_connections = new_connections
        self.headers = headers


# what a browser's fetch() sends beside Host (Firefox 128; a 0.4 KB head of 9 fields with Host, as
# apps_bench/phases/phases.py's BROWSER): wrk's own request is a request line and Host only, the
# smallest head a server ever gets
BROWSER_FIELDS = (
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Accept: */*",
    "Accept-Language: en-US,en;q=0.5", "Accept-Encoding: gzip, deflate", "Referer: http://192.168.4.1/",
    "Connection: keep-alive", "Sec-Fetch-Dest: empty", "Sec-Fetch-Mode: cors",
)
KA4 = Load("keep-alive req/s, 4 connections", "/", 4)
KA16 = Load("keep-alive req/s, 16 connections", "/", 16)
KA4_BROWSER = Load("keep-alive req/s, 4 connections, a browser's head", "/", 4, headers=BROWSER_FIELDS)
NEW4 = Load("new connection per request, req/s, 4 connections", "/", 4, True)
BIG4 = Load("100 KB file over keep-alive, MB/s, 4 connections", "/big", 4)
LOOPBACK = (KA4, KA16, KA4_BROWSER, NEW4, BIG4)
EMU_KA4 = Load("through lwIP: keep-alive req/s, 4 connections", "/", 4)
EMU_NEW4 = Load("through lwIP: new connection per request, req/s, 4 connections", "/", 4, True)
EMULATED = (EMU_KA4, EMU_NEW4)

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}


def wrk(url, conns, seconds, new_connections=False, ns=None, headers=()):
    """One wrk -t1 run: {"rps", "p50_ms", "p99_ms", "bytes_per_s", "errors"}; ns: run it inside
    that network namespace (`ip netns exec`); headers: fields added to wrk's request. A run that
    does not end 30 s after its time (the server stopped answering and wrk waits on it) is
    killed: 0 req/s and "hung"."""
    argv = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency"]
    if new_connections:
        argv += ["-H", "Connection: close"]  # wrk closes and reconnects after each answer
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    except subprocess.TimeoutExpired:  # killed: a server that stopped answering, not a bench failure
        return {"rps": 0.0, "p50_ms": None, "p99_ms": None, "bytes_per_s": None, "errors": 0, "hung": True}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError("wrk printed no result: %s" % out.strip()[-300:])
    lat = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    t = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(m.group(1)), "p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
            "bytes_per_s": float(t.group(1)) * _BYTES[t.group(2)] if t else None,
            "errors": errors + (int(non2xx.group(1)) if non2xx else 0)}


def figure(load, result):
    """The number a load contributes to the table: MB/s for the file, else requests/s."""
    if load.path == "/big":
        return result["bytes_per_s"] / 1024 ** 2 if result["bytes_per_s"] else None
    return result["rps"]
