# Response framing (firmware/nostall/framing.py) as a table: request bytes + the handler's
# response + requests left on the connection -> the exact head, the body mode, keep-alive.
# Runs on CPython and on MicroPython.

from unitcheck import raises

from nostall.config import Config
from nostall.framing import CHUNKED, EOF, FIXED, NONE, check_header, chunk, closing, plan, status_line
from nostall.proto import RequestReader
from nostall.response import Response, error_response


def request(raw, error=None):
    r = RequestReader(Config())
    r.feed(raw)
    req = r.next()
    assert req is not None, raw
    req.error = error
    return req


GET11 = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"
GET10_KA = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
HEAD11 = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
HEAD10 = b"HEAD / HTTP/1.0\r\n\r\n"
CLOSE11 = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def text():
    return Response("hello")


def stream():
    return Response(stream=iter([b"a", b"b"]), content_type="text/plain")


def sized_stream():
    return Response(stream=iter([b"abc"]), content_type="text/plain", length=3)


def a_file():
    return Response(b"", content_type="text/css", file="/www/x.css", length=10)


def no_content():
    return Response(b"", 204)


def not_modified():
    return Response(b"", 304, {"ETag": '"1"'})


CT = "Content-Type: text/plain"
CT_UTF8 = "Content-Type: text/plain; charset=utf-8"
KA = "Keep-Alive: timeout=5, max=9"

CASES = [
    # name, request, response, left, head lines after the status line, mode, keep
    ("1.1 keep-alive", GET11, text, 9, [CT_UTF8, "Content-Length: 5", KA], FIXED, True),
    ("1.1 Connection: close", CLOSE11, text, 9, [CT_UTF8, "Content-Length: 5", "Connection: close"], FIXED, False),
    ("last request allowed", GET11, text, 0, [CT_UTF8, "Content-Length: 5", "Connection: close"], FIXED, False),
    ("no request cap", GET11, text, None, [CT_UTF8, "Content-Length: 5", "Keep-Alive: timeout=5"], FIXED, True),
    ("1.0 closes by default", GET10, text, 9, [CT_UTF8, "Content-Length: 5", "Connection: close"], FIXED, False),
    ("1.0 keep-alive is confirmed", GET10_KA, text, 9, [CT_UTF8, "Content-Length: 5", "Connection: keep-alive", KA], FIXED, True),
    ("1.1 stream is chunked", GET11, stream, 9, [CT, "Transfer-Encoding: chunked", KA], CHUNKED, True),
    ("stream of known length", GET11, sized_stream, 9, [CT, "Content-Length: 3", KA], FIXED, True),
    ("file of known length", GET11, a_file, 9, ["Content-Type: text/css", "Content-Length: 10", KA], FIXED, True),
    ("1.0 stream ends at the close", GET10_KA, stream, 9, [CT, "Connection: close"], EOF, False),
    ("HEAD tells GET's length", HEAD11, text, 9, [CT_UTF8, "Content-Length: 5", KA], NONE, True),
    ("HEAD of a stream", HEAD11, stream, 9, [CT, "Transfer-Encoding: chunked", KA], NONE, True),
    ("HEAD of a 1.0 stream", HEAD10, stream, 9, [CT, "Connection: close"], NONE, False),
    ("204 has no length", GET11, no_content, 9, [KA], NONE, True),
    ("304 has no length", GET11, not_modified, 9, ['ETag: "1"', KA], NONE, True),
]


def test_framing_table():
    for name, raw, resp, left, lines, mode, keep in CASES:
        r = resp()
        head, got_mode, got_keep = plan(request(raw), r, left, 5)
        want = "\r\n".join([status_line(r.status).decode().rstrip()] + lines) + "\r\n\r\n"
        assert head.decode() == want, (name, head)
        assert (got_mode, got_keep) == (mode, keep), (name, got_mode, got_keep)


def test_a_failed_handler_ends_the_connection():
    head, mode, keep = plan(request(GET11, error=ValueError("x")), error_response(500, "boom"), 9, 5)
    assert not keep and head.endswith(b"Connection: close\r\n\r\n") and mode == FIXED


def test_closing_is_head_and_body_of_a_last_response():
    data = closing(error_response(503, "server busy, retry", (("Retry-After", "1"),)))
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    assert "Retry-After: 1" in lines and "Connection: close" in lines
    assert "X-Content-Type-Options: nosniff" in lines
    assert "Content-Length: %d" % len(body) in lines
    assert body == b"503 Service Unavailable: server busy, retry\n"


def test_status_lines():
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(599) == b"HTTP/1.1 599 Status\r\n"  # unknown reason phrase: a neutral one
    assert status_line(404) is status_line(404)  # built once
    for bad in (99, 600):
        with raises(ValueError):
            status_line(bad)


def test_headers_that_could_split_a_response_are_refused():
    assert check_header("X-A", 5) == ("X-A", "5")
    assert check_header("X-A", "a\tb") == ("X-A", "a\tb")  # HTAB is allowed
    for name, value in (("X-A", "a\r\nSet-Cookie: x"), ("X-A", "a\nb"), ("X-A", "a\0b"), ("X-A", "a\x7fb"),
                        ("X A", "v"), ("", "v"), ("X:A", "v")):
        with raises(ValueError):
            check_header(name, value)


def test_chunks():
    assert chunk(b"hello") == b"5\r\nhello\r\n"
    assert chunk(b"x" * 300) == b"12c\r\n" + b"x" * 300 + b"\r\n"
    assert chunk(b"") == b"0\r\n\r\n"


def test_built_header_lines_are_kept_within_a_bound():
    from nostall import framing
    from nostall.framing import response_head

    for i in range(3 * framing._HEADER_LINES_MAX):
        head = response_head(200, [("ETag", '"%d"' % i)], 0, FIXED, True)
        assert b'ETag: "%d"\r\n' % i in head
    assert len(framing._HEADER_LINES) <= framing._HEADER_LINES_MAX
    assert b"X-L: v\r\n" in response_head(200, [["X-L", "v"]], 0, FIXED, True)  # a list, appended by hand
