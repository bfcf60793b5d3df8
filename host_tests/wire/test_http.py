"""HTTP/1.1 over real sockets against the board (the sim board unless --board-ip is given)."""

import gzip
import json
import os

import pytest
import requests

from harness.paths import FIRMWARE
from harness.target import wait_for


def test_dashboard_get_and_head(board):
    # the page is kept gzipped on flash (firmware/www/index.html.gz; wire/test_static_http.py has the rest)
    gz = {"Accept-Encoding": "gzip"}
    with board.connect() as c:
        r = c.request("GET", "/", gz)
        assert r.status == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["content-encoding"] == "gzip" and int(r.headers["content-length"]) == len(r.body)
        assert b"<!doctype html>" in gzip.decompress(r.body)
        h = c.request("HEAD", "/", gz)  # same connection: HEAD sent no body
        assert h.status == 200 and h.headers["content-length"] == r.headers["content-length"]
        assert c.request("GET", "/index.html", gz).body == r.body


def test_status_fields(board):
    s = board.status()
    for key in (
        "uptime_ms", "heap_free", "heap_alloc", "connections_open", "connections_peak",
        "connections_accepted", "requests", "closes_by_client", "closes_by_server",
        "closes_by_server_total", "status_4xx", "status_5xx", "firmware_version", "board",
    ):
        assert key in s, key
    assert s["connections_open"] >= 1 and s["heap_free"] > 0


def test_keep_alive_by_default(board):
    with board.connect() as c:
        a = c.request("GET", "/api/led")
        b = c.request("GET", "/api/led")
        assert a.status == b.status == 200
        assert a.headers["keep-alive"] == "timeout=330"  # no request cap: no max=
        assert "connection" not in a.headers
        assert not c.closed_by_peer(0.3)


def test_pipelined_requests_answered_in_order(board):
    with board.connect() as c:
        c.send(b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % p for p in (b"/api/led", b"/nope", b"/status")))
        statuses = [c.response().status for _ in range(3)]
        assert statuses == [200, 404, 200]


def test_connection_close_waits_for_the_client(board):
    before = board.status()
    lwip0 = board.emu.stats() if board.emu else None
    with board.connect() as c:
        r = c.request("GET", "/api/led", {"Connection": "close"})
        assert r.status == 200 and r.headers["connection"] == "close"
        # the board must not close first: the client's close puts TIME_WAIT on the client
        assert not c.closed_by_peer(0.5)
    after = wait_for(lambda: (lambda s: s if s["closes_by_client"] > before["closes_by_client"] else None)(board.status()))
    assert after, "the client's close was not counted"
    assert after["closes_by_server_total"] == before["closes_by_server_total"]
    if lwip0:  # --board=emu: lwIP saw a passive close, so it holds no TIME_WAIT for it
        # (the /status requests above are client-closed connections too)
        lwip1 = board.emu.wait_stats(lambda s: s["passive_closes"] > lwip0["passive_closes"])
        assert lwip1["passive_closes"] > lwip0["passive_closes"], lwip1
        assert lwip1["active_closes"] == lwip0["active_closes"], lwip1


def test_requests_reach_the_board_through_its_tcp_stack(board):
    """--board=emu: the test's connection is lwIP's (its gateway accepts it), not Linux loopback's."""
    if board.emu is None:
        pytest.skip("only with --board=emu")
    before = board.emu.stats()["accepted"]
    with board.connect() as c:
        assert c.sock.getpeername() == (board.emu.ip, board.emu.port)
        assert c.request("GET", "/api/led").status == 200
    # (>=: the stats file lags, so earlier tests' connections may land in it after `before`)
    assert board.emu.wait_stats(lambda s: s["accepted"] > before)["accepted"] > before


def test_http10_gets_close_and_server_waits(board):
    with board.connect() as c:
        c.send(b"GET /api/led HTTP/1.0\r\n\r\n")
        r = c.response()
        assert r.status == 200 and r.headers.get("connection") == "close"
        assert not c.closed_by_peer(0.3)


def test_json_in_and_out(board):
    with board.connect() as c:
        r = c.request("PUT", "/api/led", {"Content-Type": "application/json"}, b'{"on": true}')
        assert r.status == 200 and json.loads(r.body) == {"on": True}
        assert r.headers["content-type"] == "application/json"
        r = c.request("POST", "/api/led", {"Content-Type": "text/plain"}, b"off")
        assert json.loads(r.body) == {"on": False}
        assert c.request("PUT", "/api/led", {"Content-Type": "application/json"}, b"{nope").status == 400
        assert c.request("PUT", "/api/led", {"Content-Type": "application/json"}, b'{"on": 1}').status == 400


def test_chunked_request_body(board):
    with board.connect() as c:
        c.send(
            b"PUT /api/led HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n4\r\n{\"on\r\n8\r\n\": true}\r\n0\r\n\r\n"
        )
        r = c.response()
        assert r.status == 200 and json.loads(r.body) == {"on": True}


def test_expect_100_continue(board):
    with board.connect() as c:
        c.send(b"PUT /api/led HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        assert c.response().status == 100
        c.send(b"on")
        assert json.loads(c.response().body) == {"on": True}


def test_streamed_response_and_query(board):
    r = requests.get(board.url + "/api/samples", params={"n": 5}, timeout=5)
    assert r.status_code == 200 and r.headers["transfer-encoding"] == "chunked"
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [x["i"] for x in lines] == list(range(5))
    assert requests.get(board.url + "/api/samples?n=x", timeout=5).status_code == 400


def test_not_found_method_not_allowed_and_options(board):
    with board.connect() as c:
        assert c.request("GET", "/no/such/thing").status == 404
        r = c.request("DELETE", "/api/led")
        assert r.status == 405 and "PUT" in r.headers["allow"] and "GET" in r.headers["allow"]
        r = c.request("OPTIONS", "/api/led")
        assert r.status == 204 and "OPTIONS" in r.headers["allow"]
        assert c.request("GET", "/api/led").status == 200  # still serving this connection


# Every path names a file that exists outside the static root (firmware/www on the sim: its parent
# holds board.py and main.py), so a path that escaped would get a 200.
_ABS_BOARD_PY = os.path.join(FIRMWARE, "board.py")


@pytest.mark.parametrize(
    "path",
    [
        "/../board.py",
        "/%2e%2e/board.py",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/..%2fboard.py",  # encoded slash
        "/a\\..\\b",
        "/..%5cboard.py",  # encoded backslash
        "/%2e%2e%5cmain.py",
        "/.%2e/main.py",
        "/%2e./main.py",
        "/%252e%252e/board.py",  # double-encoded: decoded once, it is a file named "%2e%2e"
        "/%252e%252e%252fboard.py",
        "/..%00/board.py",  # NUL
        "/index.html%00.png",
        "/%c0%ae%c0%ae/board.py",  # overlong UTF-8 dots (MicroPython's decoder would make them ".")
        "/..%c0%afboard.py",  # overlong slash
        "/%e0%80%ae%e0%80%ae/board.py",
        "//" + _ABS_BOARD_PY.lstrip("/"),  # an absolute path: stays under the root
        "/%2f" + _ABS_BOARD_PY.lstrip("/").replace("/", "%2f"),
        "///../board.py",
        "/./../board.py",
        "/www/../../board.py",
        "/C:/../board.py",  # a drive letter means nothing here
        "/C:%5c..%5cboard.py",
        "/" + "../" * 300 + "board.py",  # very long: 414 before anything looks at it
        "/" + "a/" * 200 + "../" * 201 + "board.py",
    ],
)
def test_static_files_stay_in_their_root(board, path):
    with board.connect() as c:
        c.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.response()
        assert r.status in (400, 404, 414), r
        assert b"def " not in r.body and b"import" not in r.body


def test_static_files_control(board):
    """The control for the table above: files inside the root are served, by several spellings."""
    with board.connect() as c:
        for path in ["/index.html", "/%69ndex.html", "//index.html", "/%2findex.html"]:
            r = c.request("GET", path, {"Accept-Encoding": "gzip"})
            assert r.status == 200 and b"<!doctype html>" in gzip.decompress(r.body), (path, r)


def _refused(board, raw, status):
    with board.connect() as c:
        c.send(raw)
        r = c.response()
        assert r.status == status, r
        assert r.headers["connection"] == "close"
        # even after an error the board waits for the client to close (bounded by linger_timeout_ms)
        assert not c.closed_by_peer(0.3)


@pytest.mark.parametrize(
    "raw,status",
    [
        (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 1900 + b"\r\nY: " + b"b" * 200 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"A: b\r\n" * 40 + b"\r\n", 431),
        (b"POST /api/led HTTP/1.1\r\nHost: t\r\nContent-Length: 999999\r\n\r\n", 413),
        (b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400),
        (b"GET / HTTP/1.1\nHost: t\n\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
    ],
    ids=["414", "431-bytes", "431-count", "413", "501", "505", "cl+te", "two-cl", "bare-lf", "no-host"],
)
def test_bad_requests_get_4xx_and_the_server_goes_on(board, raw, status):
    before = board.status()
    _refused(board, raw, status)
    with board.connect() as c:
        assert c.request("GET", "/api/led").status == 200
    after = board.status()
    key = "status_4xx" if status < 500 else "status_5xx"
    assert after[key] > before[key]


def test_a_long_head_is_served_and_the_connection_goes_on(board):
    # 1.8 KB of cookies: more than a slot's own buffer (recv_buffer_bytes), within max_header_bytes
    cookie = "; ".join("c%d=%s" % (i, "v" * 40) for i in range(40))
    with board.connect() as c:
        for _ in range(3):
            r = c.request("GET", "/api/led", {"Cookie": cookie})
            assert r.status == 200
            assert c.request("GET", "/api/led").status == 200  # the slot's own buffer again
    # pipelined behind a long one, split across its end
    raw = ("GET /api/led HTTP/1.1\r\nHost: t\r\nCookie: %s\r\n\r\n" % cookie).encode()
    with board.connect() as c:
        c.send(raw + raw[:20])
        c.send(raw[20:])
        assert c.response().status == 200 and c.response().status == 200


def test_response_headers_never_carry_request_crlf(board):
    with board.connect() as c:
        c.send(b"GET /x%0d%0aSet-Cookie:%20evil HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.response()
        assert r.status == 404 and "set-cookie" not in r.headers


def test_many_sequential_connections_all_answered(board):
    for _ in range(30):
        assert requests.get(board.url + "/api/led", timeout=5).status_code == 200
