"""Wi-Fi weather in the lwIP emulator (host_tests/lwipgw/weather.c, issue 16): the gateway loses,
delays, reorders, duplicates and rate-limits its own frames and takes its link down, per
direction, with a seed that replays the per-frame decisions. These tests check that each knob does
what it says (the gateway's counters, the client's own clock) and that TCP through lwIP still
delivers every byte in order.

The upstream is a small CPython server on 127.0.0.1 (threads, home namespace): per connection a
first line "ECHO" (echo everything), "SEND n" (send n bytes, then wait for EOF) or "SINK n" (read n
bytes, answer "ok"). Each test has a gateway of its own. The whole file runs in about 30 s.
"""
import os
import socket
import struct
import threading
import time

import pytest

from harness.emu import netns

LWIP_MAC = "02:00:00:77:00:02"  # lwipgw.c: tap_netif_init
IO_TIMEOUT_S = 20.0  # per socket call: several of lwIP's retransmissions


class Upstream:
    """ECHO / SEND n / SINK n on 127.0.0.1 (see the module docstring)."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _serve(c):
        try:
            c.settimeout(60)
            f = c.makefile("rb")
            cmd = f.readline().split()
            if cmd and cmd[0] == b"SEND":
                c.sendall(b"s" * int(cmd[1]))
            elif cmd and cmd[0] == b"SINK":
                f.read(int(cmd[1]))
                c.sendall(b"ok\n")
            else:
                while True:
                    data = f.read1(65536)
                    if not data:
                        break
                    c.sendall(data)
            while c.recv(65536):  # the client closes first
                pass
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.srv.close()
        for c in self.conns:
            c.close()


@pytest.fixture(scope="module")
def upstream():
    u = Upstream()
    yield u
    u.close()


def _connect(emu):
    with emu.client():
        s = socket.socket()
    s.settimeout(IO_TIMEOUT_S)
    s.connect((emu.ip, emu.port))
    return s


def _recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        data = s.recv(min(65536, n - len(buf)))
        if not data:
            raise ConnectionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += data
    return bytes(buf)


def _echo(emu, payload, chunk=2048):
    """payload through ECHO, chunk by chunk (ping-pong); returns what came back."""
    s = _connect(emu)
    with s:
        s.sendall(b"ECHO\n")
        back = bytearray()
        for i in range(0, len(payload), chunk):
            piece = payload[i:i + chunk]
            s.sendall(piece)
            back += _recv_exact(s, len(piece))
    return bytes(back)


def _pattern(n):
    """Bytes whose every 4-byte word is its own index: a lost, doubled or swapped segment shows."""
    return b"".join(struct.pack(">I", i) for i in range(n // 4))


def _connect_ms(emu, n=5):
    """Median time of n TCP handshakes through lwIP: one round trip each."""
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        s = _connect(emu)
        times.append((time.monotonic() - t0) * 1e3)
        s.close()
        time.sleep(0.02)
    return sorted(times)[len(times) // 2]


def _total(w, key):
    return w["to_client"][key] + w["from_client"][key]


def test_no_weather_is_no_weather(upstream):
    """Without options nothing is queued, delayed or dropped, and the settings say off."""
    with netns.Emulator(upstream.port) as emu:
        data = _pattern(20000)
        assert _echo(emu, data) == data
        w = emu.wait_stats(lambda s: s["weather"]["to_client"]["frames"] > 20)["weather"]
    print("\nno weather: %s" % {d: (w[d]["frames"], w[d]["delivered"]) for d in netns.WEATHER_DIRS})
    assert w["active"] == 0 and w["down"] == 0, w
    for d in netns.WEATHER_DIRS:
        assert w[d]["spec"] == "off", w
        assert w[d]["frames"] == w[d]["delivered"] > 0, w
        assert w[d]["delayed"] == w[d]["queued_max"] == 0, w
        assert w[d]["dropped_loss"] + w[d]["dropped_down"] + w[d]["dropped_queue"] == 0, w


def test_loss_drops_its_share_and_tcp_delivers_everything(upstream):
    """10 % loss each way: about a tenth of the frames dropped (300 pings, then a TCP echo), and
    every byte of the echo comes back in order."""
    with netns.Emulator(upstream.port, weather="loss=10", seed=11) as emu:
        with emu.client():
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        with sock:
            answered = len(_pings(emu, sock, 300, os.getpid() & 0xFFFF))
        data = _pattern(20000)
        t0 = time.monotonic()
        back = _echo(emu, data, chunk=4096)
        took = time.monotonic() - t0
        w = emu.wait_stats(lambda s: s["weather"]["active"])["weather"]
    frames, dropped = _total(w, "frames"), _total(w, "dropped_loss")
    share = dropped / frames
    print("\nloss=10 each way: %d of %d frames dropped (%.1f %%; to client %d/%d, from client %d/%d); "
          "%d of 300 pings answered; 20 KB echoed in %.1f s" % (
              dropped, frames, 100 * share, w["to_client"]["dropped_loss"], w["to_client"]["frames"],
              w["from_client"]["dropped_loss"], w["from_client"]["frames"], answered, took))
    assert back == data
    assert w["to_client"]["loss"] == 10 and w["seed"] == 11, w
    assert frames > 500, w
    assert 0.07 <= share <= 0.13, w
    assert 0.7 * 300 <= answered <= 0.9 * 300, answered  # 0.9 * 0.9 of them, about
    assert w["to_client"]["dropped_loss"] > 0 and w["from_client"]["dropped_loss"] > 0, w
    for d in netns.WEATHER_DIRS:  # nothing else happened to them
        assert w[d]["frames"] == w[d]["dropped_loss"] + w[d]["delivered"], w


def _icmp_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _pings(emu, sock, count, ident):
    """Send count ICMP echo requests to lwIP (1 ms apart), then collect the replies for 0.5 s:
    the set of sequence numbers answered."""
    for seq in range(count):
        head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        body = b"weather"
        sock.sendto(struct.pack("!BBHHH", 8, 0, _icmp_checksum(head + body), ident, seq) + body, (emu.ip, 0))
        time.sleep(0.001)
    got = set()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            pkt = sock.recv(2048)
        except socket.timeout:
            break
        icmp = pkt[(pkt[0] & 0xF) * 4:]
        typ, _, _, rid, seq = struct.unpack("!BBHHH", icmp[:8])
        if typ == 0 and rid == ident:
            got.add(seq)
    return got


def test_same_seed_same_decisions(upstream):
    """Loss on the frames lwIP sends (its echo replies, one per ping): after the same seed the
    same pings go unanswered, after another seed others do. The frame index counts from the seed."""
    count = 120
    with netns.Emulator(upstream.port) as emu:
        # no ARP in the counted frames: the client knows lwIP's MAC, lwIP learns the client's
        # in the warm-up ping (its ARP request is a frame before the seed)
        emu.run_in_ns(["ip", "neigh", "replace", emu.ip, "lladdr", LWIP_MAC, "dev", emu.tap, "nud", "permanent"],
                      check=True)
        with emu.client():
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        with sock:
            ident = os.getpid() & 0xFFFF
            assert _pings(emu, sock, 1, ident) == {0}  # warm-up, no weather
            emu.set_weather({"to_client": "loss=30"})
            runs = {}
            for name, seed in (("a", 1234), ("b", 1234), ("c", 999)):
                emu.reseed(seed)
                before = emu.wait_stats(lambda s: s["weather"]["to_client"]["index"] == 0)["weather"]["to_client"]
                lost = set(range(count)) - _pings(emu, sock, count, ident)
                after = emu.wait_stats(lambda s: s["weather"]["to_client"]["index"] >= count)["weather"]["to_client"]
                runs[name] = (lost, after["dropped_loss"] - before["dropped_loss"], after["index"])
    print("\nseed 1234 twice, then 999: %s" % {k: (len(v[0]), v[1], v[2]) for k, v in runs.items()})
    (lost_a, drop_a, n_a), (lost_b, drop_b, n_b), (lost_c, _, _) = runs["a"], runs["b"], runs["c"]
    assert n_a == n_b == count, runs              # exactly one reply frame per ping
    assert lost_a == lost_b and drop_a == drop_b == len(lost_a), runs
    assert 0.15 * count <= len(lost_a) <= 0.45 * count, runs
    assert lost_c != lost_a, runs


def test_delay_raises_the_round_trip(upstream):
    """delay=40 each way: a handshake (one round trip) takes 80 ms more; with jitter=15 the
    frames still arrive in order (every byte echoed right) and no round trip beats 2*(40-15) ms."""
    with netns.Emulator(upstream.port) as emu:
        base = _connect_ms(emu)
        emu.set_weather("delay=40")
        delayed = _connect_ms(emu)
        emu.set_weather("delay=40,jitter=15")
        s = _connect(emu)
        with s:
            s.sendall(b"ECHO\n")
            rtts = []
            for i in range(15):
                msg = b"%04d" % i * 300
                t0 = time.monotonic()
                s.sendall(msg)
                assert _recv_exact(s, len(msg)) == msg
                rtts.append((time.monotonic() - t0) * 1e3)
        w = emu.weather_stats()
    print("\nhandshake: %.1f ms without, %.1f ms with delay=40 each way; echo with jitter 15: "
          "min %.0f, max %.0f ms" % (base, delayed, min(rtts), max(rtts)))
    assert 70 <= delayed - base <= 140, (base, delayed)
    assert min(rtts) >= 2 * (40 - 15) - 2, rtts
    assert w["to_client"]["delayed"] > 0 and w["from_client"]["delayed"] > 0, w
    assert w["to_client"]["jitter_ms"] == 15 and w["from_client"]["delay_ms"] == 40, w


def test_rate_limit_bounds_throughput(upstream):
    """rate=1M toward the client: 100 KB takes at least 0.8 s (the frames' headers on top);
    a queue of 2 frames toward lwIP drops what does not fit, counted, and TCP still gets it all."""
    n = 100_000
    with netns.Emulator(upstream.port, weather={"to_client": "rate=1M"}) as emu:
        s = _connect(emu)
        with s:
            s.sendall(b"SEND %d\n" % n)
            t0 = time.monotonic()
            got = _recv_exact(s, n)
            took = time.monotonic() - t0
        emu.set_weather({"from_client": "rate=1M,limit=2"})
        s = _connect(emu)
        with s:
            s.sendall(b"SINK 60000\n" + b"k" * 60000)
            assert _recv_exact(s, 3) == b"ok\n"
        w = emu.wait_stats(lambda s: s["weather"]["from_client"]["dropped_queue"] > 0)["weather"]
    bps = n * 8 / took
    print("\nrate=1M: 100 KB in %.2f s = %.0f kbit/s of payload; queue of 2 toward lwIP: %d frames "
          "dropped of %d, queued at most %d" % (took, bps / 1e3, w["from_client"]["dropped_queue"],
                                                 w["from_client"]["frames"], w["from_client"]["queued_max"]))
    assert got == b"s" * n
    assert 0.5e6 <= bps <= 1.0e6, (took, bps)
    assert w["to_client"]["rate_bps"] == 1e6 and w["to_client"]["dropped_queue"] == 0, w
    assert w["from_client"]["dropped_queue"] > 0 and w["from_client"]["queued_max"] <= 2, w


def test_link_down_blocks_then_tcp_recovers(upstream):
    """A --down window from the start (1.5 s after it, for 1 s), then link_down(1500) at run
    time: nothing passes either way meanwhile (counted), then the client's retransmission gets
    through and the connection carries on."""
    with netns.Emulator(upstream.port, down=[(1500, 1000)]) as emu:
        s = _connect(emu)
        with s:
            s.sendall(b"ECHO\n")
            s.sendall(b"before")
            assert _recv_exact(s, 6) == b"before"
            # start_ms: the gateway's CLOCK_MONOTONIC at its start, which is time.monotonic()
            window_at = emu.weather_stats()["start_ms"] / 1e3 + 1.5
            time.sleep(max(0.0, window_at - time.monotonic()) + 0.1)
            t0 = time.monotonic()
            s.sendall(b"window")
            assert _recv_exact(s, 6) == b"window"
            back_window = time.monotonic() - t0
            w_window = emu.wait_stats(lambda s: s["weather"]["down"] == 0)["weather"]

            emu.link_down(1500)
            t0 = time.monotonic()
            s.sendall(b"during")
            w_down = emu.wait_stats(lambda s: s["weather"]["down"] == 1)["weather"]
            s.settimeout(1.0)
            with pytest.raises(socket.timeout):
                s.recv(6)
            s.settimeout(IO_TIMEOUT_S)
            assert _recv_exact(s, 6) == b"during"
            back_after = time.monotonic() - t0
        w = emu.wait_stats(lambda s: s["weather"]["down"] == 0)["weather"]
    print("\nscheduled 1 s window: echo back after %.2f s; link_down(1500): after %.2f s; "
          "dropped while down: %d to client, %d from client"
          % (back_window, back_after, w["to_client"]["dropped_down"], w["from_client"]["dropped_down"]))
    assert w_window["down_schedule"] == [[1500, 1000]], w_window
    assert 0.5 <= back_window <= 8.0, back_window
    assert w_window["from_client"]["dropped_down"] >= 1, w_window
    assert w_down["down"] == 1 and 0 < w_down["down_left_ms"] <= 1500, w_down
    assert 1.4 <= back_after <= 8.0, back_after
    assert w["from_client"]["dropped_down"] >= w_window["from_client"]["dropped_down"] + 1, w


def test_duplication_and_reordering_counted_tcp_correct(upstream):
    """dup=10, reorder=25 with delay=10 each way: duplicated and reordered frames, counted about
    at their rates; every byte echoed in order."""
    with netns.Emulator(upstream.port, weather="delay=10,reorder=25,dup=10", seed=5) as emu:
        data = _pattern(40000)
        assert _echo(emu, data, chunk=8192) == data
        w = emu.weather_stats()
    frames = _total(w, "frames")
    print("\ndup=10 reorder=25 delay=10: %d frames, %d duplicated, %d reordered, %d delivered"
          % (frames, _total(w, "duplicated"), _total(w, "reordered"), _total(w, "delivered")))
    assert frames > 100, w
    assert 0.04 * frames <= _total(w, "duplicated") <= 0.2 * frames, w
    assert 0.12 * frames <= _total(w, "reordered") <= 0.4 * frames, w
    for d in netns.WEATHER_DIRS:
        assert w[d]["duplicated"] > 0 and w[d]["reordered"] > 0, w
        assert w[d]["delivered"] == w[d]["frames"] + w[d]["duplicated"] - w[d]["queued"], w
