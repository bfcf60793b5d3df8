"""Static files over the wire (firmware/nostall/static.py): the dashboard's files as the board
keeps them (firmware/www/*.gz) go out gzip-encoded with Vary, ETag and Cache-Control, decompress
to their sources in dashboard/, answer If-None-Match with a 304 that carries no body (the next
request on the connection proves it), HEAD like GET, 406 to a client that refuses gzip; with a
www root of the test's own: the .gz twin or the plain file by Accept-Encoding, and tags that
change when the content does, even at the same size."""

import gzip
import os

import pytest
import requests

from harness.paths import ROOT

DASHBOARD = os.path.join(ROOT, "dashboard")
FILES = [("index.html", "/", "text/html; charset=utf-8"), ("app.js", "/app.js", "text/javascript"),
         ("style.css", "/style.css", "text/css")]
GZ = {"Accept-Encoding": "gzip, deflate, br"}


def source(name):
    with open(os.path.join(DASHBOARD, name), "rb") as f:
        return f.read()


@pytest.mark.parametrize("name,path,ctype", FILES, ids=[f[0] for f in FILES])
def test_dashboard_files_gzip_etag_304(board, name, path, ctype):
    with board.connect() as c:
        r = c.request("GET", path, GZ)
        assert r.status == 200, r
        h = r.headers
        assert h["content-type"] == ctype and h["content-encoding"] == "gzip" and h["vary"] == "Accept-Encoding"
        assert h["cache-control"] == "no-cache" and int(h["content-length"]) == len(r.body)
        assert gzip.decompress(r.body) == source(name)  # what the board holds is today's source
        tag = h["etag"]
        assert tag.startswith('"') and tag.endswith('"') and len(tag) > 4
        # revalidation: 304, the same tag and caching headers, no body and no length
        for inm in (tag, "W/" + tag, '"stale-1", ' + tag, "*"):
            r304 = c.request("GET", path, dict(GZ, **{"If-None-Match": inm}))
            assert r304.status == 304, (inm, r304)
            assert r304.headers["etag"] == tag and r304.headers["cache-control"] == "no-cache"
            assert r304.headers["vary"] == "Accept-Encoding"
            for k in ("content-length", "transfer-encoding", "content-encoding", "content-type"):
                assert k not in r304.headers, (k, r304)
        # the 304 sent no body: the next answer on this connection starts right at its status line
        again = c.request("GET", path, dict(GZ, **{"If-None-Match": '"stale-1"'}))
        assert again.status == 200 and again.body == r.body and again.headers["etag"] == tag
        head = c.request("HEAD", path, GZ)
        assert head.status == 200 and head.body == b""
        for k in ("content-length", "content-encoding", "etag", "vary", "content-type"):
            assert head.headers[k] == h[k], k
        assert c.request("GET", "/api/led").status == 200  # still the same connection


def test_tags_differ_between_files(board):
    with board.connect() as c:
        tags = {c.request("GET", path, GZ).headers["etag"] for _, path, _ in FILES}
        assert len(tags) == len(FILES)
        r = c.request("GET", "/app.js", dict(GZ, **{"If-None-Match": c.request("GET", "/", GZ).headers["etag"]}))
        assert r.status == 200


def test_requests_decodes_what_it_asked_for(board):
    with board.client():
        r = requests.get(board.url + "/app.js", timeout=5)  # requests sends Accept-Encoding: gzip
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.content == source("app.js")


def test_gzip_only_file_to_a_client_that_refuses_gzip(board):
    with board.connect() as c:
        for value in ("identity", "br", "gzip;q=0", ""):
            r = c.request("GET", "/style.css", {"Accept-Encoding": value})
            assert r.status == 406 and r.headers["vary"] == "Accept-Encoding", (value, r)
            assert b"Accept-Encoding: gzip" in r.body and "connection" not in r.headers  # kept open
        # no Accept-Encoding at all: any coding will do (RFC 9110 12.5.3), and gzip is what there is
        r = c.request("GET", "/style.css")
        assert r.status == 200 and r.headers["content-encoding"] == "gzip"
        assert gzip.decompress(r.body) == source("style.css")


def _tag(c, path, headers=None):
    r = c.request("GET", path, headers)
    assert r.status == 200, r
    return r.headers["etag"], r


def test_twins_and_tags_in_a_root_of_its_own(make_sim, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "both.txt").write_bytes(b"the plain copy\n")
    (www / "both.txt.gz").write_bytes(gzip.compress(b"the gzip copy\n", mtime=0))
    (www / "note.txt.gz").write_bytes(gzip.compress(b"value=5\n", mtime=0))
    (www / "pic.png").write_bytes(b"\x89PNG not really")
    t = make_sim(www=str(www))
    with t.connect() as c:
        # both on flash: each client gets what it takes; without Accept-Encoding the plain copy
        r = c.request("GET", "/both.txt", GZ)
        assert gzip.decompress(r.body) == b"the gzip copy\n" and r.headers["vary"] == "Accept-Encoding"
        for headers in ({}, {"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0, br"}):
            p = c.request("GET", "/both.txt", headers)
            assert p.status == 200 and p.body == b"the plain copy\n" and "content-encoding" not in p.headers
            assert p.headers["vary"] == "Accept-Encoding" and p.headers["etag"] != r.headers["etag"]
        # a .gz's tag comes from its content (the CRC in its trailer): a one-character change of
        # the same size, written within the same second, still gives another tag
        tag1, _ = _tag(c, "/note.txt", GZ)
        st = os.stat(www / "note.txt.gz")
        (www / "note.txt.gz").write_bytes(gzip.compress(b"value=6\n", mtime=0))
        os.utime(www / "note.txt.gz", ns=(st.st_atime_ns, st.st_mtime_ns))
        assert os.stat(www / "note.txt.gz").st_size == st.st_size
        r = c.request("GET", "/note.txt", dict(GZ, **{"If-None-Match": tag1}))
        assert r.status == 200 and gzip.decompress(r.body) == b"value=6\n" and r.headers["etag"] != tag1
        # a plain file's tag comes from its size and mtime
        tag2, r = _tag(c, "/pic.png", GZ)
        assert r.headers["content-type"] == "image/png" and "vary" not in r.headers
        assert c.request("GET", "/pic.png", {"If-None-Match": tag2}).status == 304
        os.utime(www / "pic.png", (1_000_000_000, 1_000_000_000))
        tag3, _ = _tag(c, "/pic.png", {"If-None-Match": tag2})
        assert tag3 != tag2
        assert c.request("GET", "/nothing.txt", GZ).status == 404


def test_gzip_and_plain_copies_have_tags_of_their_own(make_sim, tmp_path):
    """RFC 9110 8.8.3: the gzip-encoded and the plain copy of one URL are two representations and
    never share a tag, even where the tag comes from size and mtime and those are equal; each
    answers If-None-Match with a 304 only for its own tag, and both say Vary: Accept-Encoding."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "twin.txt").write_bytes(b"0123456789")  # the same size as its .gz, too short for a trailer
    (www / "twin.txt.gz").write_bytes(b"not gzip!!")
    (www / "page.txt").write_bytes(b"the plain copy\n")
    (www / "page.txt.gz").write_bytes(gzip.compress(b"the plain copy\n", mtime=0))
    for name in ("twin.txt", "twin.txt.gz"):
        os.utime(www / name, (1_700_000_000, 1_700_000_000))
    t = make_sim(www=str(www))
    with t.connect() as c:
        for path in ("/twin.txt", "/page.txt"):
            g = c.request("GET", path, GZ)
            p = c.request("GET", path, {"Accept-Encoding": "identity"})
            assert g.headers["content-encoding"] == "gzip" and "content-encoding" not in p.headers, path
            gtag, ptag = g.headers["etag"], p.headers["etag"]
            assert gtag != ptag and gtag.endswith('-gz"') and not ptag.endswith('-gz"'), (path, gtag, ptag)
            for headers, own, other in ((GZ, gtag, ptag), ({"Accept-Encoding": "identity"}, ptag, gtag)):
                r = c.request("GET", path, dict(headers, **{"If-None-Match": own}))
                assert r.status == 304 and r.headers["etag"] == own and r.headers["vary"] == "Accept-Encoding"
                r = c.request("GET", path, dict(headers, **{"If-None-Match": other}))
                assert r.status == 200 and r.headers["etag"] == own and r.headers["vary"] == "Accept-Encoding"
