"""The gateway's listen backlog, tied to the upstream's accept() as a board's is to the firmware's.

On a board (esp-lwip, TCP_LISTEN_BACKLOG 1) a connection counts against the listen backlog from
its SYN until the application accept()s it; a SYN beyond the backlog is dropped without a pcb and
the client retransmits it (Linux 6.x: once a second for the first 4 tries, tcp_syn_linear_timeouts;
older kernels after 1, 3, 7 s ...). A handshake that completes while
the accept mailbox (CONFIG_LWIP_TCP_ACCEPTMBOX_SIZE, 6) is full is reset.

The upstream here is host_tests/apps_emu/held_server.py: it listens with the same backlog and
accepts nothing until the test creates its go-file.
"""
import select
import socket
import time

from harness.emu import netns
from harness.emu.servers import upstream_server

HOLD_S = 1.5      # past the first SYN retransmission (1 s), so it is dropped too
DEADLINE_S = 8.0  # from the first connect: a retransmission after the release must get in


def _connect_all(emu, n):
    socks = []
    with emu.client():
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((emu.ip, emu.port))
            socks.append(s)
    return socks


def _connected(socks):
    """The sockets whose handshake completed (writable, no error)."""
    _, writable, _ = select.select([], socks, [], 0)
    return [s for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0]


def _read_all(socks, deadline):
    """{socket: bytes or the exception} once every socket has answered or deadline passes."""
    got = {}
    while len(got) < len(socks) and time.monotonic() < deadline:
        waiting = [s for s in socks if s not in got]
        readable, _, _ = select.select(waiting, [], [], 0.05)
        for s in readable:
            try:
                got[s] = s.recv(16)
            except OSError as e:
                got[s] = e
    return got


def test_syns_beyond_the_backlog_wait_for_accept(tmp_path):
    """4 clients, backlog 2, an upstream that does not accept: lwIP holds 2 pcbs and drops the other
    SYNs (their retransmissions too); once the upstream accepts, the retransmitted SYNs get in."""
    backlog, clients = 2, 4
    go = tmp_path / "go"
    with upstream_server("held_server.py", args=[backlog, go]) as port, \
            netns.Emulator(port, backlog=backlog) as emu:
        t0 = time.monotonic()
        socks = _connect_all(emu, clients)
        try:
            time.sleep(HOLD_S)
            held = emu.stats()
            n_connected = len(_connected(socks))
            go.touch()
            t_go = time.monotonic() - t0
            got = _read_all(socks, t0 + DEADLINE_S)
            t_all = time.monotonic() - t0
            st = emu.wait_stats(lambda s: s["upstream_accepted"] == clients)
        finally:
            for s in socks:
                s.close()
    print("\nheld %.1f s: %d connected, %s\nall answered after %.2f s (go at %.2f s): %s" % (
        HOLD_S, n_connected, {k: held[k] for k in ("pending_accept", "pcbs_active", "syns_dropped_backlog")},
        t_all, t_go, {k: st[k] for k in ("accepted", "upstream_accepted", "pending_accept_max",
                                         "syns_dropped_backlog")}))
    # while held: only the backlog's worth of handshakes, no pcb for the rest
    assert n_connected == backlog, held
    assert held["pending_accept"] == backlog and held["pcbs_active"] == backlog, held
    assert held["accepted"] == backlog and held["upstream_accepted"] == 0, held
    # each extra client's SYN and its retransmission after 1 s were dropped
    assert held["syns_dropped_backlog"] >= 2 * (clients - backlog), held
    # released: every client got in through its own retransmission, none was refused or reset
    assert all(v == b"hi\n" for v in got.values()) and len(got) == clients, got
    assert st["accepted"] == clients and st["pending_accept"] == 0, st
    assert st["pending_accept_max"] == backlog and st["upstream_backlog"] == backlog, st
    assert st["syns_dropped_no_pcb"] == 0 and st["accept_mbox_full"] == 0 and st["client_resets"] == 0, st


def test_full_accept_mailbox_resets(tmp_path):
    """A backlog above the accept mailbox (8 > 6): the 7th and 8th handshakes complete while 6 wait,
    and are reset, as accept_function() fails on a board; the 6 are served once accepted."""
    backlog, clients, mbox = 8, 8, 6
    go = tmp_path / "go"
    with upstream_server("held_server.py", args=[backlog, go]) as port, \
            netns.Emulator(port, backlog=backlog) as emu:
        socks = _connect_all(emu, clients)
        try:
            st = emu.wait_stats(lambda s: s["accept_mbox_full"] + s["pending_accept"] >= clients)
            reset = _read_all(socks, time.monotonic() + 0.5)
            go.touch()
            served = _read_all([s for s in socks if s not in reset], time.monotonic() + 5)
        finally:
            for s in socks:
                s.close()
    assert st["accept_mbox_full"] == clients - mbox and st["pending_accept"] == mbox, st
    assert len(reset) == clients - mbox and all(isinstance(v, ConnectionResetError) for v in reset.values()), reset
    assert len(served) == mbox and all(v == b"hi\n" for v in served.values()), served
