# What a handler may return (firmware/nostall/response.py): make_response for every return
# type, the JSON checks, the one error-response builder, a Response naming a file (the files
# themselves: test_static.py).
# Runs on CPython and on MicroPython.

from unitcheck import header, raises

from nostall.config import Config
from nostall.proto import HTTPError, RequestReader
from nostall.words import words
from nostall.response import JSON, TEXT, BadResponse, Response, dumps, error_response, make_response


class Thing:
    pass


def test_each_return_type_becomes_a_response():
    cases = [
        # returned, status, content type, body
        ("hi", 200, TEXT, b"hi"),
        (b"\x00\x01", 200, "application/octet-stream", b"\x00\x01"),
        ({"a": 1}, 200, JSON, b'{"a": 1}'),
        ([1, "x", None, True], 200, JSON, b'[1, "x", null, true]'),
        (None, 204, None, b""),
        (("made", 201), 201, TEXT, b"made"),
        ((None, 202), 202, None, b""),
        (({"e": 1}, 422, {"X-A": "b"}), 422, JSON, b'{"e": 1}'),
        ((Response("r"), 418), 418, TEXT, b"r"),
    ]
    for rv, status, ctype, body in cases:
        r = make_response(rv)
        assert (r.status, header(r, "Content-Type"), bytes(r.body)) == (status, ctype, body), rv
        assert r.length == len(body) and not r.streamed
    assert header(make_response(({"e": 1}, 422, {"X-A": "b"})), "X-A") == "b"


def test_what_cannot_be_sent_is_a_bad_response():
    for rv in (Thing(), 42, 1.5, ("x", "teapot"), ("x", 12345), ("x", 99), ("x", 200, {}, "extra"),
               {"a": Thing()}, {"n": float("nan")}, [float("inf")], {1.5: "float key"},
               {"b": bytearray(b"x")}, {"s": set()}):
        with raises(BadResponse):
            make_response(rv)
    with raises(ValueError):  # headers that are no pairs: App.dispatch makes it a BadResponse
        make_response(("x", 200, "not a dict"))


def test_json_nesting_is_capped():
    ok = []
    for _ in range(20):
        ok = [ok]
    assert dumps(ok).startswith(b"[[")
    with raises(BadResponse, "deeper than 20"):
        dumps([ok])


def test_header_values_are_checked_however_they_got_there():
    with raises(BadResponse):
        Response("x", headers={"X-A": "a\r\nSet-Cookie: b"})
    r = Response("x")
    r.headers.append(("X-A", "a\nb"))  # appended directly, past set_header
    with raises(ValueError):
        make_response(r)


def test_streams_and_files_have_no_body_and_maybe_a_length():
    s = Response(stream=iter([b"a"]))
    assert s.streamed and s.length is None and header(s, "Content-Type") == "application/octet-stream"
    f = Response(b"", file="/x", length=7, content_type="text/css")
    assert f.streamed and f.length == 7 and f.file == "/x"


def test_one_error_builder():
    r = error_response(404, "no route for /x", (("X-A", "b"),))
    assert r.status == 404 and bytes(r.body) == b"404 Not Found: no route for /x\n"
    assert header(r, "Content-Type") == TEXT
    assert header(r, "X-Content-Type-Options") == "nosniff"  # the reason may quote the request
    assert header(r, "X-A") == "b"


def test_the_servers_own_refusals_are_numbers_with_words():
    # the reader refuses with a number (words.py's row): the HTTPError an app may catch has its
    # words, and so has the answer
    r = RequestReader(Config())
    r.feed(b"GET / HTTP/1.1\nHost: x\n\n")
    with raises(HTTPError) as e:
        r.next()
    assert e.value.status == 400 and e.value.reason == "bare LF line ending" == str(e.value)
    body = bytes(error_response(400, e.value.reason).body)
    assert body == b"400 Bad Request: bare LF line ending\n", body
    assert words(1) == "request line too long"  # the first row
