"""Property tests (hypothesis, CPython) of the multipart/form-data reader (nostall/multipart.py):
forms encoded by urllib3 (names and filenames escaped as browsers do, contents full of CRs, dashes
and prefixes of the delimiter) decode back to exactly their parts whole, byte by byte and in any
split; any bytes, and valid forms broken at random, give events or MultipartError only, the same
ones however split, and the reader never holds more than its fixed carry (in a part's content,
less than one delimiter)."""

import os

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from urllib3.fields import RequestField
from urllib3.filepost import encode_multipart_formdata

from nostall.multipart import _BODY, DATA, DONE, END, PART, MultipartError, MultipartReader

pytestmark = pytest.mark.abuse

# Example counts sized for CI (a few seconds in all), as in test_fuzz.py: FUZZ_SCALE=20 runs twenty
# times as many, with a fresh random seed each run.
SCALE = float(os.environ.get("FUZZ_SCALE") or 1)


def fuzz(n):
    return settings(max_examples=int(n * SCALE), deadline=None, suppress_health_check=list(HealthCheck),
                    derandomize=SCALE == 1, database=None)


BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? "
boundaries = st.one_of(
    st.text(BCHARS, min_size=1, max_size=70).filter(lambda b: not b.endswith(" ")),
    st.just("----WebKitFormBoundary7MA4YWxkTrZu0gW"),
    st.just("-"),
)
# what browsers percent-encode (the HTML standard) reads back; a name that holds those escapes
# itself cannot, nor one whose backslashes read as quoted pairs
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).filter(
    lambda s: not any(x in s for x in ("%22", "%0D", "%0A", "\\\\", '\\"')) and not s.endswith("\\"))
ctypes = st.sampled_from(["application/octet-stream", "image/png", "text/plain; charset=utf-8"])
sizes = st.lists(st.integers(1, 200), min_size=1, max_size=8)


def atoms(b):
    """Content pieces that come close to the delimiter CRLF "--" b."""
    d = b"\r\n--" + b
    return st.one_of(st.binary(max_size=24), st.sampled_from(
        [d[:k] for k in range(1, len(d))] + [b"\r", b"\n", b"\r\n", b"--", b, d[2:], d[:-1] + b"\r\n"]))


@st.composite
def forms(draw, files=True):
    """(boundary, [(name, filename or None, content_type, content)])."""
    b = draw(boundaries)
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        content = b"".join(draw(st.lists(atoms(b.encode()), max_size=12)))
        assume(b"\r\n--" + b.encode() not in content)
        if files and draw(st.booleans()):
            parts.append((draw(texts), draw(texts), draw(ctypes), content))
        else:
            parts.append((draw(texts), None, "text/plain", content))
    return b, parts


def encode(b, parts, padding=b""):
    """The form urllib3 encodes; with padding, that after each delimiter (RFC 2046 transport
    padding), and a preamble and an epilogue around it."""
    fields = []
    for name, filename, ctype, content in parts:
        f = RequestField(name, content, filename)
        f.make_multipart(content_type=ctype if filename is not None else None)
        fields.append(f)
    if not padding:
        return encode_multipart_formdata(fields, boundary=b)[0]
    dash = b"--" + b.encode()
    close = dash + b"--\r\n"
    body = b"a preamble\r\n"
    for f in fields:  # each part alone: "--" boundary CRLF, its head, its content, CRLF, close
        body += dash + padding + encode_multipart_formdata([f], boundary=b)[0][len(dash) : -len(close)]
    return body + close + b"an epilogue\r\n" + dash + b"\r\n"


def decode(body, boundary, sizes, **limits):
    """(events with each run of DATA joined, the MultipartError or None), body fed in pieces of
    sizes (cycled), eof() at its end; the reader's memory checked after every step."""
    r = MultipartReader('multipart/form-data; boundary="%s"' % boundary, **limits)
    carry = r.carry
    out = []
    pos = k = 0
    try:
        while pos < len(body):
            n = sizes[k % len(sizes)]
            k += 1
            r.feed(body[pos : pos + n])
            pos += n
            while True:
                ev = r.next()
                assert r.carry is carry and len(carry) == max(r.max_header_bytes, len(r.delim))
                assert 0 <= r.n <= len(carry)
                if r.state == _BODY:  # in a part's content
                    assert r.n < len(r.delim)
                if ev is None:
                    break
                kind, v = ev
                if kind == PART:
                    out.append((PART, v.name, v.filename, v.content_type))
                elif kind == DATA:
                    assert len(v) <= max(n, len(r.delim) - 1)
                    if out and out[-1][0] == DATA:
                        out[-1] = (DATA, out[-1][1] + bytes(v))
                    else:
                        out.append((DATA, bytes(v)))
                else:
                    assert kind in (END, DONE) and v is None
                    out.append((kind,))
        r.eof()
    except MultipartError as e:
        assert e.status in (400, 413)
        return out, e.reason
    return out, None


def expected(parts):
    out = []
    for name, filename, ctype, content in parts:
        out.append((PART, name, filename, ctype))
        if content:
            out.append((DATA, content))
        out.append((END,))
    return out + [(DONE,)]


@fuzz(400)
@given(form=forms(), sz=sizes, padding=st.sampled_from([b"", b" ", b"\t \t"]))
def test_encoded_forms_decode_back_however_split(form, sz, padding):
    b, parts = form
    body = encode(b, parts, padding)
    want = (expected(parts), None)
    assert decode(body, b, sz) == want
    assert decode(body, b, [1]) == want
    assert decode(body, b, [len(body) or 1]) == want


def _structure(got):
    # what must not depend on the split: the parts and the verdict (a refused field's value may
    # stop at another byte)
    events, error = got
    return [ev for ev in events if ev[0] != DATA], error


@fuzz(600)
@given(form=forms(), sz=sizes, cuts=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=6)), max_size=4),
       limits=st.fixed_dictionaries({"max_header_bytes": st.sampled_from([64, 150, 1024]),
                                     "max_parts": st.integers(1, 6), "max_field_bytes": st.integers(0, 40)}))
def test_broken_forms_give_events_or_a_multipart_error(form, sz, cuts, limits):
    b, parts = form
    body = encode(b, parts)
    for at, junk in cuts:  # replace a few bytes somewhere with others (or with nothing)
        at %= len(body) + 1
        body = body[:at] + junk + body[at + len(junk) // 2 :]
    got = decode(body, b, sz, **limits)
    assert _structure(got) == _structure(decode(body, b, [1], **limits)) == _structure(
        decode(body, b, [len(body) or 1], **limits))


@fuzz(400)
@given(body=st.binary(max_size=600), b=boundaries, sz=sizes)
def test_any_bytes_give_events_or_a_multipart_error(body, b, sz):
    got = decode(body, b, sz, max_header_bytes=64)
    assert _structure(got) == _structure(decode(body, b, [1], max_header_bytes=64))
