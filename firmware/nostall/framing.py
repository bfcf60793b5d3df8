# Responses on the wire, sans-IO: which framing a response gets, and its head as bytes.
#
# plan(req, resp, left, idle_s) is the whole decision, made once per response from what the
# request asked, what the handler returned and how many more requests the connection may carry:
# it returns the head to send, how the body goes out (the body modes below) and whether the
# connection stays open. The shell only follows it. closing(resp) is the same for a response that
# ends its connection whatever was asked (a refused request, a 503 when busy).
#
# Date (RFC 9110 6.6.1): plan() and closing() put the time the answer was made in its head once
# the board's clock is set, and none before (a server without a clock must send none). A board
# has one after NTP set it (board.py); the sim's is the host's. plan() runs per response, so the
# line is built at most once a second: between, it costs two calls and no allocation.

import micropython
from micropython import const
import time

from nostall.request import CTL, NOT_TOKEN
from nostall.ticks import ticks_add, ticks_diff, ticks_ms

# what it says, as numbers: their words are words.py's rows
_BAD_STATUS = const(49)
_BAD_HEADER = const(50)

# The reason phrases (RFC 9110 15), "|<status> <phrase>" each, in one string: a dict of them
# held ~3 KB of a board's heap in 31 str objects. They are looked up rarely: a status line is
# built once per status (status_line) and an error body only for an error.
_PHRASES = const(
    "|100 Continue|200 OK|201 Created|202 Accepted|204 No Content|206 Partial Content|"
    "301 Moved Permanently|302 Found|303 See Other|304 Not Modified|"
    "307 Temporary Redirect|308 Permanent Redirect|400 Bad Request|401 Unauthorized|"
    "403 Forbidden|404 Not Found|405 Method Not Allowed|406 Not Acceptable|"
    "408 Request Timeout|409 Conflict|411 Length Required|413 Content Too Large|"
    "414 URI Too Long|415 Unsupported Media Type|422 Unprocessable Content|"
    "429 Too Many Requests|431 Request Header Fields Too Large|500 Internal Server Error|"
    "501 Not Implemented|503 Service Unavailable|505 HTTP Version Not Supported|"
)


def reason_phrase(status, default="Status"):
    """The reason phrase of status (RFC 9110 15), or default for one it does not name."""
    i = _PHRASES.find("|%d " % status)
    if i < 0:
        return default
    i += 5
    return _PHRASES[i:_PHRASES.find("|", i)]


# Body modes: how the bytes after the head are sent.
NONE = 0  # no body: a HEAD request, or a 204/304 (the head still says what GET would get)
FIXED = 1  # Content-Length bytes: resp.body, or a stream of a known length
CHUNKED = 2  # a stream of unknown length to an HTTP/1.1 client
EOF = 3  # a stream of unknown length to an HTTP/1.0 client: the server's close ends it

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

_STATUS_LINES = {}
_STATUS_LINES_MAX = const(64)  # status lines kept built; a handler inventing statuses cannot grow it
# Header lines kept built, by (name, value): most answers repeat the same few (Content-Type),
# and building one costs a str, its encoding and MicroPython's interned-string lookup. Values
# that change (ETag, Location) fill at most this many entries, then are built each time.
_HEADER_LINES = {}
_HEADER_LINES_MAX = 16  # a few dozen bytes each: room for every fixed header an app sends, and a cap
# Content-Length lines by length, the first few lengths answered (a poller's answers repeat theirs)
_LENGTH_LINES = {}
_LENGTH_LINES_MAX = const(4)
_KEEP_ALIVE_LINES = {}  # by idle timeout (one: the server's)
# 2024-01-01 in this port's epoch (an ESP32's starts at 2000-01-01, the unix port's and CPython's
# at 1970): a clock before it was never set (an ESP32 wakes at 2000-01-01 until NTP sets it)
CLOCK_SET_AFTER_S = 1704067200 - (946684800 if time.gmtime(0)[0] == 2000 else 0)
_DAYS = const("MonTueWedThuFriSatSun")  # by gmtime's weekday (Monday is 0); one string: no tuple of 7 in the heap
_MONTHS = const("JanFebMarAprMayJunJulAugSepOctNovDec")
_wall_ns = time.time_ns  # the wall clock, read once a second (unit tests put a fake here)
_date = [b"", ticks_ms()]  # the Date line (b"": no clock) and the tick it goes stale at
# A head and a body (or a WebSocket frame head and its payload) up to one TCP segment
# (Ethernet/Wi-Fi MSS 1460) go out in one write: one segment, no wait on the client's delayed
# ACK between the two; a longer body is written on its own, not copied to join its head
COALESCE_BYTES = 1460


def status_line(status):
    """b"HTTP/1.1 200 OK\\r\\n", built once per status."""
    line = _STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 599:
            from nostall.words import say  # a handler's mistake (a 500): rare

            raise ValueError(say(_BAD_STATUS, status))
        line = ("HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))).encode()
        if len(_STATUS_LINES) < _STATUS_LINES_MAX:
            _STATUS_LINES[status] = line
    return line


def check_header(name, value):
    """Header name and value as str, refusing anything that could split the response: a name
    that is not a token, a value with CR, LF, NUL or another control character (HTAB is allowed)."""
    # str() of a str is a new str on MicroPython, and every new str a search of the interned ones
    h = (name, value) if type(name) is str and type(value) is str else (str(name), str(value))
    if h in _HEADER_LINES:  # built into a head before, so checked before
        return h
    name, value = h
    bad = not name or NOT_TOKEN.search(name) or CTL.search(value)
    if bad or "\r" in value or "\n" in value or "\0" in value:
        from nostall.words import say  # a handler's mistake (a 500): rare

        raise ValueError(say(_BAD_HEADER, name))
    return h


@micropython.native
def plan(req, resp, left, idle_s, coalesce=0):
    """(head, body mode, keep) for resp answering req.

    left: requests this connection may still carry after this one (0: it ends here; None: no
    cap); idle_s: the idle timeout announced in Keep-Alive. A failed handler (req.error) ends the
    connection too; the client still closes first, as always. coalesce: a body of at most this
    many bytes (not a stream) comes joined to the head, for one write (COALESCE_BYTES): one join,
    where head + body made a second copy.

    Example::

        head, mode, keep = plan(req, Response("hi"), 99, 5)
    """
    status = resp.status
    length = resp.length
    version = req.version
    keep = req.keep_alive and left != 0 and req.error is None
    if not resp.streamed:
        mode = FIXED
    elif length is not None:
        mode = FIXED
    elif version == "HTTP/1.1":
        mode = CHUNKED
    else:
        mode = EOF  # HTTP/1.0 has no chunked coding: the end of the body is the close
        keep = False
    if req.method == "HEAD" or status == 204 or status == 304:
        if mode == EOF:
            length = None  # nothing follows: the head alone is complete
        mode = NONE
    ka = None
    if keep:
        ka = (idle_s, left)
    date = _date  # date_line(), inlined: this runs per response
    if ticks_diff(date[1], ticks_ms()) <= 0:
        _new_date()
    tail = resp.body if mode == FIXED and not resp.streamed and len(resp.body) <= coalesce else b""
    return response_head(status, resp.headers, length, mode, keep, ka, version, date[0], tail), mode, keep


def closing(resp):
    """Head and body of a response after which the server closes (waiting for the client's EOF):
    a refused request, a 503 when busy. A 5xx gets no Date (RFC 9110 6.6.1 leaves it optional
    there): the server builds its 503 for when it is busy once, at start-up."""
    date = date_line() if resp.status < 500 else b""
    return response_head(resp.status, resp.headers, len(resp.body), FIXED, False, None, "HTTP/1.1", date) + resp.body


def date_line():
    """b"Date: Sun, 06 Nov 1994 08:49:37 GMT\\r\\n" (IMF-fixdate) for now, or b"" while the
    clock is not set; the same bytes object until the clock's second changes."""
    d = _date
    if ticks_diff(d[1], ticks_ms()) > 0:
        return d[0]
    return _new_date()


def _new_date():
    d = _date
    ns = _wall_ns()
    s = ns // 1000000000
    if s < CLOCK_SET_AFTER_S:
        d[0] = b""
        d[1] = ticks_add(ticks_ms(), 1000)  # looked at again in a second: NTP may set it meanwhile
        return d[0]
    t = time.gmtime(s)
    w, m = 3 * t[6], 3 * t[1] - 3
    d[0] = ("Date: %s, %02d %s %d %02d:%02d:%02d GMT\r\n"
            % (_DAYS[w : w + 3], t[2], _MONTHS[m : m + 3], t[0], t[3], t[4], t[5])).encode()
    d[1] = ticks_add(ticks_ms(), 1000 - ns // 1000000 % 1000)  # stale when the next second starts
    return d[0]


@micropython.native
def response_head(status, headers, length, mode, keep, keep_alive=None, version="HTTP/1.1", date=b"", tail=b""):
    """Status line and header block as bytes (then tail, a short body, when given).

    headers: (name, value) pairs already checked by check_header; length: body bytes, or None
    when unknown (then chunked in CHUNKED mode, EOF-delimited in EOF mode); keep_alive:
    (timeout s, requests left or None) for the Keep-Alive field when the connection stays open;
    date: the Date line (date_line(); plan() and closing() give it, a 101 goes without).
    """
    parts = [status_line(status), date]
    for h in headers:
        line = _HEADER_LINES.get(h) if type(h) is tuple else None  # a handler may append lists
        if line is None:
            line = ("%s: %s\r\n" % (h[0], h[1])).encode()
            if len(_HEADER_LINES) < _HEADER_LINES_MAX:
                _HEADER_LINES[h] = line
        parts.append(line)
    if status < 200 or status == 204 or status == 304:
        pass  # RFC 9110 8.6, 9112 6.1: neither length field on these
    elif length is not None:
        line = _LENGTH_LINES.get(length)
        if line is None:
            line = b"Content-Length: %d\r\n" % length
            if len(_LENGTH_LINES) < _LENGTH_LINES_MAX:
                _LENGTH_LINES[length] = line
        parts.append(line)
    elif mode == CHUNKED or (mode == NONE and version == "HTTP/1.1"):
        parts.append(b"Transfer-Encoding: chunked\r\n")
    if keep:
        if version != "HTTP/1.1":
            parts.append(b"Connection: keep-alive\r\n")  # HTTP/1.0 closes unless told
        if keep_alive:
            if keep_alive[1] is None:
                line = _KEEP_ALIVE_LINES.get(keep_alive[0])
                if line is None:
                    line = _KEEP_ALIVE_LINES[keep_alive[0]] = b"Keep-Alive: timeout=%d\r\n" % keep_alive[0]
                parts.append(line)
            else:
                parts.append(b"Keep-Alive: timeout=%d, max=%d\r\n" % keep_alive)
    else:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    if tail:
        parts.append(tail)
    return b"".join(parts)


def chunk(data):
    """One chunk of a chunked body; chunk(b"") is the last one."""
    if not data:
        return LAST_CHUNK
    return b"%x\r\n%s\r\n" % (len(data), data)


def error_body(status, reason):
    if type(reason) is int:  # one of the server's own refusals: its words load at the first
        from nostall.words import words

        reason = words(reason)
    return ("%d %s: %s\n" % (status, reason_phrase(status, "Error"), reason)).encode()
