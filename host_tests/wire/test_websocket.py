"""WebSocket (RFC 6455) over the wire: the handshake and its refusals, messages both ways (text,
binary, fragmented, up to ws_max_message_bytes), ping/pong, the close handshake from either side
(and how the TCP connection ends: the server resets after ws_close_wait_ms, so no TIME_WAIT on
it), /ws/live (the live figures once a second, LED commands with the API token), the cap on
long-lived connections (503 with Retry-After, plain HTTP still served) and the server's pings to
a silent client. Well-behaved clients are the `websockets` library's; the ones that must not
answer a ping or must see the frames as they come are harness/wsclient.py (built on the same
library's protocol objects)."""

import base64
import contextlib
import hashlib
import json
import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from harness.paths import APPS_WS
from harness.target import wait_for
from harness.wsclient import BadFrame, Opcode, WSClient

TOKEN = "ws-test-token-0123456789"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 1.3's example key
# the sim compiles the firmware into its heap, which leaves ~25 KB in one piece at 256K: too few
# for a 16 KB message and its copies (a board keeps the code frozen in flash). At 384K a text
# message at the limit failed once the board glue grew by ~2 KB of bytecode (Ethernet): where the
# compiler's leftovers fall decides the largest free piece. The real port in QEMU (.mpy files,
# the C3's 32-bit heap) echoes both: host_tests/qemu/test_qemu_board.py
BIG_HEAP = "448K"
# dedicated sims: timeouts short enough for a test to see them
QUICK = {"ws_ping_interval_ms": 400, "ws_pong_timeout_ms": 400, "ws_close_wait_ms": 200, "tick_ms": 50}


def ws_url(t, path):
    return "ws://%s:%d%s" % (t.host, t.port, path)


def ws_connect(t, path, **kw):
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 3)
    kw.setdefault("max_size", None)
    with t.client():
        return connect(ws_url(t, path), **kw)


def upgrade_request(t, path="/ws/echo", **headers):
    """A handshake with requests (headers: None drops one), so the refusals can be read."""
    h = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}
    for k, v in headers.items():
        k = k.replace("_", "-")
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    with t.client():
        r = requests.get(t.url + path, headers=h, timeout=5, stream=True)
    r.close()
    return r


@pytest.fixture(scope="module")
def wsb(make_module_sim):
    """A sim with the WebSocket test app (and a heap that holds ws_max_message_bytes messages)."""
    return make_module_sim(dict(QUICK, ws_ping_interval_ms=20000, ws_pong_timeout_ms=10000), app_dir=APPS_WS,
                           heap=BIG_HEAP)


# ---- the handshake ----

def test_handshake_answers_101_with_the_accept_key(board):
    r = upgrade_request(board)
    expect = base64.b64encode(hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert r.status_code == 101
    assert r.headers["Sec-WebSocket-Accept"] == expect == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert r.headers["Upgrade"].lower() == "websocket" and "upgrade" in r.headers["Connection"].lower()


@pytest.mark.parametrize("headers,status", [
    ({"Upgrade": None}, 400),
    ({"Connection": "keep-alive"}, 400),
    ({"Sec-WebSocket-Key": None}, 400),
    ({"Sec-WebSocket-Key": "too-short"}, 400),
], ids=["no-upgrade", "no-connection-upgrade", "no-key", "bad-key"])
def test_a_broken_handshake_is_refused_and_the_connection_serves_on(board, headers, status):
    r = upgrade_request(board, **headers)
    assert r.status_code == status, r.headers
    assert board.status()["requests"] > 0


def test_a_websocket_route_refuses_other_methods(board):
    with board.client():
        r = requests.post(board.url + "/ws/echo", data=b"x", timeout=5)
    assert r.status_code == 405


@pytest.mark.parametrize("version", ["8", None], ids=["version-8", "no-version"])
def test_another_version_gets_426_naming_13(board, version):
    r = upgrade_request(board, Sec_WebSocket_Version=version)
    # no version at all is a malformed handshake (4.2.1: 400 will do); another one is 4.4's 426
    assert r.status_code in ((426,) if version else (400, 426))
    if r.status_code == 426:
        assert r.headers.get("Sec-WebSocket-Version") == "13", r.headers


# ---- messages ----

def test_echo_text_binary_empty_and_unicode(board):
    with ws_connect(board, "/ws/echo") as ws:
        for msg in ("hello", b"\x00\x01\xfe\xff", "", b"", "z\u00fcrich \u2603 \U0001f600"):
            ws.send(msg)
            assert ws.recv(timeout=5) == msg


def test_fragmented_messages_are_put_together(board):
    with ws_connect(board, "/ws/echo") as ws:
        ws.send(["ab", "cd", "\u00e9f"])  # websockets sends an iterable as fragments
        assert ws.recv(timeout=5) == "abcd\u00e9f"
        ws.send([b"\x01" * 100, b"\x02" * 1000, b"\x03"])
        assert ws.recv(timeout=5) == b"\x01" * 100 + b"\x02" * 1000 + b"\x03"


def test_control_frames_between_fragments_are_answered_at_once(board):
    with WSClient(board, "/ws/echo") as c:
        assert c.accepted
        c.send("first ", fin=False)
        c.ping(b"between")
        f = c.recv_frame()
        assert (f.opcode, f.data) == (Opcode.PONG, b"between")
        c.send("last", opcode=Opcode.CONT)
        assert c.recv() == "first last"


def test_a_utf8_character_split_across_fragments_is_whole_text(board):
    snow = "\u2603".encode()
    with WSClient(board, "/ws/echo") as c:
        c.send(b"a" + snow[:1], fin=False, opcode=Opcode.TEXT)
        c.send(snow[1:], opcode=Opcode.CONT)
        assert c.recv() == "a\u2603"


def test_messages_up_to_the_limit_whole_and_in_fragments_one_more_byte_is_1009(wsb):
    limit = wsb.status()["limits"]["ws_max_message_bytes"]
    with ws_connect(wsb, "/ws/echo") as ws:
        big = bytes(range(256)) * (limit // 256) + b"x" * (limit % 256)
        ws.send(big)
        assert ws.recv(timeout=5) == big
        text = "\u00e9" * (limit // 2)  # 2 bytes each: exactly the limit
        ws.send(text)
        assert ws.recv(timeout=5) == text
        parts = [big[i:i + 3000] for i in range(0, limit, 3000)]
        ws.send(parts)
        assert ws.recv(timeout=5) == big
    for msg in (big + b"!", [big, b"!"]):
        with ws_connect(wsb, "/ws/echo") as ws:
            ws.send(msg)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009


def test_ping_payloads_come_back_in_pongs(board):
    with WSClient(board, "/ws/echo") as c:
        for payload in (b"", b"x", bytes(range(125))):
            c.ping(payload)
            f = c.recv_frame()
            assert (f.opcode, f.data) == (Opcode.PONG, payload)
    with ws_connect(board, "/ws/echo") as ws:
        assert ws.ping(b"lib").wait(5)


# ---- the close handshake ----

def test_client_close_is_echoed_then_the_server_resets_leaving_no_time_wait(make_sim):
    t = make_sim(QUICK)
    with WSClient(t, "/ws/echo") as c:
        c.send("hi")
        assert c.recv() == "hi"
        t0 = time.monotonic()
        c.close(4001, "done here")
        assert c.expect_close() == (4001, "")  # the server answers with the code it got
        end = c.wait_end(3)
        waited = time.monotonic() - t0
    assert end == "reset"  # the client waited for the server's TCP close, as RFC 6455 7.1.1 has it
    assert 0.15 <= waited < 1.0, waited  # ws_close_wait_ms 200, and a tick
    st = t.status()
    assert st["closes_by_server"] == {"ws_close_timeout": 1} and st["server_resets"] == 1, st
    assert st["long_lived_open"] == 0
    assert t.time_wait() == 0


def test_a_client_that_closes_tcp_after_the_handshake_closes_first(make_sim):
    t = make_sim(QUICK)
    with ws_connect(t, "/ws/echo") as ws:
        ws.send("x")
        ws.recv(timeout=5)
    assert wait_for(lambda: t.status()["long_lived_open"] == 0, timeout=2)
    with WSClient(t, "/ws/echo") as c:
        c.close(1000)
        assert c.expect_close() == (1000, "")
        # this client closes TCP itself at once: the server then has nothing to reset
    st = wait_for(lambda: (lambda s: s if s["closes_by_client"] >= 1 else None)(t.status()), timeout=2)
    assert st and st["closes_by_server"].get("ws_close_timeout", 0) == 1, st  # only the websockets one
    assert t.time_wait() == 0


def test_server_close_carries_its_code_and_reason_and_ends_soon_after_the_answer(wsb):
    before = wsb.status()
    with ws_connect(wsb, "/ws/close?code=4002&reason=bye%20now") as ws:
        ws.send("go")
        t0 = time.monotonic()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        took = time.monotonic() - t0
    assert ws.protocol.close_rcvd.code == 4002 and ws.protocol.close_rcvd.reason == "bye now"
    # the client answered at once: the connection ends ws_close_wait_ms after that, not after
    # all of linger_timeout_ms (2 s)
    assert took < 1.0, took
    after = wsb.status()
    assert after["closes_by_server"].get("ws_close_timeout", 0) == before["closes_by_server"].get("ws_close_timeout", 0) + 1
    assert wsb.time_wait() == 0


def test_server_close_without_an_answer_ends_at_the_linger_timeout(wsb):
    with WSClient(wsb, "/ws/close?code=1001", answer_close=False) as c:
        c.send("go")
        t0 = time.monotonic()
        assert c.expect_close() == (1001, "")
        assert c.wait_end(4) == "reset"
        took = time.monotonic() - t0
    linger = wsb.status()["limits"]["linger_timeout_ms"] / 1000
    assert linger - 0.1 <= took < linger + 1.0
    assert wsb.status()["closes_by_server"].get("linger_timeout", 0) >= 1


# ---- /ws/live ----

def test_live_pushes_the_figures_once_a_second(board):
    with ws_connect(board, "/ws/live") as ws:
        docs = [json.loads(ws.recv(timeout=3)) for _ in range(3)]
    for d in docs:
        for k in ("uptime_ms", "heap_free", "connections_open", "long_lived_open", "requests_per_s", "led"):
            assert k in d, d
    gaps = [b["uptime_ms"] - a["uptime_ms"] for a, b in zip(docs[1:], docs[2:])]  # the first is the kept one
    assert all(900 <= g <= 1300 for g in gaps), gaps
    assert docs[-1]["long_lived_open"] >= 1


def _command(ws, cmd):
    ws.send(json.dumps(cmd))
    while True:  # skip the figures pushed meanwhile
        d = json.loads(ws.recv(timeout=3))
        if "t" in d:
            return d


def test_live_switches_the_led_and_refuses_bad_commands(board):
    with ws_connect(board, "/ws/live") as ws:
        assert _command(ws, {"led": True}) == {"t": "led", "on": True}
        with board.client():
            assert requests.get(board.url + "/api/led", timeout=5).json() == {"on": True}
        assert _command(ws, {"led": False}) == {"t": "led", "on": False}
        assert _command(ws, {"led": "yes"})["status"] == 400
        assert _command(ws, {"nope": 1})["status"] == 400
    with board.client():
        ws2 = connect(ws_url(board, "/ws/live"), open_timeout=5, close_timeout=3)
    with ws2:
        ws2.send("not json")
        d = json.loads(ws2.recv(timeout=3))
        while "t" not in d:
            d = json.loads(ws2.recv(timeout=3))
        assert d["status"] == 400


def test_live_led_commands_need_the_token_when_one_is_set(make_sim):
    t = make_sim(settings={"api_token": TOKEN})
    with ws_connect(t, "/ws/live") as ws:
        assert _command(ws, {"led": True})["status"] == 401
        assert _command(ws, {"led": True, "token": TOKEN + "x"})["status"] == 401
        with t.client():
            assert requests.get(t.url + "/api/led", timeout=5).json() == {"on": False}
        assert _command(ws, {"led": True, "token": TOKEN}) == {"t": "led", "on": True}


@pytest.mark.parametrize("how", ["reset", "eof", "ws_timeout"])
def test_a_live_client_that_vanishes_leaves_its_slot_clean(make_sim, how):
    # the figures are published every second to whoever follows them: a follower that went
    # without the close handshake must leave the channel, or the next connection in its slot is
    # woken mid-wait (it was: reset at the next publish, counted as "error")
    t = make_sim(dict(QUICK, max_connections=2))  # a keep-alive client then gets the live one's slot
    time.sleep(0.2)  # the start-up probe's connection is gone: the WebSocket gets the first slot
    c = WSClient(t, "/ws/live", answer_pings=how != "ws_timeout")
    assert c.recv() is not None
    if how == "reset":
        c.abort()
    elif how == "eof":
        c.shutdown()
    else:
        assert c.wait_end(3) == "reset"
        c.shutdown()
    assert wait_for(lambda: t.status()["long_lived_open"] == 0, timeout=2)
    conns = [t.connect() for _ in range(2)]
    try:
        for k in conns:
            assert k.request("GET", "/api/led").status == 200
        time.sleep(2.2)  # two publishes of the figures
        for k in conns:
            assert k.request("GET", "/api/led").status == 200
    finally:
        for k in conns:
            k.close()
    st = t.status()
    assert "error" not in st["closes_by_server"], st["closes_by_server"]


# ---- the cap on long-lived connections ----

def test_the_cap_on_long_lived_connections_answers_503_and_http_goes_on(make_sim):
    t = make_sim(dict(QUICK, max_long_lived_connections=3))
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(ws_connect(t, "/ws/echo")) for _ in range(2)]
        with t.client():
            stream = stack.enter_context(requests.get(t.url + "/events", stream=True, timeout=5))  # counts too
        assert stream.status_code == 200
        assert wait_for(lambda: t.status()["long_lived_open"] == 3, timeout=2)
        with pytest.raises(InvalidStatus) as e:
            ws_connect(t, "/ws/echo")
        assert e.value.response.status_code == 503
        assert int(e.value.response.headers["Retry-After"]) > 0
        with t.client():
            r = requests.get(t.url + "/events", timeout=5)
        assert r.status_code == 503 and "Retry-After" in r.headers
        for _ in range(5):  # plain HTTP is served meanwhile
            with t.client():
                assert requests.get(t.url + "/api/led", timeout=1).status_code == 200
        for ws in held:
            ws.send("still here")
            assert ws.recv(timeout=5) == "still here"
        held[0].close()
        assert wait_for(lambda: t.status()["long_lived_open"] == 2, timeout=2)
        with ws_connect(t, "/ws/echo") as ws:  # a place came free
            ws.send("in")
            assert ws.recv(timeout=5) == "in"
    assert wait_for(lambda: t.status()["long_lived_open"] == 0, timeout=3)
    assert t.status()["rejected_busy"] == 0  # the 503s were the cap's, not the accept queue's


def test_the_cap_stays_below_max_connections(make_sim):
    t = make_sim(dict(QUICK, max_connections=3, max_long_lived_connections=3))
    with ws_connect(t, "/ws/echo"), ws_connect(t, "/ws/echo"):
        with pytest.raises(InvalidStatus) as e:
            ws_connect(t, "/ws/echo")  # 3 of 3 slots would leave none for a request
        assert e.value.response.status_code == 503
        with t.client():
            assert requests.get(t.url + "/api/led", timeout=2).status_code == 200


# ---- dead peers ----

def test_a_silent_client_is_pinged_and_one_that_answers_stays(make_sim):
    t = make_sim(QUICK)
    with WSClient(t, "/ws/echo") as c:
        t0 = time.monotonic()
        pings = []
        while time.monotonic() - t0 < 2.0:
            try:
                f = c.recv_frame(timeout=0.5)
            except TimeoutError:
                continue
            assert f is not None, "dropped although it answered every ping"
            if f.opcode == Opcode.PING:
                pings.append(time.monotonic() - t0)
        c.send("alive")
        assert c.recv() == "alive"
    assert len(pings) >= 3, pings  # ws_ping_interval_ms 400, answered at once
    assert 0.3 <= pings[0] <= 0.8, pings
    assert "ws_timeout" not in t.status()["closes_by_server"]


def test_a_client_that_never_answers_pings_is_dropped_with_a_reset(make_sim):
    t = make_sim(QUICK)
    with WSClient(t, "/ws/echo", answer_pings=False) as c:
        t0 = time.monotonic()
        f = c.recv_frame(timeout=2)
        pinged = time.monotonic() - t0
        assert f.opcode == Opcode.PING
        assert c.wait_end(3) == "reset"
        dropped = time.monotonic() - t0
    assert 0.3 <= pinged <= 0.8 and 0.6 <= dropped <= 1.5, (pinged, dropped)  # 400 + 400 ms, ticks of 50
    st = t.status()
    assert st["closes_by_server"] == {"ws_timeout": 1} and st["server_resets"] == 1, st
    assert st["long_lived_open"] == 0
    assert t.time_wait() == 0


def test_any_frame_counts_as_alive(make_sim):
    t = make_sim(QUICK)
    with WSClient(t, "/ws/echo", answer_pings=False) as c:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.6:  # 2 pong timeouts: silence would have been dropped
            c.send("tick")
            assert c.recv(timeout=1) == "tick"
            time.sleep(0.2)
    assert "ws_timeout" not in t.status()["closes_by_server"]


def test_unmasked_frame_fails_the_connection_over_the_wire(board):
    # the refusals are abuse/test_ws_abuse.py's; one here: what the client sees
    with WSClient(board, "/ws/echo") as c:
        c.send_frame(BadFrame(Opcode.TEXT, b"x"), mask=False)
        assert c.expect_close() == (1002, "client frame not masked")
        assert c.wait_end(3) in ("reset", "eof")
