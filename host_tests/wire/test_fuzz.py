"""Fuzzing. Property tests (hypothesis) of the sans-IO core on CPython: any bytes, split any way
into reads, give only requests or an HTTPError with a status the server answers; never a buffer
overrun or a stuck reader; the same outcome however the stream is split; generated valid
requests (pipelined, with Content-Length or chunked bodies) parse back to exactly what was
generated; the app never answers a parsed request with a 5xx. Then a bounded slice of the socket
fuzzer (harness/fuzz_socket.py; `make fuzz` runs the full 100 000 cases) against a dedicated sim
board."""

import asyncio
import os
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import fuzz_socket, proto_table
from harness.paths import FIRMWARE
from nostall.config import Config
from nostall.framing import closing, plan, reason_phrase
from nostall.proto import METHODS, HTTPError, RequestReader
from nostall.response import error_response

pytestmark = pytest.mark.abuse

SMALL = proto_table.CFG  # small limits: random input reaches every one of them
ROOMY = Config(
    recv_buffer_bytes=512, max_header_bytes=2048, max_request_line_bytes=512, max_header_count=40, max_body_bytes=2048
)
# the statuses the reader may refuse with, each one the server answers and counts (server._refuse)
READER_STATUSES = {400, 413, 414, 431, 501, 505}
# Example counts sized for CI (about 25 s in all). FUZZ_SCALE=20 runs twenty times as many, with a
# fresh random seed each run instead of the fixed CI sequence.
SCALE = float(os.environ.get("FUZZ_SCALE") or 1)


def fuzz(n):
    return settings(max_examples=int(n * SCALE), deadline=None, suppress_health_check=list(HealthCheck),
                    derandomize=SCALE == 1, database=None)


_examples = {}  # test name -> examples run, for the figure


def _count(name):
    _examples[name] = _examples.get(name, 0) + 1


# ---- feeding the reader the way the server does ----


def _check_reader(r, cfg):
    assert 0 <= r.start <= r.end <= len(r.buf) in (cfg.recv_buffer_bytes, cfg.max_header_bytes)
    if r.body is not None:
        assert len(r.body) <= cfg.max_body_bytes


def _check_request(req, cfg):
    assert len(req.body) <= cfg.max_body_bytes
    assert len(req.headers) <= cfg.max_header_count
    assert len(req.method) + len(req.target) + len(req.version) + 2 <= cfg.max_request_line_bytes
    assert req.method in METHODS and req.version in ("HTTP/1.0", "HTTP/1.1")
    assert req.target.startswith("/") or req.target == "*"


def parse(data, sizes, cfg=SMALL):
    """Outcomes of data fed in pieces of the given sizes (cycled; [] = whole): requests as tuples,
    then ("error", status), ("incomplete",) or ("stuck",) (a full buffer and no verdict: a bug)."""
    r = RequestReader(cfg)
    out = []
    pos = k = 0
    piece = b""
    try:
        while True:
            req = r.next()
            _check_reader(r, cfg)
            if req is not None:
                _check_request(req, cfg)
                out.append(("req", req.method, req.target, req.version, req.body, req.keep_alive, req.headers))
                continue
            if not piece:
                if pos >= len(data):
                    break
                n = sizes[k % len(sizes)] if sizes else len(data)
                k += 1
                piece = data[pos : pos + n]
                pos += len(piece)
            n = r.feed(piece)
            _check_reader(r, cfg)
            if n == 0:
                out.append(("stuck",))
                return out
            piece = piece[n:]
    except HTTPError as e:
        assert e.status in READER_STATUSES, e.status
        # the server answers it: a well-formed response whose status counts as 4xx or 5xx
        head = closing(error_response(e.status, e.reason))
        assert head.startswith(b"HTTP/1.1 %d %s\r\n" % (e.status, reason_phrase(e.status).encode()))
        with pytest.raises(HTTPError):
            r.next()  # after an error nothing more is parsed
        out.append(("error", e.status))
        return out
    if r.pending():
        out.append(("incomplete",))
    return out


# ---- strategies ----

ATOMS = [
    b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"BREW", b" ", b"/", b"/api/led", b"*", b"http://h/x",
    b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.9", b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"Host: x",
    b"Content-Length: ", b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked",
    b"Expect: 100-continue", b"Connection: close", b"0", b"5", b"a", b"ff", b"fffffffff", b"-1", b"007",
    b";ext=1", b":", b": ", b"\t", b"\x00", b"\x7f", b"\xff", b"\xc3\xa9", b"\xd9\xa3", b"%2e%2e", b"x" * 60,
    b"y" * 130, b"z" * 400,
]
noise = st.one_of(
    st.binary(max_size=700),
    st.lists(st.sampled_from(ATOMS), max_size=80).map(b"".join),
    st.lists(st.one_of(st.sampled_from(ATOMS), st.binary(max_size=8)), max_size=60).map(b"".join),
)
splits = st.lists(st.integers(1, 300), min_size=1, max_size=12)


@fuzz(3000)
@given(data=noise, sizes=splits)
def test_any_bytes_any_split_give_requests_or_a_4xx_5xx(data, sizes):
    _count("noise")
    got = parse(data, sizes)
    assert ("stuck",) not in got
    # the same outcome whole, in the given pieces, and byte by byte
    assert got == parse(data, []) == parse(data, [1])


# Valid requests: what is generated is exactly what must come back.
TCHAR = "!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"
PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F)) + "é€"
SPECIAL = {"host", "content-length", "transfer-encoding", "connection", "expect"}

segment = st.one_of(
    st.text(PCHAR, max_size=10), st.sampled_from(["%2e%2e", "%20", "%C3%A9", "..", "."])
)
path = st.lists(segment, max_size=5).map(lambda s: "/" + "/".join(s))
query = st.one_of(st.just(""), st.text(PCHAR + "/?", max_size=20).map(lambda q: "?" + q))
field_name = st.text(TCHAR, min_size=1, max_size=12).filter(lambda n: n.lower() not in SPECIAL)
field_value = st.text(VCHAR + " \t", max_size=20).map(lambda v: v.strip(" \t"))
ows = st.sampled_from(["", " ", "  ", "\t", " \t"])


@st.composite
def request(draw):
    """(bytes, expected outcome) of one valid request."""
    method = draw(st.sampled_from(METHODS))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
    target = draw(path) + draw(query)
    form = draw(st.sampled_from(["origin", "origin", "absolute", "star"]))
    sent = target
    if form == "absolute":
        sent = "http://board.local:80" + target
    elif form == "star" and method == "OPTIONS":
        sent = target = "*"
    fields = []  # (name as sent, value as sent)
    if version == "HTTP/1.1" or draw(st.booleans()):
        fields.append((draw(st.sampled_from(["Host", "host", "HOST"])), draw(st.sampled_from(["x", "board.local:80", ""]))))
    for name, value in draw(st.lists(st.tuples(field_name, field_value), max_size=6)):
        fields.append((name, value))
        if draw(st.booleans()):
            fields.append((name.upper(), draw(field_value)))  # a repeat: combined with ", "
    conn = draw(st.sampled_from([None, "close", "keep-alive", "Keep-Alive, Upgrade"]))
    if conn:
        fields.append(("Connection", conn))
    keep = (version == "HTTP/1.1") if conn is None else (("close" not in conn.lower()) if version == "HTTP/1.1" else "keep-alive" in conn.lower())
    body = draw(st.binary(max_size=300))
    framing = draw(st.sampled_from(["none", "length", "chunked"] if version == "HTTP/1.1" else ["none", "length"]))
    if framing == "none":
        body = b""
    if body and draw(st.booleans()):
        fields.append(("Expect", "100-continue"))
    payload = b""
    if framing == "length":
        cl = draw(st.sampled_from(["%d", "%d", "00%d"])) % len(body)
        fields.append(("Content-Length", cl))
        payload = body
    elif framing == "chunked":
        fields.append(("Transfer-Encoding", draw(st.sampled_from(["chunked", "Chunked", "CHUNKED"]))))
        pos = 0
        for n in draw(st.lists(st.integers(1, 120), max_size=6)):
            piece = body[pos : pos + n]
            if not piece:
                break
            pos += len(piece)
            fmt = draw(st.sampled_from(["%x", "%X", "0%x"]))
            ext = draw(st.sampled_from(["", ";a=b", ";x", ' ;q="1 2"']))
            payload += (fmt % len(piece) + ext + "\r\n").encode() + piece + b"\r\n"
        body = body[:pos]
        payload += b"0\r\n"
        for name, value in draw(st.lists(st.tuples(field_name, field_value), max_size=2)):
            payload += ("%s: %s\r\n" % (name, value)).encode()
        payload += b"\r\n"
    head = "%s %s %s\r\n" % (method, sent, version)
    headers = {}
    for name, value in fields:
        sp = draw(ows), draw(ows)
        head += "%s:%s%s%s\r\n" % (name, sp[0], value, sp[1])
        k = name.lower()
        headers[k] = value if k not in headers or k == "content-length" else headers[k] + ", " + value
    lead = draw(st.sampled_from([b"", b"", b"\r\n", b"\r\n\r\n"]))
    data = lead + head.encode() + b"\r\n" + payload
    return data, ("req", method, target, version, body, keep, headers)


@fuzz(500)
@given(reqs=st.lists(request(), min_size=1, max_size=4), sizes=splits)
def test_generated_requests_parse_back_exactly(reqs, sizes):
    _count("valid")
    data = b"".join(d for d, _ in reqs)
    want = [w for _, w in reqs]
    assert parse(data, sizes, ROOMY) == want
    assert parse(data, [1], ROOMY) == want


@fuzz(400)
@given(reqs=st.lists(request(), min_size=1, max_size=3), cut=st.integers(0, 10**6), sizes=splits)
def test_truncated_stream_is_never_a_request(reqs, cut, sizes):
    """A stream cut short yields the complete requests before the cut and then "incomplete":
    never a shortened body passed off as a request."""
    _count("truncated")
    data = b"".join(d for d, _ in reqs)
    cut %= len(data)
    got = parse(data[:cut], sizes, ROOMY)
    done = [w for (d, w), end in zip(reqs, _ends(reqs)) if end <= cut]
    assert got[: len(done)] == done
    assert got[len(done) :] in ([], [("incomplete",)])


def _ends(reqs):
    end = 0
    for d, _ in reqs:
        end += len(d)
        yield end


# ---- the app never answers 5xx for what the parser lets through ----


_DATA = tempfile.TemporaryDirectory(prefix="nostall-fuzz-data-")  # removed at exit


class _Hardware:
    # what the firmware's app asks of firmware/board.py's Board (which needs MicroPython's modules)
    def __init__(self):
        self.on = False
        self.www_root = os.path.join(FIRMWARE, "www")
        self.data_root = _DATA.name  # what PUT /api/files may write: a folder of the test's

    def has_led(self):
        return True

    def set_led(self, on):
        self.on = bool(on)

    def led(self):
        return self.on

    def temperature_c(self):
        return 30


def _firmware_app():
    import app as firmware_app

    a = firmware_app.make_app(_Hardware())

    @a.route("/items/<int:n>/<name>", methods=("GET", "PUT"))
    def item(req, n, name):
        return {"n": n, "name": name}

    return a


_APP = None
_LOOP = None
ROUTES = ["api/led", "api/led", "api/samples?n=", "api/temperature", "status?gc=", "index.html", "items/7/x", "www/"]
path_chars = st.one_of(
    st.text(max_size=40),
    st.tuples(st.sampled_from(ROUTES), st.text(max_size=6)).map("".join),
    st.sampled_from(ROUTES),
    st.lists(st.sampled_from(["/", "..", ".", "%2e", "%2E%2e", "%2f", "%5c", "\\", "%00", "%ff", "%0d%0a", "%",
                              "%zz", "api", "led", "items", "7", "٣", "²", "index.html", "www", "?", "&", "=",
                              "n=", "n=٣", "n=99999999999999999999", "gc=1"]), max_size=12).map("".join),
)


@fuzz(1000)
@given(
    method=st.sampled_from(METHODS),
    target=path_chars,
    body=st.one_of(st.binary(max_size=40), st.sampled_from([b'{"on": true}', b"on", b"{", b'{"on": 1}', b"\xff",
                                                            b"\xffn", b'["on"]', b"null", b'{"on": "\xff"}'])),
    ctype=st.sampled_from([None, "application/json", "text/plain", "text/plain", "application/json; charset=\xe9"]),
)
def test_app_never_answers_a_parsed_request_with_5xx(method, target, body, ctype):
    global _APP, _LOOP
    _count("app")
    if _APP is None:
        _APP, _LOOP = _firmware_app(), asyncio.new_event_loop()
    target = "/" + target.replace(" ", "").replace("\r", "").replace("\n", "")
    head = "%s %s HTTP/1.1\r\nHost: x\r\n" % (method, target)
    if ctype:
        head += "Content-Type: %s\r\n" % ctype
    head += "Content-Length: %d\r\n\r\n" % len(body)
    r = RequestReader(ROOMY)
    r.feed(head.encode() + body)
    try:
        req = r.next()
    except HTTPError:
        return  # the parser refused it: the 4xx/5xx table above covers that
    assert req is not None
    resp = _LOOP.run_until_complete(_APP.dispatch(req))
    assert resp.status < 500, (target, resp.status, resp.body, req.error)
    if resp.stream is not None:
        for _ in resp.stream:
            pass
    plan(req, resp, 1, 5)  # headers were checked


def test_zz_fuzz_figure(figure):
    """Runs after the property tests in this file: records how many examples they ran."""
    if not _examples:
        pytest.skip("no property test ran in this session")
    n = sum(_examples.values())
    figure(
        "hypothesis fuzz of the parser and app (sans-IO, CPython)",
        "%d examples: %s" % (n, ", ".join("%s %d" % kv for kv in sorted(_examples.items()))),
        "only requests or 400/413/414/431/501/505; same result for every split; valid requests parse back exactly; 0 app 5xx",
        "nothing: no stuck reader, no read past a limit",
    )


# ---- socket fuzz: a bounded slice of `make fuzz` ----

CI_CASES = int(os.environ.get("FUZZ_CI_CASES") or 5000)


def test_socket_fuzz_slice(make_sim, figure):
    # 384K: the sim holds the firmware's bytecode in its heap (about 100 KB on this 64-bit port;
    # a board keeps it in flash), and at 256K twelve connections of 2 KB garbage heads now and then
    # found no 2 KB block free (a connection closed for 'memory'); the subject here is the parser
    t = make_sim(fuzz_socket.FAST_LIMITS, heap="384K")
    t0 = time.monotonic()
    summary = fuzz_socket.run(
        t.host, t.port, cases=CI_CASES, seed=int(os.environ.get("FUZZ_SEED") or 1),
        concurrency=fuzz_socket.DEFAULT_CONCURRENCY, fd_count=t.fd_count, log=t.sim.log, time_limit=50,
        lossy=t.emu is not None,
    )
    print(summary.text())
    assert summary.cases == CI_CASES, "time limit hit after %d cases" % summary.cases
    assert summary.problems == [], summary.problems[:10]
    figure(
        "random/mutated byte streams over sockets",
        "%d cases, %d at once, at %.0f cases/s" % (summary.cases, summary.concurrency, summary.rate),
        "%s; no 500/503 (501/505 are refusals), 0 hangs, %d/%d health checks answered"
        % (summary.status_text(), summary.health_ok, summary.health_checks),
        "nothing: fds %d->%d, open connections %d->%d"
        % (summary.fds_before, summary.fds_after, summary.open_before, summary.open_after),
    )
    assert time.monotonic() - t0 < 60
