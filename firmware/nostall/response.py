# What a handler may return, checked into a Response; the one builder of error responses. Pure:
# nothing here touches a socket (a Response naming a file is opened by the server when it sends it;
# static.py builds those).

import micropython
from micropython import const
import json

from nostall.framing import check_header, error_body

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
HTML = "text/html; charset=utf-8"

# built once: a tuple of names in a call would be built (allocated) on every call
BYTES_TYPES = (bytes, bytearray, memoryview)
_JSON_SCALARS = (str, int, bool)  # on MicroPython bool is no int subclass
_JSON_LISTS = (list, tuple)
_JSON_CONTAINERS = (dict, list)
_INF = float("inf")
# Checking a value for JSON recurses once per level: deeper nesting could exhaust the C stack
# of a board's MicroPython task before json.dumps itself would
MAX_JSON_DEPTH = 20


_CONTENT_TYPES = {t: ("Content-Type", t) for t in (TEXT, JSON, HTML, "application/octet-stream")}
# the reason may quote the request (its path): a browser must show it as text, never sniff it
_NOSNIFF = const((("X-Content-Type-Options", "nosniff"),))

# what it says, as numbers: their words are words.py's rows
_BODY_TYPE = const(39)
_BAD_RETURNED_STATUS = const(40)
_BAD_TUPLE = const(41)
_BAD_RETURN = const(42)
_NOT_FINITE = const(43)
_TOO_DEEP = const(44)
_BAD_KEY = const(45)
_NOT_JSON = const(46)
_BAD_PIECE = const(47)


class BadResponse(TypeError):
    """A handler returned something that cannot be sent; its request gets a 500."""


def bad_response(n, *args):
    """A BadResponse saying words.py's row n (loaded now: a handler's mistake is rare)."""
    from nostall.words import say

    return BadResponse(say(n, *args))


class Response:
    """What a handler may return (it may also return str, bytes, dict/list, None or a tuple).

    body: bytes or str; or stream: an iterator of bytes sent as it is produced (chunked
    unless length is given); or file: a path on flash, sent in pieces (give its length).
    Header values are checked: CR/LF in them raise BadResponse.

    Example::

        return Response("<h1>hi</h1>", content_type=HTML)
        return Response(stream=(b"%d\\n" % i for i in range(10)))
    """

    # what most responses keep as it is: class attributes, not stored per response
    stream = None
    file = None
    streamed = False

    @micropython.native
    def __init__(self, body=b"", status=200, headers=None, content_type=None, stream=None, length=None, file=None):
        if isinstance(body, str):
            body = body.encode()
            if content_type is None:
                content_type = TEXT
        elif not isinstance(body, BYTES_TYPES):
            raise bad_response(_BODY_TYPE, type(body).__name__)
        self.body = body
        self.status = status
        if stream is not None or file is not None:
            self.stream = stream
            self.file = file
            self.streamed = True
            self.length = length
        else:
            self.length = len(body)
        if content_type is None:
            content_type = "application/octet-stream" if (body or self.streamed) else None
        if content_type:
            ct = _CONTENT_TYPES.get(content_type)  # the usual ones: checked once, at import
            self.headers = [ct or check_header("Content-Type", content_type)]
        else:
            self.headers = []
        if headers:
            for name, value in headers.items() if isinstance(headers, dict) else headers:
                self.set_header(name, value)

    @micropython.native
    def set_header(self, name, value):
        try:
            self.headers.append(check_header(name, value))
        except ValueError as e:  # CR/LF in it could split the response
            raise BadResponse(str(e))

    # a long-lived protocol that takes the connection after this head: an async
    # protocol(conn, req, resp) -> True when the client closed TCP (session.py's LONG). Its
    # responses are in its module, loaded by its first use: websocket.Upgrade, events.EventStream
    protocol = None

    @staticmethod
    def json(obj, status=200):
        return Response(dumps(obj), status, content_type=JSON)

    @staticmethod
    def redirect(location, status=302):
        return Response(b"", status, {"Location": location})


def error_response(status, reason="", headers=None):  # type: (int, str | int, tuple | list | None) -> Response
    """The response to every failure, whoever finds it (the reader, the app, the server):
    "<status> <phrase>: <reason>" as plain text (reason: words, or the number of the server's
    own refusal, words.py's row).

    Example::

        error_response(503, "server busy, retry", (("Retry-After", "1"),))
    """
    r = Response(error_body(status, reason), status, _NOSNIFF, TEXT)
    if headers:
        for name, value in headers:
            r.set_header(name, value)
    return r



@micropython.native
def make_response(rv):
    """The Response for what a handler returned, checked: BadResponse (so a 500) for a status
    outside 200..599 or a header that could split the response, however it got there."""
    r = _make_response(rv)
    s = r.status
    if type(s) is not int or not (200 <= s <= 599 or (s == 101 and r.protocol is not None)):
        raise bad_response(_BAD_RETURNED_STATUS, s)
    if r is rv or type(rv) is tuple:  # the handler's own Response: it may have appended to r.headers
        for name, value in r.headers:
            check_header(name, value)
    return r


def _make_response(rv):
    if isinstance(rv, Response):
        return rv
    status = 200
    headers = None
    if isinstance(rv, tuple):
        if len(rv) == 3:
            rv, status, headers = rv
        elif len(rv) == 2:
            rv, status = rv
        else:
            raise bad_response(_BAD_TUPLE)
        if isinstance(rv, Response):
            rv.status = status
            if headers:
                for k, v in headers.items():
                    rv.set_header(k, v)
            return rv
    if rv is None:
        return Response(b"", 204 if status == 200 else status, headers)
    if isinstance(rv, _JSON_CONTAINERS):
        return Response(dumps(rv), status, headers, JSON)
    if isinstance(rv, str):
        return Response(rv.encode(), status, headers, TEXT)
    if isinstance(rv, bytes):
        return Response(rv, status, headers)
    raise bad_response(_BAD_RETURN, type(rv).__name__)


def dumps(obj):
    """JSON bytes of obj; BadResponse for what JSON cannot hold.

    MicroPython's json.dumps writes repr() for what JSON cannot hold (objects, sets, bytearray,
    NaN): a 200 with a body no client can parse. Those are refused instead."""
    _check_json(obj, 0)
    return json.dumps(obj).encode()


def _check_json(v, depth):
    if v is None or isinstance(v, _JSON_SCALARS):
        return
    if isinstance(v, float):
        if v != v or v == _INF or v == -_INF:
            raise bad_response(_NOT_FINITE)
        return
    if depth > MAX_JSON_DEPTH:
        raise bad_response(_TOO_DEEP, MAX_JSON_DEPTH)
    if isinstance(v, _JSON_LISTS):
        for x in v:
            _check_json(x, depth + 1)
        return
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, _JSON_SCALARS):
                raise bad_response(_BAD_KEY, type(k).__name__)
            _check_json(v[k], depth + 1)
        return
    raise bad_response(_NOT_JSON, type(v).__name__)


def next_piece(stream):
    """The stream's next piece (bytes-like), or None at its end."""
    try:
        p = next(stream)
    except StopIteration:
        return None
    if not isinstance(p, BYTES_TYPES):
        raise bad_response(_BAD_PIECE, type(p).__name__)
    return p


def error_kind(e):
    """How a handler failed, as stats count it: "memory", "bad_response" or "exception"."""
    if isinstance(e, MemoryError):
        return "memory"
    if isinstance(e, BadResponse):
        return "bad_response"
    return "exception"


def close_stream(stream):
    """Close a handler's stream if it can be closed (a generator: its finally runs now)."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()
