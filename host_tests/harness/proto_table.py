# The protocol table for firmware/nostall/proto.py: request bytes -> expected outcomes (requests,
# or an error with its status), fed through a reader with the small limits of CFG. Checked by
# host_tests/unit/proto_cases.py (on CPython and on the MicroPython unix port); the socket fuzzer
# (harness.fuzz_socket) mutates its bytes. Plain Python that MicroPython runs too: no f-strings,
# no typing.

from nostall.config import Config

CFG = Config(
    recv_buffer_bytes=512,
    max_request_line_bytes=128,
    max_header_bytes=384,
    max_header_count=8,
    max_body_bytes=64,
)
H = b"Host: x\r\n"
NEXT = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"


def R(method, target, body=b"", ka=True, headers=None):
    return ("req", method, target, body, ka, headers)


def E(status):
    return ("error", status)


def get(target=b"/", extra=b"", version=b"HTTP/1.1"):
    return b"GET " + target + b" " + version + b"\r\n" + H + extra + b"\r\n"


CASES = [
    # name, bytes, expected outcomes
    ("simple get", get(), [R("GET", "/")]),
    ("query kept in target", get(b"/a/b?x=1&y=%20"), [R("GET", "/a/b?x=1&y=%20")]),
    (
        "header names are case-insensitive, values trimmed",
        get(extra=b"X-ThInG: \t hello world \t\r\n"),
        [R("GET", "/", headers={"x-thing": "hello world", "host": "x"})],
    ),
    (
        "repeated fields are combined",
        get(extra=b"Accept: a\r\nAccept: b\r\n"),
        [R("GET", "/", headers={"accept": "a, b"})],
    ),
    ("content-length body", b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello", [R("POST", "/p", b"hello")]),
    ("zero content-length", b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n", [R("POST", "/p")]),
    (
        "identical duplicate content-length is one",
        b"PUT /p HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        [R("PUT", "/p", b"ok")],
    ),
    (
        "chunked body with extension and trailer",
        b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        b"5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
        [R("POST", "/c", b"hello world")],
    ),
    (
        "chunked, upper-case hex and coding name",
        b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
        [R("POST", "/c", b"0123456789")],
    ),
    ("pipelined requests answer in order", get(b"/1") + get(b"/2") + get(b"/3"), [R("GET", "/1"), R("GET", "/2"), R("GET", "/3")]),
    (
        "pipelined after a body",
        b"POST /a HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc" + get(b"/b"),
        [R("POST", "/a", b"abc"), R("GET", "/b")],
    ),
    ("http/1.0 closes by default", b"GET / HTTP/1.0\r\n\r\n", [R("GET", "/", ka=False)]),
    ("http/1.0 keep-alive on request", b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", [R("GET", "/")]),
    ("http/1.1 connection close", get(extra=b"Connection: close\r\n"), [R("GET", "/", ka=False)]),
    ("connection tokens", get(extra=b"Connection: Upgrade, CLOSE\r\n"), [R("GET", "/", ka=False)]),
    ("head", b"HEAD /x HTTP/1.1\r\n" + H + b"\r\n", [R("HEAD", "/x")]),
    ("empty lines before a request are ignored", b"\r\n\r\n" + get(), [R("GET", "/")]),
    ("absolute-form target", get(b"http://example.com/a?b=1"), [R("GET", "/a?b=1")]),
    ("absolute-form without path", get(b"http://example.com"), [R("GET", "/")]),
    ("options *", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", [R("OPTIONS", "*")]),
    # limits
    ("request line too long: 414", get(b"/" + b"a" * 200), [E(414)]),
    ("head too large: 431", get(extra=b"X-Big: " + b"b" * 400 + b"\r\n"), [E(431)]),
    ("too many header fields: 431", get(extra=b"A: 1\r\n" * 9), [E(431)]),
    ("body too large: 413", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 65\r\n\r\n", [E(413)]),
    ("overflowing content-length: 413", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999\r\n\r\n", [E(413)]),
    (
        "chunked body too large: 413",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n20\r\n" + b"a" * 32 + b"\r\n21\r\n",
        [E(413)],
    ),
    ("unknown method: 501", b"BREW /pot HTTP/1.1\r\n" + H + b"\r\n", [E(501)]),
    ("unknown transfer coding: 501", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", [E(501)]),
    ("http/2.0: 505", get(version=b"HTTP/2.0"), [E(505)]),
    # malformed: 400
    ("content-length with transfer-encoding: 400", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", [E(400)]),
    ("two differing content-lengths: 400", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n", [E(400)]),
    ("negative content-length: 400", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", [E(400)]),
    ("signed content-length: 400", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\n", [E(400)]),
    ("hex content-length: 400", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\n", [E(400)]),
    ("list content-length: 400", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\n", [E(400)]),
    ("transfer-encoding in http/1.0: 400", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", [E(400)]),
    ("bare LF request: 400", b"GET / HTTP/1.1\nHost: x\n\n", [E(400)]),
    ("bare LF inside head: 400", b"GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n", [E(400)]),
    ("bare CR inside head: 400", b"GET / HTTP/1.1\r\nHost: x\rA: b\r\n\r\n", [E(400)]),
    ("NUL in head: 400", get(extra=b"A: b\x00c\r\n"), [E(400)]),
    ("control char in value: 400", get(extra=b"A: b\x01c\r\n"), [E(400)]),
    ("DEL in value: 400", get(extra=b"A: b\x7fc\r\n"), [E(400)]),
    ("escape in a name: 400", get(extra=b"A\x1b: b\r\n"), [E(400)]),
    ("CR before the blank line: 400", get(extra=b"A: b\r\r\n"), [E(400)]),
    ("UTF-8 value", get(extra="A: caf\u00e9 \u2713\r\n".encode()), [R("GET", "/", headers={"a": "caf\u00e9 \u2713"})]),
    ("obs-fold: 400", get(extra=b"A: b\r\n  folded\r\n"), [E(400)]),
    ("space before colon: 400", get(extra=b"A : b\r\n"), [E(400)]),
    ("no colon: 400", get(extra=b"junk\r\n"), [E(400)]),
    ("missing host on 1.1: 400", b"GET / HTTP/1.1\r\n\r\n", [E(400)]),
    ("two hosts: 400", get(extra=b"Host: y\r\n"), [E(400)]),
    ("two-part request line: 400", b"GET /\r\n" + H + b"\r\n", [E(400)]),
    ("double space in request line: 400", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", [E(400)]),
    ("lower-case version: 400", get(version=b"http/1.1"), [E(400)]),
    ("target without slash: 400", get(b"index.html"), [E(400)]),
    ("star target with GET: 400", get(b"*"), [E(400)]),
    ("non-ASCII method: 400", "GÉT / HTTP/1.1\r\nHost: x\r\n\r\n".encode(), [E(400)]),
    ("invalid UTF-8 in head: 400", get(extra=b"A: \xff\xfe\r\n"), [E(400)]),
    ("bad chunk size: 400", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", [E(400)]),
    ("signed chunk size: 400", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", [E(400)]),
    (
        "chunk longer than its size: 400",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        [E(400)],
    ),
    ("chunk size line too long: 400", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 70, [E(400)]),
    ("unsupported expect: 400", b"POST / HTTP/1.1\r\n" + H + b"Expect: magic\r\nContent-Length: 1\r\n\r\nx", [E(400)]),
    ("error after good requests keeps their order", get(b"/ok") + b"BAD\r\n\r\n", [R("GET", "/ok"), E(400)]),
    # found by fuzzing (test_fuzz.py, fuzz_socket.py): the verdict must not depend on how the
    # bytes were split into reads, nor on what comes after the point where a limit was crossed
    ("line over the cap, bare LF after it: 414 however split", b"\x00" * 130 + b"\n", [E(414)]),
    ("request line of exactly the cap", get(b"/" + b"a" * 114), [R("GET", "/" + "a" * 114)]),
    ("request line one over the cap, CRLF right after: 414", get(b"/" + b"a" * 115), [E(414)]),
    ("head over the cap, bare LF past it: 431", get(extra=b"X: " + b"a" * 380 + b"\n\n"), [E(431)]),
    ("head over the cap, end past it: 431", get(extra=b"X: " + b"a" * 380 + b"\r\n"), [E(431)]),
    (
        "chunk line of exactly 64 bytes",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2;" + b"e" * 62 + b"\r\nok\r\n0\r\n\r\n",
        [R("POST", "/", b"ok")],
    ),
    (
        "chunk line of 65 bytes: 400",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2;" + b"e" * 63 + b"\r\nok\r\n0\r\n\r\n",
        [E(400)],
    ),
    (
        "trailer line over the cap: 400",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: " + b"t" * 380 + b"\r\n\r\n",
        [E(400)],
    ),
    (
        "chunk size with leading zeros",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0000000002\r\nok\r\n0\r\n\r\n",
        [R("POST", "/", b"ok")],
    ),
    ("chunk size of 9 hex digits: 413", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n100000000\r\n", [E(413)]),
    ("content-length with leading zeros", b"POST /p HTTP/1.1\r\n" + H + b"Content-Length: 000000000002\r\n\r\nok", [R("POST", "/p", b"ok")]),
    ("content-length in Arabic-Indic digits: 400", b"POST / HTTP/1.1\r\n" + H + "Content-Length: \u0663\r\n\r\n".encode() + b"abc", [E(400)]),
    ("empty transfer-encoding: 400", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: \r\n\r\n", [E(400)]),
    ("chunked twice: 400", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", [E(400)]),
    ("chunked not last: 400", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n", [E(400)]),
    ("gzip then chunked: 501", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n", [E(501)]),
    ("http/1.2 is served as 1.1", get(b"/v", version=b"HTTP/1.2"), [R("GET", "/v")]),
    ("http/1.x with a letter: 400", get(version=b"HTTP/1.x"), [E(400)]),
    ("absolute-form with a query and no path", get(b"http://h?x=1"), [R("GET", "/?x=1")]),
]
