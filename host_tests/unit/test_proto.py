"""The sans-IO protocol core: the table (harness/proto_table.py, checked by proto_cases.py) on
CPython (each case whole, byte by byte, and with trailing data) and the same table on the
MicroPython unix port."""

import os

import pytest

import proto_cases
from harness import micropython
from harness.paths import FIRMWARE, HOST_TESTS
from nostall.config import Config, ConfigError
from nostall.framing import CHUNKED, FIXED, NONE, chunk, response_head
from nostall.proto import HTTPError, RequestReader
from nostall.escapes import parse_qs, unquote


@pytest.mark.parametrize("mode", proto_cases.MODES)
@pytest.mark.parametrize("case", proto_cases.CASES, ids=[c[0] for c in proto_cases.CASES])
def test_case(case, mode):
    assert proto_cases.check(case, mode) is None


def test_same_cases_on_micropython():
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proto_cases.py")
    out = micropython.run(script, path=[HOST_TESTS, FIRMWARE], timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    n = len(proto_cases.CASES) * len(proto_cases.MODES)
    assert "%d passed, 0 failed" % n in out.stdout


def test_expect_continue_is_signalled_before_the_body():
    r = RequestReader(Config())
    r.feed(b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert r.next() is None and r.need_continue
    r.feed(b"ok")
    req = r.next()
    assert req.body == b"ok" and not r.need_continue


def test_body_larger_than_receive_buffer():
    cfg = Config(recv_buffer_bytes=256, max_header_bytes=256, max_request_line_bytes=64, max_body_bytes=5000)
    body = bytes(range(256)) * 19
    data = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    got = proto_cases.feed_all(data, False, cfg)
    assert got[0][3] == body and len(got) == 1


def test_a_head_longer_than_the_slot_buffer_gets_a_large_one_while_it_is_read():
    cfg = Config(recv_buffer_bytes=256, max_header_bytes=1024)
    r = RequestReader(cfg)
    own = r.buf
    big = b"GET /a HTTP/1.1\r\nHost: a\r\nX-Long: " + b"v" * 600 + b"\r\n\r\n"
    data = big + b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n"
    got = []
    while data or r.have():
        n = r.feed(data)
        data = data[n:]
        req = r.next()
        if req is not None:
            got.append((req.path, len(r.buf)))
    assert got == [("/a", 1024), ("/b", 1024)]  # the pipelined one read from the large buffer too
    r.space()  # all consumed: the next receive goes into the slot's own buffer
    assert r.buf is own and len(r.buf) == 256
    # longer than max_header_bytes: the 431 at that size, the buffer never larger
    r.feed(b"GET /c HTTP/1.1\r\nX: " + b"v" * 300)
    assert r.next() is None and len(r.buf) == 1024
    r.feed(b"v" * 800)
    with pytest.raises(HTTPError) as e:
        r.next()
    assert e.value.status == 431
    r.reset()
    assert r.buf is own


def test_response_head_and_chunks():
    h = response_head(200, [("Content-Type", "text/plain")], 5, FIXED, True, (5, 99))
    assert h == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
        b"Keep-Alive: timeout=5, max=99\r\n\r\n"
    )
    assert response_head(404, [], 0, FIXED, False).endswith(b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in response_head(200, [], None, CHUNKED, True)
    assert b"Content-Length" not in response_head(204, [], 0, NONE, True)
    assert chunk(b"hello") == b"5\r\nhello\r\n" and chunk(b"") == b"0\r\n\r\n"


def test_body_that_is_not_utf8_is_a_400_not_a_crash():
    # found by fuzz_socket.py: a non-UTF-8 text body to /api/led raised UnicodeError (a 500)
    r = RequestReader(Config())
    r.feed(b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n\xffn")
    req = r.next()
    for attr in ("text", "json"):
        with pytest.raises(HTTPError) as e:
            getattr(req, attr)
        assert e.value.status == 400


def test_urls():
    assert unquote("/a%20b%2Fc") == "/a b/c"
    assert parse_qs("a=1&b=x+y&c=%C3%A9&d") == {"a": "1", "b": "x y", "c": "é", "d": ""}
    with pytest.raises(ValueError):
        unquote("%zz")
    with pytest.raises(HTTPError) as e:
        parse_qs("a=%4")
    assert e.value.status == 400


def test_config_rejects_bad_limits_with_a_fix():
    with pytest.raises(ConfigError, match="unknown limit"):
        Config(max_conections=3)
    with pytest.raises(ConfigError, match="integer"):
        Config(max_connections="4")
    with pytest.raises(ConfigError, match="below its minimum"):
        Config(max_connections=0)


def test_the_usual_header_names_table_is_each_name_lower_cased():
    from nostall import head

    assert head._NAMES and all(v == k.decode().lower() for k, v in head._NAMES.items())


def test_other_header_names_are_learned_up_to_the_bound():
    from nostall import head

    saved = dict(head._NAMES)
    usual = list(saved)[: head._NAMES_MAX - head._NAMES_LEARNED]  # the table's own rows come first
    try:
        for k in list(saved)[len(usual) :]:  # what earlier tests taught it
            del head._NAMES[k]

        def parse(extra):
            r = RequestReader(Config())
            r.feed(b"GET / HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
            return r.next()

        req = parse(b"Sec-Fetch-Mode: cors\r\nReferer: http://b/\r\n")
        assert req.headers["sec-fetch-mode"] == "cors" and req.headers["referer"] == "http://b/"
        assert head._NAMES[b"Sec-Fetch-Mode"] == "sec-fetch-mode" and head._NAMES[b"Referer"] == "referer"
        # a long name is parsed but not kept; then junk fills the table once, and stays out
        parse(b"X-" + b"a" * 40 + b": 1\r\n")
        assert len(head._NAMES) == len(usual) + 2
        req = parse(b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(20)))
        assert req.headers["x-19"] == "19"
        assert len(head._NAMES) == head._NAMES_MAX == len(usual) + 8
        # a name that is not a token is refused, learned or not
        with pytest.raises(HTTPError):
            parse(b"Bad Name: 1\r\n")
    finally:
        head._NAMES.clear()
        head._NAMES.update(saved)

