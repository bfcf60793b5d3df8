# The request head, sans-IO: the RequestReader's (proto.py) first step, request_head(r), as body.py's
# steps are the body's. It finds the head's end in the reader's buffer, where the last search
# stopped (O(n) in the bytes received), and refuses what breaks a limit before anything is
# allocated for it: the request line's length (414), the head's size and field count (431). Then
# the head is checked whole (line endings, control characters, UTF-8), the request line taken
# apart (method, target, version) and the header fields put into req.raw, as bytes. What the
# head says about the body (keep-alive, Host, Content-Length or chunked, Expect, the app's
# admit) the reader decides in r._framing(req): the reader's state changes are proto.py's.

import micropython
from micropython import const

from nostall.request import METHODS, NOT_TOKEN, Request

# what it says, as numbers: their words are words.py's rows
_LINE_TOO_LONG = const(1)
_BARE_LF = const(2)
_HEAD_TOO_LARGE = const(3)
_BARE_CR_LF = const(4)
_CONTROL_CHAR = const(5)
_HEAD_NOT_UTF8 = const(6)
_TOO_MANY_FIELDS = const(7)
_BAD_FIELD = const(8)
_TWO_LENGTHS = const(9)
_TWO_HOSTS = const(10)
_BAD_REQUEST_LINE = const(11)
_BAD_METHOD = const(12)
_UNKNOWN_METHOD = const(13)
_BAD_VERSION = const(14)
_UNKNOWN_VERSION = const(15)
_TARGET_NOT_UTF8 = const(16)
_BAD_TARGET = const(17)

# bytes -> str for what the request line and header names usually hold: a dict lookup instead
# of a decode, a token check and a lower() per field. Fixed: what clients send cannot grow it.
_METHODS = {m.encode(): m for m in METHODS}
# the fields pollers, browsers and WebSocket clients send most, as they spell them; any other
# name is checked and lower-cased (_name), a new str each (a search of every interned string),
# and the first _NAMES_LEARNED of those, up to _NAME_CACHED_BYTES long, are added here: a
# browser sends the same dozen names with every request (Referer, Sec-Fetch-*...). Bounded, as
# _TARGETS: a client that sends junk names fills it once and costs the per-request work again.
_NAMES_LEARNED = const(8)
_NAME_CACHED_BYTES = const(32)
_NAMES = {
    b"Host": "host", b"User-Agent": "user-agent", b"Accept": "accept", b"Accept-Encoding": "accept-encoding",
    b"Accept-Language": "accept-language", b"Connection": "connection", b"Content-Length": "content-length",
    b"Content-Type": "content-type", b"Transfer-Encoding": "transfer-encoding", b"Authorization": "authorization",
    b"Cache-Control": "cache-control", b"If-None-Match": "if-none-match", b"Upgrade": "upgrade",
    b"Origin": "origin", b"Sec-WebSocket-Key": "sec-websocket-key", b"Sec-WebSocket-Version": "sec-websocket-version",
}
_NAMES_MAX = len(_NAMES) + _NAMES_LEARNED

# request targets seen, as str: pollers ask for the same few paths, and a new str costs a search
# of every interned string; bounded (the first ones asked for stay), short ones only
_TARGETS = {}
_TARGETS_MAX = const(4)
_TARGET_CACHED_BYTES = const(48)


# what _scan() finds in a head, as bits of its answer (the count of CRLFs above them)
_BARE = const(1)  # a CR without its LF, or an LF without its CR
_CTL = const(2)  # a control character other than HTAB, or DEL
_NON_ASCII = const(4)
_FLAGS = const(3)  # bits of flags below the count


@micropython.viper
def _scan(buf, start: int, end: int) -> int:
    # buf[start:end], a head without its blank line, in one pass of machine code: the CRLFs
    # (its header fields) << _FLAGS | the bits above. Byte by byte in bytecode, or with C loops
    # (count, replace, min, max), a browser's 400-byte head cost ~90k instructions; here ~4k.
    # On CPython (the unit tests) ptr8 is the buffer itself (host_tests/micropython.py).
    p = ptr8(buf)  # pyright: ignore[reportUndefinedVariable] - viper's cast
    n = 0
    flags = 0
    i = start
    while i < end:
        c = p[i]
        if c < 32:
            if c == 13 and i + 1 < end and p[i + 1] == 10:
                n += 1
                i += 1
            elif c == 13 or c == 10:
                flags |= _BARE
            elif c != 9:
                flags |= _CTL
        elif c > 126:
            flags |= _CTL if c == 127 else _NON_ASCII
        i += 1
    return (n << _FLAGS) | flags


@micropython.viper
def _field(buf, pos: int, end: int) -> int:
    # the header line at buf[pos:]: where it ends (its CR, or end) << 15 | where its first colon
    # is (0: none). One pass of machine code, where two finds call memcmp once per byte. _scan
    # has refused a bare CR, so the first CR ends the line; a head is at most 16 KB (bounds.py):
    # both fit in a small int on a 32-bit board.
    p = ptr8(buf)  # pyright: ignore[reportUndefinedVariable] - viper's cast
    c = 0
    i = pos
    while i < end:
        b = p[i]
        if b == 13:
            break
        if b == 58 and c == 0:  # ":"
            c = i
        i += 1
    return (i << 15) | c


def _token(raw):
    # raw bytes as a str when they are an RFC 9110 token (method, header name), else None
    try:
        s = str(raw, "utf-8")
    except UnicodeError:
        return None
    return s if s and not NOT_TOKEN.search(s) else None


@micropython.native
def request_head(r):
    buf = r.buf
    cfg = r.cfg
    # RFC 9112 2.2: ignore empty lines before a request line
    while r.end - r.start >= 2 and buf[r.start] == 13 and buf[r.start + 1] == 10:
        r.start += 2
    start = r.start
    if r.scan < start:
        r.scan = start
    # Every verdict below depends only on the bytes received, never on how they were split
    # into reads: nothing past max_header_bytes is looked at, and the request line is judged
    # by where its line end falls, before anything else.
    end = min(r.end, start + cfg.max_header_bytes)
    lf = buf.find(b"\n", start, min(end, start + cfg.max_request_line_bytes + 2))
    if lf < 0:
        if end - start > cfg.max_request_line_bytes + 1:
            r.fail(414, _LINE_TOO_LONG)
    elif lf == start or buf[lf - 1] != 13:
        r.fail(400, _BARE_LF)
    i = buf.find(b"\r\n\r\n", r.scan, end)
    if i < 0:
        if buf.find(b"\n\n", r.scan, end) >= 0 or buf.find(b"\r\n\n", r.scan, end) >= 0:
            r.fail(400, _BARE_LF)
        if end - start >= cfg.max_header_bytes:
            r.fail(431, _HEAD_TOO_LARGE)
        r.scan = max(start, end - 3)
        if start == 0 and r.end == len(buf):  # full (space() has moved it to the front)
            r._grow()
        return None
    scan = _scan(buf, start, i)
    head = bytes(r.mv[start:i])
    r.start = i + 4
    r.scan = r.start
    # The head stays bytes: a str costs MicroPython a search of its interned strings (every
    # new str is looked up there first), so header values are kept as bytes and decoded only
    # when the app first reads req.headers (request.py); the target goes through a cache.
    if scan & _BARE:
        r.fail(400, _BARE_CR_LF)
    if scan & _CTL:
        r.fail(400, _CONTROL_CHAR)
    n = scan >> _FLAGS  # header fields
    eol = head.find(b"\r\n")
    req = _request_line(r, head, len(head) if eol < 0 else eol)
    if scan & _NON_ASCII:  # decoded once, to refuse what is not UTF-8
        try:
            str(head, "utf-8")
        except UnicodeError:
            r.fail(400, _HEAD_NOT_UTF8)
    # counted before the split: a head of many short lines would cost an object per line
    # (700 in 2 KB) before its 431
    if n > cfg.max_header_count:
        r.fail(431, _TOO_MANY_FIELDS)
    # field by field in place: no list of lines, one bytes copy per value
    raw = req.raw
    pos = eol + 2
    size = len(head)
    for _ in range(n):
        f = _field(head, pos, size)
        nl = f >> 15
        c = f & 0x7FFF
        if c <= pos:
            r.fail(400, _BAD_FIELD)
        name = head[pos:c]
        key = _NAMES.get(name)
        if key is None:
            key = _name(r, name)
        a = c + 1
        while a < nl and head[a] in b" \t":
            a += 1
        b = nl
        while b > a and head[b - 1] in b" \t":
            b -= 1
        pos = nl + 2
        value = head[a:b]
        old = raw.get(key)
        if old is None:
            raw[key] = value
        elif key == "content-length":
            if old != value:
                r.fail(400, _TWO_LENGTHS)
        elif key == "host":
            r.fail(400, _TWO_HOSTS)
        else:
            raw[key] = old + b", " + value
    return r._framing(req)


def _name(r, raw):
    # a header name not in _NAMES: checked as a token (which also refuses obs-fold, a line
    # starting with SP or HTAB, and "Name :"), then lower-cased, and learned while there is room
    name = _token(raw)
    if name is None:
        r.fail(400, _BAD_FIELD)
    name = name.lower()
    if len(_NAMES) < _NAMES_MAX and len(raw) <= _NAME_CACHED_BYTES:
        _NAMES[raw] = name
    return name


def _request_line(r, head, end):
    # head[:end], taken apart where it lies: no list of parts, no copy of the line or the version
    sp = head.find(b" ", 0, end)
    sp2 = head.find(b" ", sp + 1, end) if sp >= 0 else -1
    if sp2 < 0 or head.find(b" ", sp2 + 1, end) >= 0:  # not three parts
        r.fail(400, _BAD_REQUEST_LINE)
    raw_method = head[:sp]
    method = _METHODS.get(raw_method)
    if method is None:
        if _token(raw_method) is None:
            r.fail(400, _BAD_METHOD)
        r.fail(501, _UNKNOWN_METHOD)
    if end - sp2 == 9 and head.startswith(b"HTTP/1.1", sp2 + 1):
        version = "HTTP/1.1"
    elif end - sp2 == 9 and head.startswith(b"HTTP/1.0", sp2 + 1):
        version = "HTTP/1.0"
    else:
        v = head[sp2 + 1 : end]
        if len(v) != 8 or not v.startswith(b"HTTP/") or v[6] != 46 or not (48 <= v[5] <= 57 and 48 <= v[7] <= 57):
            r.fail(400, _BAD_VERSION)
        if v[5] != 49:
            r.fail(505, _UNKNOWN_VERSION)
        version = "HTTP/1.1"  # RFC 9110 2.5: a later 1.x minor version is served as 1.1
    raw_target = head[sp + 1 : sp2]
    target = _TARGETS.get(raw_target)
    if target is not None:  # a path this board was asked for before: no new str
        return Request(method, target, version, None)
    try:
        target = str(raw_target, "utf-8")
    except UnicodeError:
        r.fail(400, _TARGET_NOT_UTF8)
    if not target.startswith("/"):
        if target == "*" and method == "OPTIONS":
            pass
        elif target.startswith("http://") or target.startswith("https://"):
            # absolute-form (RFC 9112 3.2.2): servers must accept it; keep path and query
            rest = target[target.find("//") + 2 :]
            p = len(rest)  # the authority ends at the first "/" or "?"
            for c in "/?":
                k = rest.find(c)
                if 0 <= k < p:
                    p = k
            rest = rest[p:]
            target = rest if rest.startswith("/") else "/" + rest
        else:
            r.fail(400, _BAD_TARGET)
    elif len(_TARGETS) < _TARGETS_MAX and len(raw_target) <= _TARGET_CACHED_BYTES:
        _TARGETS[raw_target] = target
    return Request(method, target, version, None)
