"""A tab whose WebSocket stops reading must not hurt the other clients. A browser always reads, so
the tabs that stop are Python clients: each completes the WebSocket handshake on /ws/echo (the
`websockets` library's sans-IO protocol makes the bytes), then sends messages and never reads the
echoes, with a receive buffer of 4 KB, so the board's echo soon cannot go out. Meanwhile the
dashboard in Chromium must stay live on its own WebSocket and plain HTTP requests must be answered
quickly; the non-readers must be dropped at write_timeout_ms with a reset, and the board's fds and
long-lived count must come back to where they were."""

import socket
import threading
import time

import requests
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from harness.browser import Dashboard
from harness.target import wait_for

NON_READERS = 3  # with the dashboard's own: max_long_lived_connections (4)
WRITE_TIMEOUT_MS = 2000  # the default 10 s, shortened: the test waits for it
# small messages: the sim compiles the firmware into its heap, which leaves too little in one piece
# to echo an 8 KB message (1011, the handler's MemoryError); many small ones fill buffers as well
MESSAGE = b"x" * 1024
# Loopback's 64 KB MSS lets Linux grow the board's send buffer to megabytes: several MB go before
# the echo blocks and the board stops reading (7 MB in 0.9 s, measured)
STUCK_S = 0.5
PUMP_LIMIT_S = 15


class NonReader:
    """A WebSocket client that sends and never reads."""

    def __init__(self, target, path):
        self.proto = ClientProtocol(parse_uri("ws://%s:%d%s" % (target.host, target.port, path)))
        with target.client():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
            self.sock.settimeout(5)
            self.sock.connect((target.host, target.port))
        self.proto.send_request(self.proto.connect())
        self.sock.sendall(b"".join(self.proto.data_to_send()))
        while self.proto.handshake_exc is None and not self.proto.events_received():
            data = self.sock.recv(1)  # the 101 and its head, byte by byte: nothing after it is read
            assert data, "closed during the handshake"
            self.proto.receive_data(data)
            if self.proto.state.name == "OPEN":
                break
        assert self.proto.state.name == "OPEN", self.proto.handshake_exc

    def pump(self):
        """Send binary messages, without blocking, until the kernel has taken nothing for
        STUCK_S (the board stopped reading too, its buffers full); the bytes sent."""
        self.sock.setblocking(False)
        sent = 0
        pending = b""
        t0 = last = time.monotonic()
        while time.monotonic() - t0 < PUMP_LIMIT_S:
            if not pending:
                self.proto.send_binary(MESSAGE)
                pending = b"".join(self.proto.data_to_send())
            try:
                n = self.sock.send(pending)
            except BlockingIOError:
                if time.monotonic() - last > STUCK_S:
                    return sent
                time.sleep(0.01)
                continue
            pending = pending[n:]
            sent += n
            last = time.monotonic()
        raise AssertionError("the board kept reading %d bytes for %.0f s" % (sent, PUMP_LIMIT_S))

    def reset_seen(self):
        """Read what the board sent (now, at last): True once the connection ends in a reset."""
        self.sock.settimeout(3)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except OSError:
            return False
        return False  # a plain EOF

    def close(self):
        self.sock.close()


def test_a_websocket_that_stops_reading_does_not_hurt_others(make_sim, browser, capsys):
    t = make_sim(limits={"write_timeout_ms": WRITE_TIMEOUT_MS})
    with t.client():
        browser.get(t.url + "/")
    page = Dashboard(browser)
    page.wait_ticking("ws", ticks=1)
    time.sleep(0.5)  # the page's own connections settle
    fds0 = t.fd_count()
    s0 = t.status()
    assert s0["long_lived_open"] == 1, s0  # the dashboard's WebSocket

    stop = threading.Event()
    latencies, failures = [], []

    def probe():  # a plain HTTP client, a new connection per request as requests.get makes them
        with t.client():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = requests.get(t.url + "/api/led", timeout=5)
                    r.raise_for_status()
                    latencies.append(time.monotonic() - t0)
                except Exception as e:
                    failures.append(repr(e))
                time.sleep(0.1)

    readers = [NonReader(t, "/ws/echo") for _ in range(NON_READERS)]
    try:
        assert wait_for(lambda: t.status()["long_lived_open"] == 1 + NON_READERS, timeout=5)
        prober = threading.Thread(target=probe)
        prober.start()
        pumped = [r.pump() for r in readers]
        t0 = time.monotonic()  # all of them stuck
        samples = []
        dropped = None
        while time.monotonic() - t0 < WRITE_TIMEOUT_MS / 1000 + 10:
            samples.append(page.state())
            st = t.status()
            n = st["closes_by_server"].get("write_timeout", 0) - s0["closes_by_server"].get("write_timeout", 0)
            if n >= NON_READERS and dropped is None:
                dropped = time.monotonic() - t0
            if dropped is not None and time.monotonic() - t0 > dropped + 2:
                break  # and two seconds more of the others being served
            time.sleep(0.4)
        stop.set()
        prober.join()
        resets = [r.reset_seen() for r in readers]
    finally:
        stop.set()
        for r in readers:
            r.close()
    s1 = t.status()
    ms = sorted(x * 1000 for x in latencies)
    uptimes = [s["uptime_ms"] for s in samples]
    with capsys.disabled():
        print("\nnon-readers: %d, %s bytes sent each before the board stopped reading; all dropped %.1f s after "
              "the last was stuck (write_timeout_ms %d); meanwhile %d HTTP requests, p50 %.1f ms, max %.1f ms, "
              "%d failed; the dashboard showed %d uptimes, link %s"
              % (NON_READERS, pumped, dropped or -1, WRITE_TIMEOUT_MS, len(ms), ms[len(ms) // 2] if ms else -1,
                 ms[-1] if ms else -1, len(failures), len(set(uptimes)), sorted({s["link"] for s in samples})))
    assert dropped is not None and dropped < WRITE_TIMEOUT_MS / 1000 + 3, (dropped, s1["closes_by_server"])
    assert all(resets), resets  # each non-reader was reset: the board keeps no pcb for it
    assert s1["server_resets"] - s0["server_resets"] >= NON_READERS
    # the others: every HTTP request answered, quickly; the dashboard live throughout
    assert not failures and len(ms) >= 10 and ms[-1] < 1000, (failures, ms[-5:])
    assert all(s["link"] == "up" and s["transport"] == "ws" for s in samples), samples
    assert len(set(uptimes)) >= 3 and uptimes == sorted(uptimes), uptimes
    page.wait_ticking("ws", ticks=1)
    # back to where it was: only the dashboard's WebSocket is long-lived, no fd left behind
    assert wait_for(lambda: t.status()["long_lived_open"] == 1, timeout=5)
    assert wait_for(lambda: t.fd_count() <= fds0, timeout=5), (t.fd_count(), fds0)
