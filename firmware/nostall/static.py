# Files on flash as responses, made for browsers: a precompressed twin (name.gz) sent gzip-encoded,
# entity tags with If-None-Match (304, no body), Cache-Control, content types by extension.
# Pure: nothing here touches a socket; the server opens the file when it sends it (only a .gz
# file's 8-byte trailer is read here, for its tag). (Never say "coding" and a colon in line 1 or
# 2 of a file: CPython takes it for the source encoding.)
#
# Which file answers a request for "app.js":
#   - "app.js.gz" when it exists and the client accepts gzip (Accept-Encoding names gzip, or *,
#     with q > 0); also to a client that sent no Accept-Encoding when there is no "app.js"
#     (RFC 9110 12.5.3: no Accept-Encoding means any coding is acceptable);
#   - else "app.js";
#   - when only the .gz is on flash and the client refuses gzip: 406. Decompressing on the board
#     would need a 32 KB window (the gzip format does not say how small a window would do): a
#     C3's heap cannot spare it for a client that is not a browser.
# Entity tags cost no hashing on the board: a .gz file's tag is the CRC-32 of its content, read
# from its gzip trailer (computed when it was built), and its size; another file's tag is its
# size and modification time (os.stat). A one-character edit to the dashboard gives a .gz of the
# same size, and a board without a clock may write it at the same second after a reset as the
# last one: its size and mtime would not tell the two apart, its CRC does. A tag sent with
# Content-Encoding: gzip ends in "-gz", which no identity tag does: the two representations of
# one URL never share a tag (RFC 9110 8.8.3), so a cache never takes one for the other.

import os

from nostall.request import HTTPError
from nostall.response import Response, error_response

CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "htm": "text/html; charset=utf-8",
    "css": "text/css",
    "js": "text/javascript",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "ico": "image/x-icon",
    "webp": "image/webp",
    "woff2": "font/woff2",
    "wasm": "application/wasm",
    "gz": "application/gzip",  # asked for by its own name: a download, not an encoding
}
NO_CACHE = "no-cache"  # the browser keeps the file but asks (If-None-Match) before each use
_NO_HEADERS = {}
_TRAILER = bytearray(8)  # a .gz file's CRC-32 and length; read between two awaits, never shared
_GZ_SMALLEST = 18  # bytes: a gzip header (10) and trailer (8) with nothing between


def content_type(path):
    ext = path.rpartition(".")[2].lower()
    return CONTENT_TYPES.get(ext, "application/octet-stream")


def accepts_gzip(accept_encoding):
    """Whether an Accept-Encoding value accepts gzip: its gzip (or x-gzip) entry, else its *
    entry, with a q-value above 0; a q-value that is not a number counts as 0.

    Example::

        accepts_gzip("gzip, deflate, br")   # -> True
        accepts_gzip("*;q=1, gzip;q=0")     # -> False
    """
    star = None
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if coding != "gzip" and coding != "x-gzip" and coding != "*":
            continue
        ok = True
        for p in params.split(";"):
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    ok = float(value.strip()) > 0
                except ValueError:
                    ok = False
        if coding != "*":
            return ok
        star = ok
    return star is True


def etag_matches(if_none_match, etag):
    """Whether an If-None-Match value matches etag (a quoted tag, W/ allowed): the weak
    comparison of RFC 9110 13.1.2, so W/ on either side is ignored; "*" matches any file there
    is. A malformed value matches nothing (the full answer goes out).

    Example::

        etag_matches('W/"a1", "b2"', '"b2"')   # -> True
    """
    if etag.startswith("W/"):
        etag = etag[2:]
    n = len(if_none_match)
    size = len(etag)
    i = 0
    while i < n:
        c = if_none_match[i]
        if c == " " or c == "\t" or c == ",":
            i += 1
            continue
        if c == "*":
            return True
        if if_none_match.startswith("W/", i):
            i += 2
        if i >= n or if_none_match[i] != '"':
            return False
        j = if_none_match.find('"', i + 1)  # an entity tag holds no quote
        if j < 0:
            return False
        if j + 1 - i == size and if_none_match.startswith(etag, i):
            return True
        i = j + 1
    return False


def send_file(root, path, req=None, max_age=None):
    """A Response sending root/path (or its .gz twin), or a 304 or 406 answer; HTTPError 404
    when there is no such file. path may not leave root. req: the request, for Accept-Encoding and If-None-Match; max_age: seconds the
    browser may use the file without asking (default: it asks every time, Cache-Control: no-cache).

    Example::

        @app.get("/log")
        def log(req):
            return send_file("/data", "log.txt", req)
    """
    if "\\" in path or "\0" in path:
        raise HTTPError(400, "bad character in path")
    if _dot_segment(path):
        raise HTTPError(404, "no such file")
    full = root + "/" + path.lstrip("/")
    headers = req.headers if req is not None else _NO_HEADERS
    accept = headers.get("accept-encoding")
    gz = full + ".gz"
    st = _stat(gz)
    if st is not None:
        wants = accept is None or accepts_gzip(accept)
        plain = None if wants and accept is not None else _stat(full)
        if plain is not None:
            served, st, encoding = full, plain, None
        elif wants:
            served, encoding = gz, "gzip"
        else:
            r = error_response(406, "this file is kept gzip-compressed only: send Accept-Encoding: gzip")
            r.set_header("Vary", "Accept-Encoding")
            return r
    else:
        st = _stat(full)
        if st is None:
            raise HTTPError(404, "no such file")
        served, encoding, gz = full, None, None
    size = st[6]
    etag = _gzip_tag(served, st) if encoding else '"%x-%x"' % (st[8], size)
    cache = NO_CACHE if max_age is None else "max-age=%d" % max_age
    inm = headers.get("if-none-match")
    if inm is not None and etag_matches(inm, etag):
        r = Response(b"", 304)
    else:
        r = Response(b"", 200, content_type=content_type(full), file=served, length=size)
        if encoding:
            r.set_header("Content-Encoding", encoding)
    r.set_header("ETag", etag)
    r.set_header("Cache-Control", cache)
    if gz is not None:  # which file answers depends on Accept-Encoding
        r.set_header("Vary", "Accept-Encoding")
    return r


def _dot_segment(path):
    # a "." or ".." segment anywhere in path, found without splitting it: a request line of 300
    # "../" would cost a list of 300 strings, and on a fragmented heap a MemoryError (a 500)
    i, n = 0, len(path)
    while i <= n:
        j = path.find("/", i)
        if j < 0:
            j = n
        if (j - i == 2 and path.startswith("..", i)) or (j - i == 1 and path.startswith(".", i)):
            return True
        i = j + 1
    return False


def _stat(path):
    # the file's os.stat, or None when there is none (or it is a directory)
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st[0] & 0x4000:
        return None
    return st


def _gzip_tag(path, st):
    # '"<CRC-32>-<size>-gz"' from the gzip trailer (RFC 1952: CRC-32, then the length,
    # little-endian); "-gz": never the tag of the identity representation
    size = st[6]
    if size < _GZ_SMALLEST:  # not gzip: its size and mtime, still marked as the gzip one
        return '"%x-%x-gz"' % (st[8], size)
    try:
        with open(path, "rb") as f:
            f.seek(size - len(_TRAILER))
            if f.readinto(_TRAILER) != len(_TRAILER):
                return '"%x-%x-gz"' % (st[8], size)
    except OSError:
        raise HTTPError(404, "no such file")
    t = _TRAILER
    return '"%02x%02x%02x%02x-%x-gz"' % (t[3], t[2], t[1], t[0], size)


def file_pieces(path, size):
    """The file at path in pieces of size bytes: one buffer per transfer, yielding views of it,
    each sent before the next read."""
    with open(path, "rb") as f:
        buf = bytearray(size)
        mv = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                return
            yield mv[:n]
