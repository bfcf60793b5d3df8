# multipart/form-data (RFC 7578 over RFC 2046 5.1), sans-IO: a browser form's or FormData upload's
# body, fed in pieces of any size, read as events. Runs on CPython and MicroPython.
#
# How it works. A body is a preamble, then parts, each after a delimiter (CRLF "--" boundary, then
# spaces or tabs and CRLF): header lines, an empty line, content up to the next delimiter; "--"
# after a delimiter closes the form (the epilogue is ignored). feed(data) lends the reader a piece;
# next() returns events out of it, content as memoryviews of the piece itself, then None (feed the
# next piece, or call eof() at the body's end). Only what a piece's end leaves undecided is copied,
# into a carry of fixed size: a part's header line not complete yet (at most max_header_bytes), or
# a tail that may begin a delimiter (at most 73 bytes). That is all the memory, whatever the body's
# size. The carry starts out holding a CRLF, so a delimiter at the very start is found like any
# other. MultipartError is an HTTPError: a handler that lets it through answers with its status.

from nostall.request import HTTPError

PART = 1  # (PART, Part): a part begins, its headers read
DATA = 2  # (DATA, memoryview): some of its content; use it before the next call
END = 3  # (END, None): the part's content is complete
DONE = 4  # (DONE, None): the closing delimiter; nothing more comes

_END = (END, None)  # built once: no allocation per part
_DONE = (DONE, None)
_AGAIN = object()  # a step's "moved on, go on"

# reader states (_LINE: the rest of a delimiter's line)
_PREAMBLE, _LINE, _HEADERS, _BODY, _EPILOGUE, _BROKEN = 0, 1, 2, 3, 4, 5

_MAX_PAD = 32  # spaces and tabs after a delimiter (RFC 2046 transport padding) we wait through
# what RFC 2046 allows in a boundary: no CR, so a delimiter's only CR is its first byte
_BCHARS = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? "


class MultipartError(HTTPError):
    """A form to refuse: .status (400 malformed, 413 over a limit, 415 not a form), .reason."""


class Part:
    """name (str), filename (str; None for a plain field, "" for an empty file input) and
    content_type (str; "text/plain" when the part names none, RFC 7578 4.4)."""

    def __init__(self, name, filename, content_type):
        self.name = name
        self.filename = filename
        self.content_type = content_type


def _params(s):
    # b'type; k=v; k2="a \\"b\\" c"' -> (b"type", {b"k": b"v", b"k2": b'a "b" c'}), the type and
    # the keys lower-cased; None when a quoted string is not closed
    n = len(s)
    i = s.find(b";")
    kind = s[: n if i < 0 else i].strip().lower()
    out = {}
    while 0 <= i < n:  # at a ";"
        j = s.find(b"=", i + 1)
        k = s.find(b";", i + 1)
        if j < 0 or 0 <= k < j:  # a parameter without a value: nothing to keep
            i = k
            continue
        key = s[i + 1 : j].strip().lower()
        v = s[j + 1 : n if k < 0 else k].strip()
        i = k
        if v[:1] == b'"':  # a quoted string (it may hold ";")
            v = b""
            i = s.find(b'"', j) + 1
            while True:
                q = s.find(b'"', i)
                if q < 0:
                    return None
                e = s.find(b"\\", i, q)
                if e < 0:
                    break
                # \" and \\ are quoted pairs; browsers send any other backslash as it is (a\b.txt)
                v += s[i:e] + s[e + 1 if s[e + 1] in b'"\\' else e : e + 2]
                i = e + 2
            v += s[i:q]
            i = s.find(b";", q + 1)
        out[key] = v
    return kind, out


def boundary(content_type):
    """The boundary (bytes) of a multipart/form-data Content-Type value (str or bytes);
    MultipartError 415 for another type, 400 for a missing or invalid boundary.

    Example::

        boundary('multipart/form-data; boundary="x-1"')    # b"x-1"
    """
    if isinstance(content_type, str):
        content_type = content_type.encode()
    kv = _params(content_type)
    if kv is not None and kv[0] != b"multipart/form-data":
        raise MultipartError(415, "not multipart/form-data")
    b = kv[1].get(b"boundary") if kv else None
    if not b or len(b) > 70 or b[-1] == 32 or any(c not in _BCHARS for c in b):
        raise MultipartError(400, "missing or invalid multipart boundary")
    return b


class MultipartReader:
    """The events of a multipart/form-data body fed in pieces (see the module comment). Limits:
    max_header_bytes for a part's header lines (the carry's size), max_parts, max_field_bytes for
    the value of a part without a filename (a file's content is streamed, so not bounded).

    Example::

        form = MultipartReader(req.headers["content-type"])
        form.feed(piece)     # bytes or bytearray of any size, left unchanged until next() is None
        ev = form.next()     # (PART, Part), (DATA, view), (END, None), (DONE, None); None: feed more
        form.eof()           # at the body's end: MultipartError unless the form was closed
    """

    def __init__(self, content_type, max_header_bytes=1024, max_parts=32, max_field_bytes=1024):
        if max_header_bytes < 2 * _MAX_PAD or max_parts < 1 or max_field_bytes < 0:
            raise ValueError("multipart limits: max_header_bytes >= 64, max_parts >= 1, max_field_bytes >= 0")
        self.delim = b"\r\n--" + boundary(content_type)
        self.max_header_bytes = max_header_bytes
        self.max_parts = max_parts
        self.max_field_bytes = max_field_bytes
        self.carry = bytearray(max(max_header_bytes, len(self.delim)))
        self.cv = memoryview(self.carry)
        self.carry[0:2] = b"\r\n"  # as if a CRLF came first: a delimiter at the very start is found
        self.n = 2  # bytes in the carry
        self.data = b""  # the piece fed
        self.mv = memoryview(b"")
        self.pos = 0  # where in it the next event starts
        self.state = _PREAMBLE
        self.parts = 0
        self.part = None  # the Part being read
        self.used = 0  # its header bytes, then (a plain field) its value's bytes so far
        self.disp = None  # its Content-Disposition parameters, while its headers are read
        self.ctype = None  # its Content-Type, likewise

    def feed(self, data):
        """Lend the reader the next piece of the body (after next() returned None)."""
        if self.pos < len(self.data):
            raise ValueError("feed() before next() returned None")
        self.data = data
        self.mv = memoryview(data)
        self.pos = 0

    def next(self):
        """The next event, or None: the piece is used up. MultipartError for a form to refuse."""
        while True:
            st = self.state
            if st == _BODY or st == _PREAMBLE:
                ev = self._content()
            elif st == _HEADERS:
                ev = self._headers()
            elif st == _LINE:
                ev = self._line_end()
            elif st == _EPILOGUE:
                self.pos = len(self.data)
                return None
            else:
                raise MultipartError(400, "form already refused")
            if ev is not _AGAIN:
                return ev

    def eof(self):
        """The body ended (and next() returned None): MultipartError unless the form was closed."""
        if self.state != _EPILOGUE:
            self._fail(400, "no closing boundary")

    def _fail(self, status, reason):
        self.state = _BROKEN
        raise MultipartError(status, reason)

    def _content(self):
        # a part's content up to the next delimiter; in the preamble, skipped
        d = self.data
        p = self.pos
        end = len(d)
        delim = self.delim
        dl = len(delim)
        t = self.n
        body = self.state == _BODY
        if t:  # a tail held back, the start of a delimiter: does the piece go on with the rest?
            k = min(dl - t, end - p)
            if k == 0:
                return None
            if self.mv[p : p + k] == delim[t : t + k]:
                self.pos = p + k
                if t + k < dl:  # still undecided: hold it all
                    self.cv[t : t + k] = self.mv[p : p + k]
                    self.n = t + k
                    return None
                self.n = 0
                self.state = _LINE  # a delimiter: the part before it ends
                return _END if body else _AGAIN
            self.n = 0  # it was content
            return self._data(self.cv[:t]) if body else _AGAIN
        if p == end:
            return None
        i = d.find(delim, p)
        if i == p:
            self.pos = p + dl
            self.state = _LINE
            return _END if body else _AGAIN
        if i > p:
            self.pos = i  # the content before it now, the delimiter at the next call
        else:
            # no delimiter: hold back a tail that may begin one. The delimiter's only CR is its
            # first byte, so only the suffix from the last CR can be the start of one.
            i = d.rfind(b"\r", max(p, end - dl + 1))
            if i < 0 or self.mv[i:end] != delim[: end - i]:
                i = end
            else:
                self.cv[: end - i] = self.mv[i:end]
                self.n = end - i
            self.pos = end
        if i == p or not body:
            return _AGAIN
        return self._data(self.mv[p:i])

    def _data(self, view):
        if self.part.filename is None:  # a plain field: its value is bounded
            self.used += len(view)
            if self.used > self.max_field_bytes:
                self._fail(413, "form field too large")
        return (DATA, view)

    def _line(self, limit, status, why):
        # the next line (a view, CRLF included) or None until its end is in; joined in the carry
        # when it spans pieces; one longer than limit is refused as soon as seen
        d = self.data
        p = self.pos
        n = self.n
        i = d.find(b"\n", p)
        e = len(d) if i < 0 else i + 1
        if n + e - p > limit:
            self._fail(status, why)
        self.pos = e
        if i < 0 or n:
            self.cv[n : n + e - p] = self.mv[p:e]
            n += e - p
            if i < 0:
                self.n = n
                return None
            self.n = 0
            line = self.cv[:n]
        else:
            line = self.mv[p:e]
        if len(line) < 2 or line[-2] != 13:
            self._fail(400, "bare LF in a multipart head")
        return line

    def _line_end(self):
        # after a delimiter: "--" closes the form; else spaces or tabs, CRLF, then a part's head
        n = self.n
        if n < 2:  # two bytes, in the carry
            p = self.pos
            m = min(2 - n, len(self.data) - p)
            self.cv[n : n + m] = self.mv[p : p + m]
            self.n = n = n + m
            self.pos = p + m
            if n < 2:
                return None
        c = self.carry
        if c[0] == 45 and c[1] == 45:
            self.n = 0
            self.state = _EPILOGUE
            return _DONE
        if c[0] == 13 and c[1] == 10:  # the usual CRLF
            self.n = 0
        elif c[0] == 10 or c[1] == 10:
            self._fail(400, "bare LF in a multipart head")
        else:
            line = self._line(_MAX_PAD + 2, 400, "junk after a multipart boundary")
            if line is None:
                return None
            for b in line[:-2]:
                if b != 32 and b != 9:
                    self._fail(400, "junk after a multipart boundary")
        self.parts += 1
        if self.parts > self.max_parts:
            self._fail(413, "too many parts in the form")
        self.state = _HEADERS
        self.used = 0
        self.disp = None
        self.ctype = None
        return _AGAIN

    def _headers(self):
        line = self._line(self.max_header_bytes - self.used, 413, "part headers too large")
        if line is None:
            return None
        self.used += len(line)
        h = bytes(line[:-2])
        if h:
            i = h.find(b":")
            if i <= 0 or h[0] in b" \t":  # no name, or a folded line (RFC 7578 has none)
                self._fail(400, "bad part header line")
            name = h[:i].strip().lower()
            if name == b"content-disposition":
                kv = _params(h[i + 1 :].strip())
                if kv is None or kv[0] != b"form-data":
                    self._fail(400, "bad Content-Disposition")
                self.disp = kv[1]
            elif name == b"content-type":
                self.ctype = h[i + 1 :].strip()
            return _AGAIN
        # the empty line: the content follows
        d = self.disp
        if d is None or b"name" not in d:
            self._fail(400, "part without a Content-Disposition name")
        fn = d.get(b"filename")
        ct = self.ctype
        self.part = Part(self._text(d[b"name"]), None if fn is None else self._text(fn),
                         self._text(ct) if ct else "text/plain")
        self.used = 0
        self.state = _BODY
        return (PART, self.part)

    def _text(self, v):
        # a header value as str; names and filenames with ", CR and LF percent-encoded as
        # browsers send them (the HTML standard's form encoding)
        if b"%" in v:
            v = v.replace(b"%22", b'"').replace(b"%0D", b"\r").replace(b"%0A", b"\n")
        try:
            return str(v, "utf-8")
        except UnicodeError:
            self._fail(400, "part header is not UTF-8")
