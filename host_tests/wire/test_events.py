"""Server-sent events over the wire: the head (text/event-stream, no caching), `retry:`, events
framed with id/event/data (multi-line data as several data: lines), heartbeat comments after
sse_heartbeat_ms of silence, Last-Event-ID replay from the channel's ring, a client that leaves
(its slot and fd given back at once), and a client too slow to read (dropped with a reset after
write_timeout_ms). The channel is the test app's (host_tests/apps_ws: ring 4, published into
with POST /news); the events are read with harness/sseclient.py, a parser that follows the
EventSource one and can stop reading."""

import time

import pytest
import requests

from harness.abuse import resting_fds
from harness.paths import APPS_WS
from harness.sseclient import SSEClient
from harness.target import wait_for

QUICK = {"sse_heartbeat_ms": 300, "write_timeout_ms": 500, "tick_ms": 50}
RING = 4  # the test app's channel keeps this many


@pytest.fixture
def news(make_sim):
    return make_sim(QUICK, app_dir=APPS_WS)


def publish(t, data, event=None):
    with t.client():
        r = requests.post(t.url + "/news" + ("?event=" + event if event else ""), data=data.encode(), timeout=5)
    r.raise_for_status()
    return r.json()["id"]


def test_the_head_and_retry(board):
    with SSEClient(board, "/events") as s:
        assert s.status == 200
        assert s.head["content-type"].startswith("text/event-stream")
        assert s.head["cache-control"] == "no-cache"
        assert s.next() == ("retry", 3000)
        first = s.next(timeout=3)
    assert isinstance(first, dict) and first["id"] and '"uptime_ms"' in first["data"]


def test_events_carry_id_event_and_multiline_data(news):
    with SSEClient(news, "/events/news") as s:
        assert s.next() == ("retry", 3000)
        a = publish(news, "one line")
        b = publish(news, "line 1\nline 2\n\nline 4", event="multi")
        c = publish(news, "", event="empty")
        got = s.events(3, timeout=3)
    assert got == [
        {"id": str(a), "event": None, "data": "one line"},
        {"id": str(b), "event": "multi", "data": "line 1\nline 2\n\nline 4"},
        {"id": str(c), "event": "empty", "data": ""},
    ]
    assert a < b < c


def test_a_new_client_gets_the_newest_kept_event_then_the_new_ones(news):
    ids = [publish(news, "m%d" % i) for i in range(3)]
    with SSEClient(news, "/events/news") as s:
        assert s.events(1, timeout=3) == [{"id": str(ids[-1]), "event": None, "data": "m2"}]
        new = publish(news, "m3")
        assert s.events(1, timeout=3)[0]["id"] == str(new)


def test_last_event_id_replays_what_the_ring_kept(news):
    ids = [publish(news, "r%d" % i) for i in range(RING + 2)]  # the first two fell out of the ring
    with SSEClient(news, "/events/news", last_event_id=ids[-3]) as s:
        got = s.events(2, timeout=3)
    assert [e["id"] for e in got] == [str(i) for i in ids[-2:]]
    assert [e["data"] for e in got] == ["r%d" % (RING), "r%d" % (RING + 1)]
    # the oldest kept one, from the id just before it
    with SSEClient(news, "/events/news", last_event_id=ids[-RING - 1]) as s:
        got = s.events(RING, timeout=3)
    assert [e["id"] for e in got] == [str(i) for i in ids[-RING:]]
    # an id that fell out of the ring: what was in between is gone, the newest comes
    with SSEClient(news, "/events/news", last_event_id=ids[0]) as s:
        got = s.events(1, timeout=3)
        assert got[0]["id"] == str(ids[-1])
        later = publish(news, "after")
        assert s.events(1, timeout=3)[0]["id"] == str(later)
    # up to date, or a Last-Event-ID that is no number: nothing replayed, nothing lost
    newest = later
    for last in (later, "garbage"):
        with SSEClient(news, "/events/news", last_event_id=last) as s:
            assert s.next() == ("retry", 3000)
            if last == "garbage":  # taken as a new client: the newest kept one
                assert s.events(1, timeout=3)[0]["id"] == str(newest)
            newest = publish(news, "x")
            assert s.events(1, timeout=3)[0]["id"] == str(newest)


def test_heartbeats_keep_a_quiet_stream_alive(news):
    with SSEClient(news, "/events/news") as s:
        assert s.next() == ("retry", 3000)
        t0 = time.monotonic()
        beats = []
        while len(beats) < 4:
            item = s.next(timeout=2)
            assert item == ("comment", ""), item
            beats.append(time.monotonic() - t0)
        # an event resets the timer: the next heartbeat is sse_heartbeat_ms after it
        publish(news, "news")
        assert s.events(1, timeout=2)[0]["data"] == "news"
        t1 = time.monotonic()
        assert s.next(timeout=2) == ("comment", "")
        after_event = time.monotonic() - t1
    # between beats (the first one's delay from the head depends on when this client read it)
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    assert beats[0] <= 0.6 and all(0.2 <= g <= 0.6 for g in gaps), beats  # 300 ms, ticks of 50
    assert 0.2 <= after_event <= 0.6, after_event


def test_a_client_that_leaves_gives_its_slot_back_at_once(news):
    with SSEClient(news, "/events/news") as s:
        s.next()
    base_fds = resting_fds(news)
    for _ in range(3):
        with SSEClient(news, "/events/news") as s:
            assert s.next() == ("retry", 3000)
            assert news.status()["long_lived_open"] == 1
    # the server was asleep in recv(): the client's EOF wakes it
    assert wait_for(lambda: news.status()["long_lived_open"] == 0, timeout=1)
    st = news.status()
    assert st["connections_open"] == 1  # this /status request's
    assert st["closes_by_client"] >= 4 and st["closes_by_server_total"] == 0, st
    assert resting_fds(news) <= base_fds
    assert news.time_wait() == 0


def test_a_client_too_slow_to_read_is_dropped_with_a_reset(news):
    # a 4 KB window and no reading, while 2000-byte events come every millisecond
    with SSEClient(news, "/events/news", rcvbuf=4096) as s:
        assert s.status == 200
        t0 = time.monotonic()
        with news.client():
            requests.post(news.url + "/news/flood?n=5000&bytes=2000", timeout=5).raise_for_status()
        dropped = wait_for(lambda: news.status()["closes_by_server"].get("write_timeout"), timeout=8, step=0.1)
        took = time.monotonic() - t0
        assert dropped == 1, news.status()["closes_by_server"]
        assert s.wait_end(3) == "reset"
    assert took < 6, took  # filling the buffers, then write_timeout_ms 500
    st = news.status()
    assert st["long_lived_open"] == 0 and st["server_resets"] >= 1
    assert news.time_wait() == 0
    # the others were served all along, and a new follower gets the newest event
    with SSEClient(news, "/events/news") as s2:
        assert s2.events(1, timeout=3)[0]["data"].startswith("f")
