# The multipart/form-data reader (firmware/nostall/multipart.py): browser forms fed whole, byte by
# byte and in seeded random splits (the same events every way), preamble, epilogue, padding,
# content that looks like a boundary, header parameters as browsers escape them, a 200 KB file
# streamed through the fixed carry, and every refusal with its status. Runs on CPython and on
# MicroPython.

import hashlib

from unitcheck import Lcg, raises

from nostall.multipart import _BODY, DATA, DONE, END, PART, MultipartError, MultipartReader, boundary
from nostall.request import HTTPError

CT = "multipart/form-data; boundary=----WebKitFormBoundaryx7Gq2cLqv0k1Rz3A"
B = b"------WebKitFormBoundaryx7Gq2cLqv0k1Rz3A"  # "--" and the boundary: a line of the body


def part(headers, content):
    return B + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + content + b"\r\n"


def field(name, value):
    return part([b'Content-Disposition: form-data; name="' + name + b'"'], value)


def upload(name, filename, content, ctype=b"application/octet-stream"):
    disp = b'Content-Disposition: form-data; name="' + name + b'"; filename="' + filename + b'"'
    return part([disp, b"Content-Type: " + ctype], content)


FORM = field(b"title", b"Hello, world") + upload(b"file", b"a.bin", b"\x00\x01\r\n\xff") + B + b"--\r\n"
FORM_EVENTS = [(PART, ("title", None, "text/plain")), (DATA, b"Hello, world"), (END, None),
               (PART, ("file", "a.bin", "application/octet-stream")), (DATA, b"\x00\x01\r\n\xff"), (END, None),
               (DONE, None)]


def pieces(data, how, seed=1):
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    rnd = Lcg(seed)
    out = []
    i = 0
    while i < len(data):
        n = rnd.randint(1, 3 * len(B))
        out.append(data[i : i + n])
        i += n
    return out


def check(r):
    # the reader's memory: the carry, never replaced; in content, less than a delimiter held
    assert len(r.carry) == max(r.max_header_bytes, len(r.delim))
    assert 0 <= r.n <= len(r.carry)
    if r.state == _BODY:
        assert r.n < len(r.delim)


def events(data, how="whole", seed=1, ct=CT, **limits):
    """The events of data fed in pieces: PART as (name, filename, content_type), DATA as bytes
    (each run of DATA joined), then eof() checked."""
    r = MultipartReader(ct, **limits)
    carry = r.carry
    out = []
    for piece in pieces(data, how, seed):
        r.feed(piece)
        while True:
            ev = r.next()
            check(r)
            if ev is None:
                break
            kind, v = ev
            if kind == PART:
                v = (v.name, v.filename, v.content_type)
            elif kind == DATA:
                assert len(v) > 0
                v = bytes(v)
                if out and out[-1][0] == DATA:
                    out[-1] = (DATA, out[-1][1] + v)
                    continue
            out.append((kind, v))
    assert r.carry is carry
    r.eof()
    return out


def refused(data, status, why, how="whole", **limits):
    with raises(MultipartError, why) as e:
        events(data, how, **limits)
    assert e.value.status == status
    return e.value


def test_boundary_quoted_or_not():
    assert boundary(CT) == B[2:]
    assert boundary('Multipart/Form-Data; charset=utf-8; Boundary="a b:c"') == b"a b:c"
    assert boundary(b"multipart/form-data;boundary=x;foo") == b"x"
    assert boundary('multipart/form-data; name; boundary="q=x"; charset=x') == b"q=x"


def test_bad_content_types():
    for ct, status in (("text/plain", 415), ("multipart/mixed; boundary=x", 415), ("multipart/form-data", 400),
                       ("multipart/form-data; boundary=", 400), ('multipart/form-data; boundary=""', 400),
                       ('multipart/form-data; boundary="x', 400), ("multipart/form-data; boundary=" + "x" * 71, 400),
                       ("multipart/form-data; boundary=a\rb", 400), ('multipart/form-data; boundary="ab "', 400),
                       ("multipart/form-data; boundary=a\u00e9", 400)):
        with raises(MultipartError) as e:
            MultipartReader(ct)
        assert e.value.status == status, ct
        assert isinstance(e.value, HTTPError)  # a handler that lets it through answers with its status


def test_limits_checked_at_construction():
    for limits in ({"max_header_bytes": 10}, {"max_parts": 0}, {"max_field_bytes": -1}):
        with raises(ValueError, "multipart limits"):
            MultipartReader(CT, **limits)


def test_browser_form_whole_byte_by_byte_and_split():
    assert events(FORM) == FORM_EVENTS
    assert events(FORM, "bytes") == FORM_EVENTS
    for seed in range(1, 30):
        assert events(FORM, "split", seed) == FORM_EVENTS


def test_data_are_views_of_the_piece_fed():
    piece = bytearray(FORM)
    r = MultipartReader(CT)
    r.feed(piece)
    assert r.next()[0] == PART
    kind, v = r.next()
    assert kind == DATA and isinstance(v, memoryview)
    piece[piece.find(b"Hello")] = ord("J")  # not copied: the view shows the piece as it is
    assert bytes(v) == b"Jello, world"


def test_preamble_padding_and_epilogue_ignored():
    body = (b"This is a preamble.\r\n--x--\r\n" + B + b" \t \r\n" + b'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n'
            + B + b"--  \r\nan epilogue\r\n" + B + b"\r\n")
    want = [(PART, ("a", None, "text/plain")), (DATA, b"1"), (END, None), (DONE, None)]
    for how in ("whole", "bytes", "split"):
        assert events(body, how) == want


def test_closing_boundary_without_crlf_and_empty_forms():
    assert events(field(b"a", b"") + B + b"--") == [(PART, ("a", None, "text/plain")), (END, None), (DONE, None)]
    assert events(B + b"--") == [(DONE, None)]
    assert events(b"\r\n" + B + b"--\r\n") == [(DONE, None)]


def test_content_that_looks_like_a_boundary():
    tricky = (b"\r\n--" + B[2:-1] + b"\r\r\n-\r\n--\r" + B + b"x" + b"\r\n" + B[:-1] + b"\r\n\r\r\n--" + B[2:20])
    body = upload(b"f", b"t.bin", tricky) + field(b"g", B + b"--") + B + b"--\r\n"
    want = [(PART, ("f", "t.bin", "application/octet-stream")), (DATA, tricky), (END, None),
            (PART, ("g", None, "text/plain")), (DATA, B + b"--"), (END, None), (DONE, None)]
    assert events(body) == want
    assert events(body, "bytes") == want
    for seed in range(1, 40):
        assert events(body, "split", seed) == want


def test_header_parameters_as_browsers_send_them():
    body = (part([b'content-disposition: form-data; name="a%22b%0D%0Ac"; filename="x;y%22.txt"',
                  b"CONTENT-TYPE:  text/csv ", b"X-Other: ignored"], b"1")
            + part([b'Content-Disposition: form-data; name="q\\"uo\\\\te"; filename="C:\\\\dir\\\\f.txt"'], b"2")
            + part([b"Content-Disposition: form-data; name=plain; filename*=UTF-8''x.txt"], b"3")
            + part([b'Content-Disposition: form-data; name="raw"; filename="a\\b.txt"'], b"3")
            + part(['Content-Disposition: form-data; name="\u00e9t\u00e9"; filename="\u65e5\u672c.txt"'.encode()], b"4")
            + part([b'Content-Disposition: form-data; name="empty"; filename=""'], b"")
            + B + b"--\r\n")
    parts = [v for k, v in events(body) if k == PART]
    assert parts == [('a"b\r\nc', 'x;y".txt', "text/csv"), ('q"uo\\te', "C:\\dir\\f.txt", "text/plain"),
                     ("plain", None, "text/plain"), ("raw", "a\\b.txt", "text/plain"),
                     ("\u00e9t\u00e9", "\u65e5\u672c.txt", "text/plain"),
                     ("empty", "", "text/plain")]


def test_big_file_streamed_through_a_bounded_carry():
    content = bytes(range(256)) * 800  # 200 KB, with CRs and dashes all through it
    body = upload(b"fw", b"big.bin", content) + B + b"--\r\n"
    for size in (1460, 4096, 73, 7):
        r = MultipartReader(CT)
        h = hashlib.sha256()
        ends = 0
        held = 0
        for i in range(0, len(body), size):
            piece = body[i : i + size]
            r.feed(piece)
            while True:
                ev = r.next()
                check(r)
                held = max(held, r.n)
                if ev is None:
                    break
                if ev[0] == DATA:
                    assert len(ev[1]) <= max(len(piece), len(r.delim) - 1)
                    h.update(ev[1])
                ends += ev[0] == END
        r.eof()
        assert ends == 1 and h.digest() == hashlib.sha256(content).digest()
        assert held <= r.max_header_bytes and len(r.carry) == 1024


def test_field_values_bounded_file_contents_not():
    assert events(field(b"a", b"x" * 16) + B + b"--", max_field_bytes=16)[1] == (DATA, b"x" * 16)
    refused(field(b"a", b"x" * 17) + B + b"--", 413, "form field too large", max_field_bytes=16)
    refused(field(b"a", b"x" * 17) + B + b"--", 413, "form field too large", "bytes", max_field_bytes=16)
    big = upload(b"f", b"f", b"x" * 5000) + B + b"--"
    assert events(big, "split", max_field_bytes=16)[1] == (DATA, b"x" * 5000)


def test_too_many_parts():
    form = field(b"a", b"1") * 3
    assert len(events(form + B + b"--", max_parts=3)) == 10
    refused(form + field(b"a", b"1") + B + b"--", 413, "too many parts", max_parts=3)
    refused(form + B + b"\r\n", 413, "too many parts", "bytes", max_parts=3)


def test_part_headers_too_large_refused_as_soon_as_seen():
    disp = b'Content-Disposition: form-data; name="a"'
    ok = part([disp, b"X: " + b"y" * (200 - len(disp) - 9)], b"1") + B + b"--"
    assert events(ok, max_header_bytes=200)[0] == (PART, ("a", None, "text/plain"))
    long = part([disp, b"X: " + b"y" * (201 - len(disp) - 9)], b"1") + B + b"--"
    refused(long, 413, "part headers too large", max_header_bytes=200)
    refused(long, 413, "part headers too large", "bytes", max_header_bytes=200)
    r = MultipartReader(CT, max_header_bytes=200)
    r.feed(B + b"\r\n")
    assert r.next() is None
    with raises(MultipartError, "part headers too large"):
        for _ in range(300):  # a line that never ends: refused at byte 201, not held
            r.feed(b"y")
            r.next()
    assert r.n <= 200


def test_malformed_heads():
    disp = b'Content-Disposition: form-data; name="a"'
    for heads, why in (([disp, b"no colon here"], "bad part header line"),
                       ([disp, b": no name"], "bad part header line"),
                       ([disp, b" folded: line"], "bad part header line"),
                       ([b"Content-Type: text/plain"], "part without a Content-Disposition name"),
                       ([b'Content-Disposition: form-data; filename="f"'], "part without a Content-Disposition name"),
                       ([b'Content-Disposition: attachment; name="a"'], "bad Content-Disposition"),
                       ([b'Content-Disposition: form-data; name="a'], "bad Content-Disposition"),
                       ([b'Content-Disposition: form-data; name="\xff"'], "not UTF-8")):
        for how in ("whole", "bytes"):
            refused(part(heads, b"1") + B + b"--", 400, why, how)


def test_bare_lf_and_junk_after_a_boundary():
    disp = b'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n'
    for body, why in ((B + b"\n" + disp, "bare LF"), (B + b" \n" + disp, "bare LF"),
                      (B + b"\r\nContent-Disposition: form-data; name=a\n\r\n", "bare LF"),
                      (B + b"x\r\n" + disp, "junk after a multipart boundary"),
                      (B + b" \t x\r\n" + disp, "junk after a multipart boundary"),
                      (B + b" " * 40 + b"\r\n" + disp, "junk after a multipart boundary")):
        for how in ("whole", "bytes"):
            refused(body + B + b"--", 400, why, how)


def test_no_closing_boundary():
    for body in (b"", b"no form at all", FORM[: len(FORM) - 4], field(b"a", b"1"), field(b"a", b"1") + B,
                 field(b"a", b"1") + B + b"-", field(b"a", b"1") + B + b"\r\n", B[:-1] + b"--"):
        for how in ("whole", "bytes"):
            refused(body, 400, "no closing boundary", how)


def test_after_done_nothing_more_and_after_an_error_nothing_more():
    r = MultipartReader(CT)
    r.feed(B + b"--\r\n")
    assert r.next() == (DONE, None)
    assert r.next() is None
    r.feed(field(b"late", b"1"))
    assert r.next() is None
    r.eof()
    r = MultipartReader(CT)
    r.feed(B + b"xy\r\n")
    with raises(MultipartError, "junk"):
        r.next()
    with raises(MultipartError, "already refused"):
        r.next()
    with raises(MultipartError):
        r.eof()


def test_feed_only_once_a_piece_is_used_up():
    r = MultipartReader(CT)
    r.feed(FORM)
    assert r.next()[0] == PART
    with raises(ValueError, "feed() before next() returned None"):
        r.feed(b"more")
