"""HTTP details a linter flags (issue 18), over the wire: the Date header (RFC 9110 6.6.1) on the
answers of a board whose clock is set (the sim's is the host's), in IMF-fixdate and close to the
host's time, on every kind of answer (files, 304, HEAD, JSON, streams, errors, a refused
request); Cache-Control: no-store on the answers that are live figures (/status, /metrics and the
app's readings), so no cache shows an old reading as now. The ETags of a file's gzip and plain
copies: test_static_http.py."""

import email.utils
import re
import time

import pytest

# RFC 9110 5.6.7 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                         r"\d{4} \d\d:\d\d:\d\d GMT$")
GZ = {"Accept-Encoding": "gzip"}
# the answers that are live figures: the server's own pages and the default app's readings
LIVE = ["/status", "/metrics", "/api/led", "/api/temperature", "/api/samples?n=2"]


def _answers(board):
    """(what, response) for one answer of each kind, on one kept-alive connection but the last."""
    out = []
    with board.connect() as c:
        r = c.request("GET", "/", GZ)
        out.append(("file", r))
        out.append(("304", c.request("GET", "/", dict(GZ, **{"If-None-Match": r.headers["etag"]}))))
        out.append(("HEAD", c.request("HEAD", "/", GZ)))
        for path in LIVE:
            out.append((path, c.request("GET", path)))
        out.append(("404", c.request("GET", "/no/such/thing")))
        out.append(("405", c.request("DELETE", "/status")))
    with board.connect() as c:  # refused by the reader: answered, then the connection ends
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        out.append(("400", c.response()))
    return out


def test_every_answer_has_a_date_once_the_clock_is_set(board):
    answers = _answers(board)
    if board.sim is None and "date" not in answers[0][1].headers:
        # a real board whose clock was never set (no "ntp" in its settings, or no answer): no Date at all
        for what, r in answers:
            assert "date" not in r.headers, (what, r)
        pytest.skip("this board's clock is not set: it sends no Date (set \"ntp\" in its settings)")
    now = time.time()
    for what, r in answers:
        assert r.status == {"304": 304, "404": 404, "405": 405, "400": 400}.get(what, 200), (what, r)
        date = r.headers.get("date")
        assert date is not None and IMF_FIXDATE.match(date), (what, r)
        # the sim's clock is the host's; a board set by NTP is within a few seconds of it
        t = email.utils.parsedate_to_datetime(date).timestamp()
        assert now - 10 <= t <= now + (1 if board.sim else 10), (what, date, now)


def test_live_figures_are_never_stored(board):
    # RFC 9111 5.2.2.5: no cache (a browser's, a proxy's) may keep them: a kept /status or reading
    # would be shown as now
    missing = []
    with board.connect() as c:
        for path in LIVE:
            r = c.request("GET", path)
            assert r.status == 200, (path, r)
            if r.headers.get("cache-control") != "no-store":
                missing.append((path, r.headers.get("cache-control")))
        led = c.request("GET", "/api/led").body.decode()
        r = c.request("PUT", "/api/led", {"Content-Type": "application/json"}, led.encode())  # the state it has
        assert r.status == 200 and r.headers.get("cache-control") == "no-store", r
        # files are kept and revalidated, not refused to caches
        assert c.request("GET", "/", GZ).headers["cache-control"] == "no-cache"
    assert not missing, "live answers without Cache-Control: no-store: %r" % missing
