# Percent escapes (RFC 3986 2.1) and query strings, decoded: a path's escapes for routing, a
# query's names and values for req.args, UTF-8 checked as CPython checks it. Loaded by the first
# request that needs one (a path with "%", a handler reading req.args).

from nostall.request import HTTPError


def unquote(s, plus=False):
    """Percent-decode a str (and '+' to space when plus); ValueError on a bad escape."""
    if plus and "+" in s:
        s = s.replace("+", " ")
    if "%" not in s:
        return s
    # walked with find over the bytes, not split: 300 escapes in a request line would be a list of
    # 300 strings, and each piece a copy
    b = s.encode()
    mv = memoryview(b)
    n = len(b)
    i = b.find(b"%")
    out = bytearray(mv[:i])
    while i >= 0:
        if i + 2 >= n:
            raise ValueError("bad percent escape")
        out.append(_hex(b[i + 1]) << 4 | _hex(b[i + 2]))
        j = b.find(b"%", i + 3)
        out.extend(mv[i + 3:j if j >= 0 else n])
        i = j
    if max(out) >= 0xC0 and not_shortest_utf8(out):
        raise ValueError("overlong UTF-8")
    return str(bytes(out), "utf-8")


def _hex(c):
    # the value of one hex digit's byte; ValueError for any other byte
    if 48 <= c <= 57:
        return c - 48
    c |= 32  # lower case
    if 97 <= c <= 102:
        return c - 87
    raise ValueError("bad percent escape")


def not_shortest_utf8(b):
    # MicroPython's decoder (unlike CPython's) accepts overlong forms and surrogates: b"\xc0\xae"
    # iterates as "." and b"\xc0\x8a" as "\n". Refuse them, so an escape never turns into either.
    for i in range(len(b) - 1):
        c = b[i]
        if c >= 0xC0:
            d = b[i + 1]
            if c < 0xC2 or c > 0xF4 or (c == 0xE0 and d < 0xA0) or (c == 0xF0 and d < 0x90):
                return True
            if (c == 0xED and d > 0x9F) or (c == 0xF4 and d > 0x8F):
                return True
    return False


def parse_qs(query):
    """A query string as a dict; HTTPError 400 on a bad escape.

    Example::

        parse_qs("a=1&b=x+y")  # -> {"a": "1", "b": "x y"}
    """
    args = {}
    if query:
        for item in query.split("&"):
            if item:
                k, _, v = item.partition("=")
                try:
                    args[unquote(k, True)] = unquote(v, True)
                except (ValueError, UnicodeError):
                    raise HTTPError(400, "bad query string")
    return args
