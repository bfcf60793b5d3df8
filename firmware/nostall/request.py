# What a request is once read: Request, HTTPError (a request to refuse, with its status) and the
# character classes HTTP/1.1 defines (escapes.py decodes URLs). Pure: no sockets, no asyncio.

import micropython
import re
from micropython import const

# what it says, as numbers: their words are words.py's rows
_BODY_NOT_UTF8 = const(31)
_BODY_NOT_JSON = const(32)

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

# Characters that may not appear in a header name or method (RFC 9110 token) or anywhere in a
# head (controls other than HTAB; CR and LF are checked separately as line ends).
NOT_TOKEN = re.compile("[^!#$%&'*+.^_`|~0-9A-Za-z-]")
CTL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


class HTTPError(Exception):
    """A request the server must refuse; .status is the response status, .reason the answer's
    words (str; the server's own refusals are raised with a number, words.py's row, whose words
    are looked up here), .headers what the refusal must carry ((name, value) pairs, e.g. a
    426's Sec-WebSocket-Version), or None.

    Example::

        raise HTTPError(404, "no such sensor")
    """

    def __init__(self, status, reason, headers=None):
        if type(reason) is int:  # words.py loads at the first refusal, as its answer needs it
            from nostall.words import words

            reason = words(reason)
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


class Request:
    """One parsed request. Headers are a dict of lower-case names to str values: the reader
    keeps them as bytes (raw) and they are decoded at the first use of req.headers."""

    # what most requests keep as it is: class attributes, not stored per request (each attribute
    # an instance stores costs MicroPython a slot in its map, and growing the map an allocation)
    body = b""
    query = ""
    keep_alive = True  # settled by the reader once headers are in (HTTP/1.0: False to start)
    version = "HTTP/1.1"  # what nearly every client speaks: stored only when it is not
    _args = None
    error = None  # the exception a handler raised, for the server's accounting
    stream = None  # a streamed route's body (bodystream.BodyStream); None: no body, or read whole

    @micropython.native
    def __init__(self, method, target, version, headers=None):
        self.method = method
        self.target = target
        if headers is not None:
            self.headers = headers
        self.raw = {}  # lower-case name -> the value's bytes, as received (proto.py fills it)
        p = target.find("?")
        if p < 0:
            self.path = target
        else:
            self.path = target[:p]
            self.query = target[p + 1 :]
        if version != "HTTP/1.1":
            self.version = version
            self.keep_alive = False

    def __getattr__(self, name):
        # req.headers, at its first use: the values decoded once (one new str each)
        if name != "headers":
            raise AttributeError(name)
        h = {}
        for k, v in self.raw.items():
            h[k] = str(v, "utf-8")
        self.headers = h
        return h

    @property
    def args(self):
        """Query string as a dict (the last of repeated names wins)."""
        if self._args is None:
            from nostall.escapes import parse_qs  # loaded by the first query read

            self._args = parse_qs(self.query)
        return self._args

    @property
    def text(self):
        """The body as str; HTTPError 400 when it is not UTF-8 (the client's fault, not a 500)."""
        try:
            return str(self.body, "utf-8")
        except UnicodeError:
            raise HTTPError(400, _BODY_NOT_UTF8)

    @property
    def json(self):
        """The body parsed as JSON; HTTPError 400 when it is not JSON."""
        import json

        try:
            return json.loads(self.body)
        except (ValueError, UnicodeError):
            raise HTTPError(400, _BODY_NOT_JSON)
