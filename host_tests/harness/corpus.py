"""The wire corpus: hand-written malformed and borderline requests, each meant for a connection of
its own, with the status the server must answer and what it must then do with the connection.
host_tests/wire/test_malformed.py sends each one and checks both; the socket fuzzer
(harness.fuzz_socket) mutates their bytes. The limits in the names are the firmware's defaults
(firmware/nostall/config.py)."""

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
