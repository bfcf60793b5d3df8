"""The firmware build's C module _nostall_tcp, faked for the sim board behind the lwIP emulator.

On a board, abort(sock, force=False) runs lwIP's tcp_abort() on the socket's pcb (RST, pcb
freed, no TIME_WAIT) unless data of the board's is still unsent or unacknowledged (then it
declines: False, nothing changed; force aborts anyway), and unacked(sock) says whether such data
is there (boards/cmodules/nostall_tcp). Behind the emulator the board's pcb is the gateway's
lwIP pcb, so the gateway decides: this module asks it over UDP on 127.0.0.1 at the port number
the sim listens on (host_tests/lwipgw/lwipgw.c, "control socket"; UDP and TCP ports are apart),
naming the connection by the sim's peer port: both ports are in the socket's line of
/proc/self/net/tcp (the unix port has no getpeername), found by the socket's inode. Bytes still unacknowledged on the
sim's own loopback socket count as unacknowledged too: on a board they would be in the pcb.

Why: without it the sim resets with Linux's SO_LINGER {1, 0}, which always resets, and the
gateway mirrors that reset, cutting the tail of an answer lwIP is still retransmitting: a board
never does that. After "aborted" the sim's socket gets SO_LINGER {1, 0}, so its close on
loopback is a reset too.

Importable only with SIM_LWIP set (harness/simboard.py sets it when a gateway fronts the sim);
without it the import fails and firmware/nostall/sockets.py uses SO_LINGER as before. A gateway
that does not answer within 500 ms: declined / False, and one line printed.
"""

import os
import socket
import struct

if not os.getenv("SIM_LWIP"):
    raise ImportError("_nostall_tcp: only behind the lwIP emulator (SIM_LWIP)")

_TIMEOUT_S = 0.5
_SOL_SOCKET = 1  # Linux
_SO_LINGER = 13
_LINGER_0 = struct.pack("ii", 1, 0)
# made at import, with the server's other sockets: tests count the sim's fds around a close
_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
_gateway = {}  # our listening port -> the gateway's address


def _peer(sock):
    """(peer port, local port, bytes the sim's socket has sent that are not acknowledged), or
    None. The socket's inode names its line in /proc/self/net/tcp: local_address (index 1),
    rem_address (2), tx_queue:rx_queue (4), inode (9); ports in hex after the colon."""
    try:
        inode = str(os.stat("/proc/self/fd/%d" % sock.fileno())[1])
        with open("/proc/self/net/tcp") as f:
            for line in f:
                if inode in line:
                    cols = line.split()
                    if cols[9] == inode:
                        return int(cols[2][9:], 16), int(cols[1][9:], 16), int(cols[4][:8], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _ask(port, request):
    """The answer (bytes) of the gateway in front of our listening port to request, or None."""
    try:
        addr = _gateway.get(port)
        if addr is None:
            addr = _gateway[port] = socket.getaddrinfo("127.0.0.1", port)[0][-1]
        u = _udp
        u.settimeout(0)
        try:
            while u.recv(64):  # a late answer to an earlier request is not this one's
                pass
        except OSError:
            pass
        u.settimeout(_TIMEOUT_S)
        u.sendto(request, addr)
        return u.recv(64)
    except (OSError, ValueError, TypeError) as e:
        print("_nostall_tcp: lwipgw did not answer %r: %r" % (request, e))
        return None


def abort(sock, force=False):
    """Reset the connection if nothing of ours is in flight (or force): True if it was reset."""
    peer = _peer(sock)
    if not peer or not peer[0] or (peer[2] and not force):
        return False  # not a connection (listening: its peer port is 0), or data in flight
    if _ask(peer[1], b"abort %d %d" % (peer[0], 1 if force else 0)) != b"aborted":
        return False
    try:
        sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _LINGER_0)
    except OSError:
        pass
    return True


def unacked(sock):
    """True while data we sent is unsent or unacknowledged."""
    peer = _peer(sock)
    if not peer or not peer[0]:
        return False
    return bool(peer[2]) or _ask(peer[1], b"unacked %d" % peer[0]) == b"1"
