# Response framing (firmware/nostall/framing.py) as a table: request bytes + the handler's
# response + requests left on the connection -> the exact head, the body mode, keep-alive; the
# Date line (only with a clock that was set, built once a second). Runs on CPython and on MicroPython.

import time

from unitcheck import raises

from nostall import framing
from nostall.config import Config
from nostall.framing import (
    CHUNKED, EOF, FIXED, NONE, check_header, chunk, closing, date_line, plan, reason_phrase, response_head, status_line,
)
from nostall.proto import RequestReader
from nostall.response import Response, error_response
from nostall.ticks import ticks_diff, ticks_ms

# seconds from the port's epoch to 1970 (an ESP32's epoch is 2000, the unix port's and CPython's 1970)
EPOCH_1970 = 946684800 if time.gmtime(0)[0] == 2000 else 0
PINNED_S = 1709197507 - EPOCH_1970
DATE = "Date: Thu, 29 Feb 2024 09:05:07 GMT"


class pinned:
    """with pinned(s, ns=0): the framing's wall clock stands at s seconds (of the port's epoch)
    plus ns; its Date line is built anew on entry and on exit. calls: how often it was read."""

    def __init__(self, s, ns=0):
        self.ns = s * 1000000000 + ns
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.ns

    def __enter__(self):
        self.saved = framing._wall_ns
        framing._wall_ns = self
        framing._date[1] = ticks_ms()  # stale now
        return self

    def __exit__(self, *exc):
        framing._wall_ns = self.saved
        framing._date[1] = ticks_ms()


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
    with pinned(PINNED_S):
        for name, raw, resp, left, lines, mode, keep in CASES:
            r = resp()
            head, got_mode, got_keep = plan(request(raw), r, left, 5)
            want = "\r\n".join([status_line(r.status).decode().rstrip(), DATE] + lines) + "\r\n\r\n"
            assert head.decode() == want, (name, head)
            assert (got_mode, got_keep) == (mode, keep), (name, got_mode, got_keep)


def test_a_short_body_comes_joined_to_its_head():
    # coalesce: the shell's one write (COALESCE_BYTES); a HEAD answer, a stream and a longer
    # body are not joined (the longer one is sent after the head, not copied)
    with pinned(PINNED_S):
        alone, _, _ = plan(request(GET11), text(), 9, 5)
        head, mode, _ = plan(request(GET11), text(), 9, 5, 5)
        assert head == alone + b"hello" and mode == FIXED
        assert plan(request(GET11), text(), 9, 5, 4)[0] == alone
        assert plan(request(HEAD11), text(), 9, 5, 1460)[0].endswith(b"\r\n\r\n")
        assert plan(request(GET11), sized_stream(), 9, 5, 1460)[0].endswith(b"\r\n\r\n")


def test_date_is_imf_fixdate_in_gmt():
    # RFC 9110 5.6.7: day name, 2-digit day, month name, 4-digit year, 2-digit time fields, GMT
    for s, want in ((1709197507, "Thu, 29 Feb 2024 09:05:07 GMT"), (1704067200, "Mon, 01 Jan 2024 00:00:00 GMT"),
                    (1956527999, "Wed, 31 Dec 2031 23:59:59 GMT"), (1780835401, "Sun, 07 Jun 2026 12:30:01 GMT"),
                    (2147483648, "Tue, 19 Jan 2038 03:14:08 GMT")):
        with pinned(s - EPOCH_1970):
            assert date_line() == b"Date: %s\r\n" % want.encode(), (s, date_line())


def test_no_date_while_the_clock_was_never_set():
    # an ESP32 starts at 2000-01-01 until NTP sets its clock: a server without a clock sends no
    # Date (RFC 9110 6.6.1); once set (NTP at start-up), the next answer has one
    for s in (0, 800000000 - EPOCH_1970, framing.CLOCK_SET_AFTER_S - 1):
        with pinned(s):
            head, _, _ = plan(request(GET11), text(), 9, 5)
            assert b"Date:" not in head and date_line() == b"", (s, head)
            assert b"Date:" not in closing(error_response(400, "bad"))
    with pinned(framing.CLOCK_SET_AFTER_S):
        head, _, _ = plan(request(GET11), text(), 9, 5)
        assert b"\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n" in head, head


def test_date_is_built_once_a_second():
    with pinned(PINNED_S) as clock:  # at a second's start: good for the whole second
        first = date_line()
        assert 900 <= ticks_diff(framing._date[1], ticks_ms()) <= 1000  # (900: a busy host may pause us)
        for _ in range(50):
            head, _, _ = plan(request(GET11), text(), 9, 5)
            assert date_line() is first  # no allocation: the same bytes
        assert clock.calls == 1 and (DATE + "\r\n").encode() in head
    with pinned(PINNED_S, 999000000) as clock:  # 1 ms before the next second
        date_line()
        # stale when the clock's next second starts (1 ms on), not a whole second after the build
        assert ticks_diff(framing._date[1], ticks_ms()) <= 1
        clock.ns += 1000000
        framing._date[1] = ticks_ms()  # what 1 ms of ticks does
        assert date_line() == b"Date: Thu, 29 Feb 2024 09:05:08 GMT\r\n" and clock.calls == 2


def test_date_from_the_real_clock():
    line = date_line()
    assert len(line) == len("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n") and line.endswith(b" GMT\r\n"), line
    now = time.gmtime()
    assert b" %d " % now[0] in line or b" %d " % (now[0] - 1) in line, (line, now)  # a new year may start between


def test_date_on_closing_answers_but_a_5xx_and_never_on_a_101():
    # the server builds its busy 503 once at start-up: a Date there would be as old as the board's
    # uptime, and RFC 9110 6.6.1 leaves Date optional on 5xx
    with pinned(PINNED_S):
        assert (DATE + "\r\n").encode() in closing(error_response(400, "bad request line"))
        assert (DATE + "\r\n").encode() in closing(error_response(431, "too many header fields"))
        assert b"Date:" not in closing(error_response(503, "server busy, retry"))
        assert b"Date:" not in response_head(101, [("Upgrade", "websocket")], None, NONE, True)
        head, _, _ = plan(request(GET11), error_response(500, "boom"), 9, 5)
        assert (DATE + "\r\n").encode() in head  # a 500 from plan() is made now: it has one


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


def test_reason_phrases_first_last_and_unnamed():
    assert reason_phrase(100) == "Continue" and reason_phrase(505) == "HTTP Version Not Supported"
    assert reason_phrase(431) == "Request Header Fields Too Large" and reason_phrase(200) == "OK"
    assert reason_phrase(299) == "Status" and reason_phrase(599, "Error") == "Error"
    assert reason_phrase(20) == "Status"  # not a prefix match of 200
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"
