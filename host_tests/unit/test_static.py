# Files on flash as responses (firmware/nostall/static.py): Accept-Encoding parsing, If-None-Match
# matching (W/, *, lists), which file answers (the .gz twin, the plain one, 406), entity tags from
# the gzip trailer or from size and mtime, 304s, content types, paths that may not leave the root.
# The files are in static_files/ beside this module. Runs on CPython and on MicroPython.

import binascii
import os

from unitcheck import header, raises

from nostall.request import HTTPError, Request
from nostall.static import accepts_gzip, content_type, etag_matches, send_file
from nostall.web import App

HERE = __file__.rpartition("/")[0] or "."
ROOT = HERE + "/static_files"


def req(headers=None, target="/"):
    # as the reader makes them: header names in lower case
    return Request("GET", target, "HTTP/1.1", dict((k.lower(), v) for k, v in (headers or {}).items()))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_accept_encoding():
    cases = [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),  # Chromium
        ("GZIP", True),
        ("x-gzip", True),
        ("deflate, gzip;q=1.0, *;q=0.5", True),
        ("gzip;q=0.001", True),
        (" gzip ; q=0.5 ", True),
        ("gzip;level=1;q=0.2", True),  # other parameters are not q
        ("*", True),
        ("*;q=0.1", True),
        ("br;q=1, *;q=0.3", True),
        ("", False),  # RFC 9110 12.5.3: an empty value asks for no coding
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip;Q=0", False),
        ("*;q=0", False),
        ("*, gzip;q=0", False),  # gzip's own entry wins over *, whichever comes first
        ("gzip;q=0, *", False),
        ("gzip;q=0, *;q=1", False),
        ("*;q=0, gzip", True),
        ("gzip;q=abc", False),  # not a number: not accepted
        ("gzipx, xgzip, gzip-x", False),
        ("identity;q=0, gzip", True),
        (",,gzip,,", True),
    ]
    for value, want in cases:
        assert accepts_gzip(value) is want, (value, want)


def test_if_none_match():
    tag = '"5f1e2d3c-1a2"'
    cases = [
        ('"5f1e2d3c-1a2"', True),
        ('W/"5f1e2d3c-1a2"', True),  # weak comparison: W/ ignored
        ('"other", "5f1e2d3c-1a2"', True),
        ('"other","5f1e2d3c-1a2"', True),
        ('"other" ,\t W/"5f1e2d3c-1a2" , "x"', True),
        ("*", True),
        (" * ", True),
        ('"5f1e2d3c-1a2', False),  # unterminated
        ('"5f1e2d3c-1a"', False),
        ('"5f1e2d3c-1a2x"', False),
        ('"x5f1e2d3c-1a2"', False),
        ("5f1e2d3c-1a2", False),  # unquoted: malformed, so no match
        ('"a,b", "5f1e2d3c-1a2"', True),  # a comma inside a tag is part of it
        ('"a,"5f1e2d3c-1a2"', False),  # malformed after the first tag: no match
        ('w/"5f1e2d3c-1a2"', False),  # the prefix is case-sensitive
        ('W/ "5f1e2d3c-1a2"', False),
        ("", False),
        (",,,", False),
        ('""', False),
    ]
    for value, want in cases:
        assert etag_matches(value, tag) is want, (value, want)
    assert etag_matches('"a1"', 'W/"a1"') and etag_matches('W/"a1"', 'W/"a1"')


def test_gzip_twin_to_a_client_that_takes_it():
    r = send_file(ROOT, "both.css", req({"Accept-Encoding": "gzip, deflate"}))
    gz = ROOT + "/both.css.gz"
    assert r.status == 200 and r.file == gz and r.length == len(read(gz))
    assert header(r, "Content-Encoding") == "gzip"
    assert header(r, "Content-Type") == "text/css"  # the type of what was asked for, not of a .gz
    assert header(r, "Vary") == "Accept-Encoding"
    assert header(r, "Cache-Control") == "no-cache"
    # the tag is the CRC-32 of the content (from the gzip trailer) and the .gz file's size, marked gzip
    want = '"%08x-%x-gz"' % (binascii.crc32(read(ROOT + "/both.css")) & 0xFFFFFFFF, len(read(gz)))
    assert header(r, "ETag") == want, (header(r, "ETag"), want)


def test_plain_twin_to_a_client_that_refuses_gzip_or_says_nothing():
    for headers in ({"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0"}, {"Accept-Encoding": ""}, {}):
        r = send_file(ROOT, "both.css", req(headers))
        st = os.stat(ROOT + "/both.css")
        assert r.status == 200 and r.file == ROOT + "/both.css" and r.length == st[6], headers
        assert header(r, "Content-Encoding") is None
        assert header(r, "Vary") == "Accept-Encoding"  # another Accept-Encoding would get the .gz
        assert header(r, "ETag") == '"%x-%x"' % (st[8], st[6])


def test_gzip_only_file():
    gz = ROOT + "/only.js.gz"
    want = '"%08x-%x-gz"' % (binascii.crc32(read(ROOT + "/only.js.src")) & 0xFFFFFFFF, len(read(gz)))
    # no Accept-Encoding: any coding is acceptable (RFC 9110 12.5.3), and there is nothing else
    for headers in ({}, {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "*"}):
        r = send_file(ROOT, "only.js", req(headers))
        assert r.status == 200 and r.file == gz and header(r, "Content-Encoding") == "gzip", headers
        assert header(r, "Content-Type") == "text/javascript" and header(r, "ETag") == want
    # a client that refuses gzip: 406, saying why (there is no plain copy to send)
    for value in ("identity", "br, deflate", "gzip;q=0", ""):
        r = send_file(ROOT, "only.js", req({"Accept-Encoding": value}))
        assert r.status == 406 and r.file is None and b"Accept-Encoding: gzip" in bytes(r.body), value
        assert header(r, "Vary") == "Accept-Encoding" and header(r, "ETag") is None


def test_plain_file_without_twin():
    for headers in ({}, {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "identity"}):
        r = send_file(ROOT, "plain.txt", req(headers))
        st = os.stat(ROOT + "/plain.txt")
        assert r.status == 200 and r.file == ROOT + "/plain.txt" and r.length == st[6]
        assert header(r, "Content-Type") == "text/plain; charset=utf-8"
        assert header(r, "Vary") is None and header(r, "Content-Encoding") is None
        assert header(r, "ETag") == '"%x-%x"' % (st[8], st[6])


def test_a_gz_asked_for_by_name_is_a_download():
    r = send_file(ROOT, "both.css.gz", req({"Accept-Encoding": "gzip"}))
    assert r.status == 200 and r.file == ROOT + "/both.css.gz"
    assert header(r, "Content-Type") == "application/gzip" and header(r, "Content-Encoding") is None


def test_a_twin_too_short_for_gzip_is_tagged_by_size_and_mtime():
    r = send_file(ROOT, "short.bin", req({"Accept-Encoding": "gzip"}))
    st = os.stat(ROOT + "/short.bin.gz")
    assert r.status == 200 and header(r, "ETag") == '"%x-%x-gz"' % (st[8], st[6])


def test_gzip_and_identity_representations_never_share_a_tag():
    # RFC 9110 8.8.3: the gzip-encoded and the plain copy of one URL are two representations; a
    # shared tag would let a cache answer a client that refuses gzip with the compressed one.
    # Every gzip tag ends in -gz and no identity tag does, whatever sizes and mtimes say
    gz = send_file(ROOT, "both.css", req({"Accept-Encoding": "gzip"}))
    plain = send_file(ROOT, "both.css", req({"Accept-Encoding": "identity"}))
    assert header(gz, "Content-Encoding") == "gzip" and header(plain, "Content-Encoding") is None
    assert header(gz, "ETag").endswith('-gz"') and not header(plain, "ETag").endswith('-gz"')
    assert header(gz, "ETag") != header(plain, "ETag")
    for name in ("only.js", "short.bin"):  # from the trailer, and from size and mtime
        assert header(send_file(ROOT, name, req({"Accept-Encoding": "gzip"})), "ETag").endswith('-gz"'), name
    assert not header(send_file(ROOT, "plain.txt", req({"Accept-Encoding": "gzip"})), "ETag").endswith('-gz"')


def test_not_modified():
    for name, headers in (("both.css", {"Accept-Encoding": "gzip"}), ("both.css", {}), ("plain.txt", {}),
                          ("only.js", {})):
        first = send_file(ROOT, name, req(headers))
        tag = header(first, "ETag")
        for inm in (tag, "W/" + tag, '"nope", ' + tag, "*"):
            h = dict(headers)
            h["If-None-Match"] = inm
            r = send_file(ROOT, name, req(h))
            assert r.status == 304 and r.file is None and r.length == 0 and bytes(r.body) == b"", (name, inm)
            # what a 200 would have said about caching (RFC 9110 15.4.5), no content headers
            assert header(r, "ETag") == tag and header(r, "Cache-Control") == "no-cache"
            assert header(r, "Vary") == header(first, "Vary")
            assert header(r, "Content-Type") is None and header(r, "Content-Encoding") is None
        h = dict(headers)
        h["If-None-Match"] = '"nope"'
        assert send_file(ROOT, name, req(h)).status == 200
    # the gzip twin's tag does not validate the plain copy (another representation), nor back
    gz_tag = header(send_file(ROOT, "both.css", req({"Accept-Encoding": "gzip"})), "ETag")
    r = send_file(ROOT, "both.css", req({"If-None-Match": gz_tag}))
    assert r.status == 200 and r.file == ROOT + "/both.css"
    plain_tag = header(r, "ETag")
    r = send_file(ROOT, "both.css", req({"Accept-Encoding": "gzip", "If-None-Match": plain_tag}))
    assert r.status == 200 and r.file == ROOT + "/both.css.gz"


def test_max_age():
    r = send_file(ROOT, "plain.txt", req(), max_age=60)
    assert header(r, "Cache-Control") == "max-age=60"
    assert header(send_file(ROOT, "plain.txt"), "Cache-Control") == "no-cache"  # without a request


def test_paths_that_may_not_leave_the_root():
    for path, status in (("nothing.html", 404), ("../test_static.py", 404), ("sub/../plain.txt", 404),
                         ("./plain.txt", 404), ("", 404), ("sub", 404), ("sub/", 404), ("sub/..", 404),
                         ("sub/.", 404), ("..", 404), ("sub//../plain.txt", 404), ("../" * 300 + "x", 404),
                         ("a\\b", 400), ("plain.txt\0.png", 400)):
        with raises(HTTPError) as e:
            send_file(ROOT, path, req({"Accept-Encoding": "gzip"}))
        assert e.value.status == status, path
    assert send_file(ROOT, "sub/x.txt").status == 200
    assert send_file(ROOT, "/plain.txt").file == ROOT + "/plain.txt"  # a leading slash stays under root


def test_content_types():
    assert content_type("/a/b.JS") == "text/javascript"
    assert content_type("x.svg") == "image/svg+xml"
    assert content_type("x.html") == "text/html; charset=utf-8"
    assert content_type("x.tar.gz") == "application/gzip"
    assert content_type("noext") == "application/octet-stream"


def test_mounted_in_an_app():
    app = App()
    app.static("/files", ROOT, index="plain.txt")
    app.static("/", ROOT, index="both.css", max_age=5)
    from unitcheck import run

    def get(target, headers=None):
        return run(app.dispatch(req(headers, target)))

    r = get("/files/")
    assert r.status == 200 and r.file == ROOT + "/plain.txt"
    r = get("/files/sub/x.txt")
    assert r.file == ROOT + "/sub/x.txt"
    r = get("/", {"Accept-Encoding": "gzip"})
    assert r.file == ROOT + "/both.css.gz" and header(r, "Cache-Control") == "max-age=5"
    r = get("/%2e%2e/test_static.py")
    assert r.status == 404
    r = get("/only.js", {"Accept-Encoding": "identity"})
    assert r.status == 406
