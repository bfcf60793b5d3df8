"""Security (issue 5): the API token on changing endpoints (401 without it, compared in constant
time), no response header built from unfiltered input (a handler that tries gets a 500, never a
split response), and the settings checks of the token. The static-root escapes are in
test_http.py (test_static_files_stay_in_their_root); the dashboard asking for the token, in a
real browser, in host_tests/browser/test_dashboard.py (test_led_with_the_api_token).

The module's sim board has the api_token in its settings and host_tests/apps_sec on its path."""

import json
import subprocess
import time

import pytest
import requests

from harness import micropython
from harness.paths import APPS_SEC, FIRMWARE
from harness.simboard import SimBoard
from harness.target import wait_for
from nostall.escapes import unquote
from nostall.web import tokens_equal

pytestmark = pytest.mark.abuse

TOKEN = "t0k3n-For.Tests_~+/=abcdef"
REALM = 'Bearer realm="nostall"'


@pytest.fixture(scope="module")
def sec(make_module_sim):
    """A sim board with "api_token" set and the security test app."""
    t = make_module_sim(app_dir=APPS_SEC, settings={"api_token": TOKEN})
    yield t
    assert t.sim.proc.poll() is None, "sim board died; log: %s" % t.sim.log


def led(t):
    with t.connect() as c:
        r = c.request("GET", "/api/led")
        assert r.status == 200
        return json.loads(r.body)["on"]


def put_led(c, on, auth=None):
    h = {"Content-Type": "application/json"}
    if auth is not None:
        h["Authorization"] = auth
    return c.request("PUT", "/api/led", h, json.dumps({"on": on}).encode())


# ---- the constant-time compare ----

EQUAL_CASES = [
    ("abc", "abc", True),
    ("", "", True),
    (b"abc", "abc", True),
    ("abc", "abd", False),
    ("xbc", "abc", False),
    ("ab", "abc", False),
    ("abc", "ab", False),
    ("abc", "abc\0", False),  # padding with zero bytes must not make them equal
    ("", "a", False),
    ("é", "e", False),
]


@pytest.mark.parametrize("a,b,want", EQUAL_CASES)
def test_tokens_equal(a, b, want):
    assert tokens_equal(a, b) is want
    assert tokens_equal(b, a) is want


class _Counting(bytes):
    """bytes that count how often they are indexed."""

    reads = 0

    def __getitem__(self, i):
        type(self).reads += 1
        return bytes.__getitem__(self, i)


@pytest.mark.parametrize(
    "guess",
    [b"X" + b"s" * 31, b"s" * 15 + b"X" + b"s" * 16, b"s" * 31 + b"X", b"s" * 3, b"s" * 40, b"", b"s" * 32],
    ids=["first-byte", "middle", "last-byte", "shorter", "longer", "empty", "equal"],
)
def test_tokens_equal_reads_every_byte_wherever_they_differ(guess):
    _Counting.reads = 0
    assert tokens_equal(guess, _Counting(b"s" * 32)) is (guess == b"s" * 32)
    assert _Counting.reads == 32  # no early exit: the secret is read whole whatever the guess


# percent escapes that decode to something other than the shortest UTF-8: None = refused
UNQUOTE_CASES = [
    ("%c0%ae", None),  # overlong "."
    ("%c0%af", None),  # overlong "/"
    ("%c1%9c", None),  # overlong "\\"
    ("%c0%8a", None),  # overlong LF
    ("%e0%80%ae", None),
    ("%f0%80%80%ae", None),
    ("%ed%a0%80", None),  # a UTF-16 surrogate
    ("%f4%90%80%80", None),  # above U+10FFFF
    ("%ff", None),
    ("%c3", None),
    ("%2e%2e%2f", "../"),
    ("%c3%a9", "\u00e9"),
    ("%e2%82%ac", "\u20ac"),
    ("%ed%9f%bf", "\ud7ff"),
]


def _unquote_or_none(s):
    try:
        return unquote(s)
    except (ValueError, UnicodeError):
        return None


@pytest.mark.parametrize("escaped,want", UNQUOTE_CASES)
def test_unquote_refuses_overlong_utf8(escaped, want):
    assert _unquote_or_none(escaped) == want


def test_tokens_equal_and_unquote_on_micropython():
    code = (
        "from nostall.web import tokens_equal\n"
        "from nostall.escapes import unquote\n"
        "bad = [c for c in %r if tokens_equal(c[0], c[1]) is not c[2] or tokens_equal(c[1], c[0]) is not c[2]]\n"
        "print('bad', len(bad), bad)\n"
        "def u(s):\n  try:\n    return unquote(s)\n  except (ValueError, UnicodeError):\n    return None\n"
        "bad = [c for c in %r if u(c[0]) != c[1]]\n"
        "print('bad unquote', len(bad), bad)\n" % (EQUAL_CASES, UNQUOTE_CASES)
    )
    out = micropython.run(code=code, path=[FIRMWARE], timeout=30)
    assert "bad 0 []" in out.stdout and "bad unquote 0 []" in out.stdout, out.stdout + out.stderr


# ---- the token over HTTP ----


def test_changes_without_or_with_a_wrong_token_get_401(sec, figure):
    before = led(sec)
    auths = [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer " + TOKEN[:-1],  # a prefix
        "Bearer " + TOKEN + "x",  # longer
        "Bearer " + TOKEN[:-1] + "X",  # last byte wrong
        "Bearer " + "X" + TOKEN[1:],  # first byte wrong
        "Bearer " + "x" * 1800,  # a long one (the head holds 2048 B): compared over 1800 B
        "Basic " + TOKEN,  # another scheme
        TOKEN,  # no scheme
    ]
    t0 = time.monotonic()
    n401 = 0
    with sec.connect() as c:
        for auth in auths:
            r = put_led(c, not before, auth)
            assert r.status == 401, (auth, r)
            assert r.headers["www-authenticate"] == REALM
            assert b"Authorization: Bearer <token>" in r.body
            assert r.headers.get("connection") != "close"  # a 401 costs no connection
            n401 += 1
        r = c.request("POST", "/api/led", {"Content-Type": "text/plain"}, b"on" if not before else b"off")
        assert r.status == 401 and b"no token" in r.body
        n401 += 1
    took = time.monotonic() - t0
    assert led(sec) == before, "a request without the token changed the LED"
    figure(
        "changing requests without the API token or with a wrong one",
        "%d PUT/POST /api/led (no header, other schemes, prefix, longer, 1st/last byte wrong, 1800 B)" % n401,
        "%d x 401 with WWW-Authenticate in %.0f ms, LED unchanged, connection kept" % (n401, took * 1000),
    )


def test_the_right_token_changes_the_led(sec):
    before = led(sec)
    with sec.connect() as c:
        r = put_led(c, not before, "Bearer " + TOKEN)
        assert r.status == 200 and json.loads(r.body) == {"on": not before}
        # the scheme is case-insensitive (RFC 9110 11.1); spaces around the token do not count
        r = c.request("POST", "/api/led", {"Authorization": "bearer   " + TOKEN, "Content-Type": "text/plain"},
                      b"on" if before else b"off")
        assert r.status == 200 and json.loads(r.body) == {"on": before}
    assert led(sec) == before
    s = requests.put(sec.url + "/api/led", json={"on": True}, headers={"Authorization": "Bearer " + TOKEN}, timeout=5)
    assert s.status_code == 200 and led(sec) is True


def test_reads_stay_open(sec):
    with sec.connect() as c:
        for method, path in [("GET", "/api/led"), ("HEAD", "/api/led"), ("GET", "/api/temperature"),
                             ("GET", "/status?gc=1"), ("GET", "/"), ("GET", "/sec/items")]:
            r = c.request(method, path)
            assert r.status == 200, (method, path, r)
        # HEAD is served by the GET handler without the token: it must not change anything either
        before = json.loads(c.request("GET", "/api/led").body)["on"]
        body = b"off" if before else b"on"
        assert c.request("HEAD", "/api/led", {"Content-Type": "text/plain"}, body).status == 200
        assert json.loads(c.request("GET", "/api/led").body)["on"] == before
        r = c.request("OPTIONS", "/api/led")
        assert r.status == 204 and "PUT" in r.headers["allow"]
        # unknown routes and methods answer as before: the token adds no information, takes none
        assert c.request("PATCH", "/api/led").status == 405
        assert c.request("POST", "/no/such/thing").status == 405  # the static catch-all: GET only


def test_app_routes_with_parameters_and_require_token(sec):
    auth = {"Authorization": "Bearer " + TOKEN}
    with sec.connect() as c:
        assert c.request("PUT", "/sec/item/7", body=b"seven").status == 401
        assert c.request("DELETE", "/sec/item/7").status == 401
        assert json.loads(c.request("GET", "/sec/items").body) == {}
        assert c.request("PUT", "/sec/item/7", auth, b"seven").status == 200
        assert json.loads(c.request("GET", "/sec/items").body) == {"7": "seven"}
        assert c.request("DELETE", "/sec/item/7", {"Authorization": "Bearer nope"}).status == 401
        assert c.request("PUT", "/sec/item/7", {"Authorization": "Bearer " + TOKEN[:-1]}, b"x").status == 401
        assert json.loads(c.request("GET", "/sec/items").body) == {"7": "seven"}
        assert c.request("DELETE", "/sec/item/7", auth).status == 200
        assert json.loads(c.request("GET", "/sec/items").body) == {}
        # require_token protects a GET too
        r = c.request("GET", "/sec/secret")
        assert r.status == 401 and r.headers["www-authenticate"] == REALM
        assert c.request("HEAD", "/sec/secret").status == 401
        assert json.loads(c.request("GET", "/sec/secret", auth).body) == {"secret": 42}


def test_without_a_token_changes_are_open(make_sim):
    t = make_sim(app_dir=APPS_SEC)  # settings without api_token
    with t.connect() as c:
        assert put_led(c, True).status == 200
        assert c.request("GET", "/sec/secret").status == 200
    assert led(t) is True


# ---- response headers never carry unfiltered input ----

SPLIT = "a%0d%0aSet-Cookie:%20evil=1%0d%0a%0d%0aHTTP/1.1%20200%20OK"


@pytest.mark.parametrize(
    "path",
    [
        "/sec/header?v=" + SPLIT,
        "/sec/header?v=a%0aSet-Cookie:%20evil=1",  # LF alone
        "/sec/header?v=a%0dSet-Cookie:%20evil=1",  # CR alone
        "/sec/header?v=a%00b",  # NUL
        "/sec/header?v=a%0bb",  # another control character
        "/sec/header?v=a%7fb",  # DEL
        "/sec/header?name=Set-Cookie:%20evil=1%0d%0aX",  # in the name
        "/sec/header?name=X%20Y&v=1",  # a name that is no token
        "/sec/header?name=&v=1",  # an empty name
        "/sec/ctype?v=text/html%0d%0aSet-Cookie:%20evil=1",
        "/sec/append?v=" + SPLIT,
        "/sec/tuple?v=" + SPLIT,
        "/sec/redirect?to=/x%0d%0aSet-Cookie:%20evil=1",
        "/sec/stream?v=" + SPLIT,
        "/sec/errorpage?v=" + SPLIT,
        "/sec/status?s=99",
        "/sec/status?s=1000",
        "/sec/status?s=abc",
        "/sec/status?s=-200",
    ],
)
def test_input_in_a_response_header_gives_500_not_a_split(sec, path):
    before = sec.status()
    with sec.connect() as c:
        c.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.response()
        assert r.status == 500, r
        assert "set-cookie" not in r.headers and "location" not in r.headers
        assert r.body.startswith(b"500 Internal Server Error")
        assert r.headers["connection"] == "close"
        assert not c.closed_by_peer(0.3)  # nothing more came: no second response smuggled in
        assert c.buf == b""
    with sec.connect() as c:
        assert c.request("GET", "/api/led").status == 200
    after = sec.status()
    assert after["handler_errors"] == before["handler_errors"] + 1
    assert after["status_5xx"] == before["status_5xx"] + 1


@pytest.mark.parametrize(
    "path",
    [
        "/sec/header?v=a%c0%8d%c0%8aSet-Cookie:%20evil=1",  # overlong CR LF
        "/sec/header?v=%e0%80%8a",  # overlong LF, 3 bytes
        "/sec/header?v=%ed%a0%80",  # a surrogate
        "/%c0%ae%c0%ae/board.py",  # overlong dots in the path
    ],
)
def test_overlong_utf8_escapes_get_400(sec, path):
    """MicroPython's UTF-8 decoder accepts overlong forms (b"\xc0\x8a" iterates as "\n"); the
    server refuses them before any handler sees them, as CPython's decoder does."""
    with sec.connect() as c:
        c.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.response()
        assert r.status == 400 and "set-cookie" not in r.headers, r
        assert c.request("GET", "/api/led").status == 200


@pytest.mark.parametrize(
    "path,header,value",
    [
        ("/sec/header?v=ok%09tab", "x-reflect", "ok\ttab"),
        ("/sec/ctype?v=text/plain", "content-type", "text/plain"),
        ("/sec/append?v=fine", "x-raw", "fine"),
        ("/sec/tuple?v=fine", "x-tuple", "fine"),
        ("/sec/redirect?to=/elsewhere", "location", "/elsewhere"),
        ("/sec/stream?v=fine", "x-stream", "fine"),
        ("/sec/errorpage?v=fine", "x-error", "fine"),
    ],
)
def test_clean_header_values_pass(sec, path, header, value):
    """The control for the test above: the same routes with clean input answer normally."""
    with sec.connect() as c:
        r = c.request("GET", path)
        assert r.status in (200, 302, 400), r
        assert r.headers[header] == value


def test_error_pages_are_not_sniffed(sec):
    with sec.connect() as c:
        r = c.request("GET", "/%3Cscript%3Ealert(1)%3C/script%3E")
        assert r.status == 404 and r.headers["content-type"].startswith("text/plain")
        assert r.headers["x-content-type-options"] == "nosniff"


def test_header_flood_of_bad_handlers_costs_nothing(sec, figure):
    """Many requests whose handlers try to split the response: each a 500, and nothing leaks."""
    base_fd = sec.fd_count()
    heap0 = sec.status(gc=True)["heap_free"]
    n = 0
    t0 = time.monotonic()
    while n < 60 and time.monotonic() - t0 < 8:
        with sec.connect() as c:
            r = c.request("GET", "/sec/header?v=" + SPLIT, {"Connection": "close"})
            assert r.status == 500 and "set-cookie" not in r.headers
        n += 1
    took = time.monotonic() - t0
    with sec.connect() as c:
        assert c.request("GET", "/api/led").status == 200
    assert wait_for(lambda: sec.fd_count() <= base_fd, timeout=3)
    fds = sec.fd_count()
    heap1 = sec.status(gc=True)["heap_free"]
    figure(
        "handlers putting CR/LF from the request into response headers",
        "%d requests, one connection each, in %.0f ms" % (n, took * 1000),
        "%d x 500, no split response, next client answered" % n,
        "nothing: fds %d->%d, heap free %+d B" % (base_fd, fds, heap1 - heap0),
    )


# ---- settings ----


@pytest.mark.parametrize(
    "token,message",
    [
        (12345678901234567, "setting 'api_token' must be a string (or null for none), got 12345678901234567"),
        ("short", "api_token must be 16..128 characters, got 5 (or null for none)"),
        ("x" * 129, "api_token must be 16..128 characters, got 129 (or null for none)"),
        ("0123456789abcdef ghi", "api_token may hold only letters, digits and - . _ ~ + / =, not ' '"),
        ("0123456789abcdef\"ghi", "api_token may hold only letters, digits and - . _ ~ + / =, not '\"'"),
    ],
)
def test_bad_api_token_stops_start_up_with_one_line(tmp_path, token, message):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"api_token": token}))
    sim = SimBoard(settings=str(bad))
    out = subprocess.run(sim.argv, env=sim.env, cwd="/", capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "nostall: settings: " + message, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
