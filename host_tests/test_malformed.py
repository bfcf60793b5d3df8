"""Malformed input over the wire: a hand-written corpus of nasty requests, each sent on its own
connection to the board. Each gets its exact status and the connection handling HTTP requires;
no 5xx, no hang (every read has a timeout); after each, a good request on a new connection is
answered; at the end the server is alive with its connections and fds back to the baseline.
Requests cut short (truncated heads and bodies) get no answer at all: the server's header/body
timeout ends them (a dedicated sim with short timeouts keeps that fast).

Pure-parser cases live in proto_cases.py (also run on MicroPython); this file is about what the
server does with the connection."""

import socket
import time

import pytest

from conftest import wait_for

pytestmark = pytest.mark.abuse

# Connection handling after the answer:
CLOSE = "close"  # the parser refused it: "Connection: close", then the server waits for our EOF
KEEP = "keep"  # answered by the app: the connection stays open and answers the next request
DRAIN = "drain"  # refused while we keep sending: the server drops linger_drain_bytes, then closes

H = b"Host: t\r\n"


def post(extra, body=b"", path=b"/api/led", version=b"HTTP/1.1"):
    return b"POST " + path + b" " + version + b"\r\n" + H + extra + b"\r\n" + body


def get(target, extra=b"", version=b"HTTP/1.1", method=b"GET"):
    return method + b" " + target + b" " + version + b"\r\n" + H + extra + b"\r\n"


CHUNKED = b"Transfer-Encoding: chunked\r\n"

# name, raw bytes, expected status (a list: pipelined responses in order), handling
CORPUS = [
    # line endings, NUL and control bytes
    ("bare LF line endings", b"GET /api/led HTTP/1.1\nHost: t\n\n", 400, CLOSE),
    ("bare LF after the request line", b"GET /api/led HTTP/1.1\nHost: t\r\n\r\n", 400, CLOSE),
    ("bare LF inside the head", get(b"/api/led", b"A: b\nC: d\r\n"), 400, CLOSE),
    ("bare CR inside a value", get(b"/api/led", b"A: b\rSet-Cookie: x=1\r\n"), 400, CLOSE),
    ("NUL before the request", b"\x00" + get(b"/api/led"), 400, CLOSE),
    ("NUL in the target", get(b"/api/led\x00.html"), 400, CLOSE),
    ("NUL in a header value", get(b"/api/led", b"X: a\x00b\r\n"), 400, CLOSE),
    ("DEL in a header value", get(b"/api/led", b"X: a\x7fb\r\n"), 400, CLOSE),
    ("invalid UTF-8 in a header value", get(b"/api/led", b"X: \xff\xfe\r\n"), 400, CLOSE),
    ("empty lines before a request are ignored", b"\r\n\r\n" + get(b"/api/led"), 200, KEEP),
    # sizes and counts
    ("huge header line (100 KB)", get(b"/", b"X: " + b"a" * 100000 + b"\r\n"), 431, DRAIN),
    ("10 000 header fields", get(b"/", b"A: b\r\n" * 10000), 431, DRAIN),
    ("33 header fields (cap 32)", get(b"/", b"A: b\r\n" * 32), 431, CLOSE),
    ("head of 2049 bytes (cap 2048)", get(b"/", b"X: " + b"a" * 2017 + b"\r\n"), 431, CLOSE),
    ("head of 2048 bytes is fine", get(b"/api/led", b"X: " + b"a" * 2009 + b"\r\n"), 200, KEEP),
    ("request line of 1025 bytes (cap 1024)", get(b"/api/led?" + b"a" * 1003), 414, CLOSE),
    ("request line of 1024 bytes is fine", get(b"/api/led?" + b"a" * 1002), 200, KEEP),
    ("target of 100 KB", get(b"/" + b"a" * 100000), 414, DRAIN),
    ("body over max_body_bytes", post(b"Content-Length: 16385\r\n"), 413, CLOSE),
    # Content-Length
    ("negative Content-Length", post(b"Content-Length: -2\r\n", b"on"), 400, CLOSE),
    ("overflowing Content-Length", post(b"Content-Length: 99999999999999999999999\r\n", b"on"), 413, CLOSE),
    ("Content-Length 2^64+2", post(b"Content-Length: 18446744073709551618\r\n", b"on"), 413, CLOSE),
    ("signed Content-Length", post(b"Content-Length: +2\r\n", b"on"), 400, CLOSE),
    ("hex Content-Length", post(b"Content-Length: 0x2\r\n", b"on"), 400, CLOSE),
    ("empty Content-Length", post(b"Content-Length: \r\n", b"on"), 400, CLOSE),
    ("Content-Length as a list", post(b"Content-Length: 2, 2\r\n", b"on"), 400, CLOSE),
    ("two differing Content-Lengths", post(b"Content-Length: 2\r\nContent-Length: 3\r\n", b"on"), 400, CLOSE),
    ("two equal Content-Lengths are one", post(b"Content-Length: 2\r\nContent-Length: 2\r\n", b"on"), 200, KEEP),
    ("Content-Length with leading zeros", post(b"Content-Length: 0002\r\n", b"on"), 200, KEEP),
    # Content-Length with Transfer-Encoding: request smuggling
    ("CL then TE", post(b"Content-Length: 4\r\n" + CHUNKED, b"0\r\n\r\n"), 400, CLOSE),
    ("TE then CL", post(CHUNKED + b"Content-Length: 4\r\n", b"0\r\n\r\n"), 400, CLOSE),
    ("TE: gzip", post(b"Transfer-Encoding: gzip\r\n"), 501, CLOSE),
    ("TE: gzip, chunked", post(b"Transfer-Encoding: gzip, chunked\r\n"), 501, CLOSE),
    ("TE: chunked, chunked", post(b"Transfer-Encoding: chunked, chunked\r\n"), 400, CLOSE),
    ("TE: chunked, gzip", post(b"Transfer-Encoding: chunked, gzip\r\n"), 400, CLOSE),
    ("TE in HTTP/1.0", post(CHUNKED, b"0\r\n\r\n", version=b"HTTP/1.0"), 400, CLOSE),
    # chunked bodies
    ("chunk size not hex", post(CHUNKED, b"zz\r\non\r\n0\r\n\r\n"), 400, CLOSE),
    ("negative chunk size", post(CHUNKED, b"-2\r\non\r\n0\r\n\r\n"), 400, CLOSE),
    ("chunk size of 9 hex digits", post(CHUNKED, b"100000000\r\non\r\n0\r\n\r\n"), 413, CLOSE),
    ("chunk size 0x...", post(CHUNKED, b"0x2\r\non\r\n0\r\n\r\n"), 400, CLOSE),
    ("chunk longer than its size", post(CHUNKED, b"1\r\non\r\n0\r\n\r\n"), 400, CLOSE),
    ("chunk extension of 100 bytes", post(CHUNKED, b"2;" + b"e" * 100 + b"\r\non\r\n0\r\n\r\n"), 400, CLOSE),
    ("chunk line with bare LF", post(CHUNKED, b"2\non\r\n0\r\n\r\n"), 400, CLOSE),
    ("chunked with extension and trailer", post(CHUNKED, b"2;x=y\r\non\r\n0\r\nX-T: 1\r\n\r\n"), 200, KEEP),
    # request line: methods, targets, versions
    ("non-ASCII method", "GÉT /api/led HTTP/1.1\r\nHost: t\r\n\r\n".encode(), 400, CLOSE),
    ("unknown method", get(b"/api/led", method=b"BREW"), 501, CLOSE),
    ("lower-case method", get(b"/api/led", method=b"get"), 501, CLOSE),
    ("two spaces in the request line", b"GET  /api/led HTTP/1.1\r\n" + H + b"\r\n", 400, CLOSE),
    ("no version", b"GET /api/led\r\n" + H + b"\r\n", 400, CLOSE),
    ("HTTP/2.0", get(b"/api/led", version=b"HTTP/2.0"), 505, CLOSE),
    ("HTTP/1.2 is served as 1.1", get(b"/api/led", version=b"HTTP/1.2"), 200, KEEP),
    ("HTTP/1", get(b"/api/led", version=b"HTTP/1"), 400, CLOSE),
    ("absolute-form target", get(b"http://t/api/led"), 200, KEEP),
    ("absolute-form with a query and no path", get(b"http://t?x=1"), 200, KEEP),
    ("OPTIONS *", get(b"*", method=b"OPTIONS"), 204, KEEP),
    ("GET *", get(b"*"), 400, CLOSE),
    ("target without a slash", get(b"api/led"), 400, CLOSE),
    ("missing Host", b"GET /api/led HTTP/1.1\r\n\r\n", 400, CLOSE),
    ("two Hosts", get(b"/api/led", b"Host: u\r\n"), 400, CLOSE),
    ("obs-fold", get(b"/api/led", b"X: a\r\n  b\r\n"), 400, CLOSE),
    ("space before the colon", get(b"/api/led", b"X : a\r\n"), 400, CLOSE),
    ("empty header name", get(b"/api/led", b": a\r\n"), 400, CLOSE),
    ("unsupported Expect", post(b"Expect: magic\r\nContent-Length: 2\r\n", b"on"), 400, CLOSE),
    # paths: traversal and escapes (the app answers; the connection goes on)
    ("..", get(b"/../main.py"), 404, KEEP),
    ("%2e%2e", get(b"/%2e%2e/main.py"), 404, KEEP),
    ("%2E%2E%2f twice", get(b"/%2E%2E%2f%2e%2e%2fetc/passwd"), 404, KEEP),
    ("backslashes", get(b"/..\\..\\main.py"), 400, KEEP),
    ("%5c (backslash)", get(b"/%5c..%5cmain.py"), 400, KEEP),
    ("%00 in the path", get(b"/index.html%00.png"), 400, KEEP),
    ("%ff (not UTF-8) in the path", get(b"/%ff"), 400, KEEP),
    ("bad percent escape", get(b"/%zz"), 400, KEEP),
    # CR/LF meant for reflection into a response
    ("%0d%0a in the path", get(b"/x%0d%0aSet-Cookie:%20a=b"), 404, KEEP),
    ("%0d%0a in a query", get(b"/api/samples?n=1%0d%0aSet-Cookie:%20a=b"), 400, KEEP),
    # bodies the app cannot read: its 400, and the connection goes on
    ("text body that is not UTF-8", post(b"Content-Type: text/plain\r\nContent-Length: 2\r\n", b"\xffn"), 400, KEEP),
    ("JSON body that is not UTF-8", post(b"Content-Type: application/json\r\nContent-Length: 3\r\n", b"{\xff}"), 400, KEEP),
    # pipelining with an error in the middle: the good one is answered first, nothing after
    ("good, bad, good pipelined", get(b"/api/led") + b"BAD\r\n\r\n" + get(b"/api/led"), [200, 400], CLOSE),
]

INJECTED = (b"set-cookie",)  # must never appear among a response's headers
_results = {}  # case name -> "ok" (filled by the parametrized test, read by the summary)


def _send(c, raw):
    try:
        c.send(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server refused and closed while we were still sending: its answer is queued


def _response(c):
    r = c.response()
    head = b"\r\n".join(b"%s: %s" % (k.encode(), v.encode()) for k, v in r.headers.items()).lower()
    for bad in INJECTED:
        assert bad not in head, r
    return r


@pytest.fixture(scope="module")
def baseline(board):
    return {"status": board.status(), "fds": board.fd_count(), "t0": time.monotonic()}


@pytest.mark.parametrize("name,raw,status,handling", CORPUS, ids=[row[0] for row in CORPUS])
def test_malformed_request(board, baseline, name, raw, status, handling):
    want = status if isinstance(status, list) else [status]
    with board.connect(timeout=5.0) as c:
        _send(c, raw)
        try:
            got = [_response(c) for _ in want]
        except (ConnectionResetError, EOFError):
            # Through lwIP (--board=emu) as on a board: the server closes with the rest of our
            # 100 KB unread, so lwIP resets the connection and drops whatever of the answer is
            # not yet acknowledged (MicroPython has no shutdown() for a lingering half-close);
            # the connection still ends at once and the next one is served.
            if not (handling == DRAIN and board.emu):
                raise
            got = None
        if got is not None:
            _check_answer(c, got, want, handling)
    with board.connect() as c:
        assert c.request("GET", "/api/led").status == 200
    _results[name] = "ok"


def _check_answer(c, got, want, handling):
    assert [r.status for r in got] == want, got
    last = got[-1]
    if handling == KEEP:
        assert "connection" not in last.headers, last
        assert c.request("GET", "/api/led").status == 200  # the same connection goes on
    elif handling == CLOSE:
        assert last.headers.get("connection") == "close", last
        # nothing more is answered, and the server does not close first: it waits for our EOF
        assert not c.closed_by_peer(0.2)
    else:  # DRAIN: we keep sending; the server stops dropping bytes and closes, bounded
        assert last.headers.get("connection") == "close", last
        assert c.closed_by_peer(3.0)


def test_zz_malformed_corpus_left_nothing_behind(board, baseline, figure):
    """Runs after the corpus: the server is alive, its connections and fds are back."""
    if len(_results) != len(CORPUS):
        pytest.skip("needs the whole corpus run before it (%d/%d ran)" % (len(_results), len(CORPUS)))
    before = baseline["status"]
    after = wait_for(
        lambda: (lambda s: s if s["connections_open"] <= before["connections_open"] else None)(board.status()), 3
    )
    assert after, "open connections did not return to %d" % before["connections_open"]
    assert after["status_5xx"] - before["status_5xx"] == len([r for r in CORPUS if _max(r[2]) >= 500])
    assert after["handler_errors"] == before["handler_errors"]
    fds = "n/a (not a sim)"
    if baseline["fds"] is not None:
        assert wait_for(lambda: board.fd_count() <= baseline["fds"], 3), (baseline["fds"], board.fd_count())
        fds = "fds %d->%d" % (baseline["fds"], board.fd_count())
    statuses = sorted({s for r in CORPUS for s in (r[2] if isinstance(r[2], list) else [r[2]])})
    figure(
        "malformed requests (hand-written corpus)",
        "%d cases, one connection each, %.1f s" % (len(CORPUS), time.monotonic() - baseline["t0"]),
        "all got their exact status (%s) and connection handling; 0 hangs; every follow-up request answered"
        % "/".join(str(s) for s in statuses),
        "nothing: %s, open connections %d->%d" % (fds, before["connections_open"], after["connections_open"]),
    )


def _max(status):
    return max(status) if isinstance(status, list) else status


# ---- requests cut short: no answer, the server's timeout ends them ----

SHORT = {"header_timeout_ms": 400, "body_timeout_ms": 400, "linger_timeout_ms": 400, "idle_timeout_ms": 3000,
         "tick_ms": 20}

# name, raw bytes, what the client does after sending ("hold": nothing; "eof": half-close),
# the status answered first (or None), the close reason /status must count
TRUNCATED = [
    ("head cut short", b"GET /api/led HTTP/1.1\r\nHo", "hold", None, "header_timeout"),
    ("request line cut short", b"GET /api/l", "hold", None, "header_timeout"),
    ("body cut short", post(b"Content-Length: 12\r\n", b'{"on"'), "hold", None, "body_timeout"),
    ("chunk cut short", post(CHUNKED, b"5\r\nab"), "hold", None, "body_timeout"),
    ("last chunk without its final CRLF", post(CHUNKED, b"2\r\non\r\n0\r\n"), "hold", None, "body_timeout"),
    ("Expect: 100-continue, body never sent", post(b"Expect: 100-continue\r\nContent-Length: 2\r\n"), "hold", 100,
     "body_timeout"),
    ("body cut short, then EOF", post(b"Content-Length: 12\r\n", b'{"on"'), "eof", None, None),
    ("chunk cut short, then EOF", post(CHUNKED, b"5\r\nab"), "eof", None, None),
    ("400, then the client never closes", b"GET / HTTP/1.1\nHost: t\n\n", "hold", 400, "linger_timeout"),
]


def test_truncated_requests_get_no_answer_and_time_out(make_sim, figure):
    t = make_sim(SHORT)
    base_fds = t.fd_count()
    before = t.status()
    waited = []
    for name, raw, then, first, reason in TRUNCATED:
        s0 = t.status()
        with t.connect(timeout=3.0) as c:
            c.send(raw)
            if then == "eof":
                c.sock.shutdown(socket.SHUT_WR)
            t0 = time.monotonic()
            if first is not None:
                r = c.response()
                assert r.status == first, (name, r)
            # the server never answers a partial request as if it were whole: the next thing we
            # see is its close (EOF or reset), within its own timeout plus the ticker's step
            c.sock.settimeout(2.0)
            try:
                rest = c.sock.recv(4096)
            except ConnectionResetError:
                rest = b""
            waited.append(time.monotonic() - t0)
            assert rest == b"" and c.buf == b"", (name, rest, c.buf)
            assert waited[-1] < 1.5, (name, waited[-1])
        s1 = wait_for(lambda: (lambda s: s if s["connections_open"] == 1 else None)(t.status()), 3)
        assert s1, name
        if reason is None:
            assert s1["closes_by_client"] > s0["closes_by_client"], name
            assert s1["closes_by_server_total"] == s0["closes_by_server_total"], name
        else:
            got = s1["closes_by_server"].get(reason, 0) - s0["closes_by_server"].get(reason, 0)
            assert got == 1, (name, reason, s1["closes_by_server"])
        with t.connect() as c:
            assert c.request("GET", "/api/led").status == 200
    after = t.status()
    assert after["status_5xx"] == before["status_5xx"]
    assert wait_for(lambda: t.fd_count() <= base_fds, 3), (base_fds, t.fd_count())
    figure(
        "requests cut short (truncated heads, bodies, chunks; Expect with no body)",
        "%d cases, header/body timeouts %d ms" % (len(TRUNCATED), SHORT["body_timeout_ms"]),
        "none answered as complete; each closed at its timeout (max %.2f s) or at the client's EOF, and counted"
        % max(waited),
        "nothing: fds %d->%d" % (base_fds, t.fd_count()),
    )
