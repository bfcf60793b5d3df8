"""The firmware build's C module _nostall_tcp, faked for the sim board behind the lwIP emulator.

On a board, abort(sock, force=False) runs lwIP's tcp_abort() on the socket's pcb (RST, pcb
freed, no TIME_WAIT) unless data of the board's is still unsent or unacknowledged (then it
declines: False, nothing changed; force aborts anyway), and unacked(sock) says whether such data
is there (boards/cmodules/nostall_tcp). Behind the emulator the board's pcb is the gateway's
lwIP pcb, so the gateway decides: this module asks it over UDP on 127.0.0.1 at the port number
the sim listens on (host_tests/lwipgw/lwipgw.c, "control socket"; UDP and TCP ports are apart),
naming the connection by the sim's peer port: both ports are in the socket's line of
/proc/self/net/tcp (the unix port has no getpeername), found by the socket's inode. What the sim
wrote that the gateway has not read counts as unacknowledged there (on a board it would be in the
pcb); what still waits in the sim's own send queue can only while the gateway's receive queue is
full, which it lets happen only while lwIP holds data of that connection anyway.

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
_buf = bytearray(2048)  # pieces of /proc/self/net/tcp (a line is about 150 bytes)
_view = memoryview(_buf)
_known = {}  # inode -> (peer port, local port), for the sockets asked about lately


def _ports(sock):
    """(peer port, local port) of an accepted socket, or None. Its line in /proc/self/net/tcp has
    its inode (index 9) after local_address (1) and rem_address (2), "0100007F:PPPP" in hex; read
    in pieces into one buffer (the file lists every socket of the namespace: hundreds of lines on
    a test host) and kept per inode, since neither port changes."""
    try:
        inode = os.stat("/proc/self/fd/%d" % sock.fileno())[1]
        found = _known.get(inode)
        if found:
            return found
        key = b" %d " % inode
        with open("/proc/self/net/tcp", "rb") as f:
            keep = 0
            while True:
                n = f.readinto(_view[keep:])
                if not n:
                    return None
                end = keep + n
                i = _buf.find(key, 0, end)
                while i >= 0:
                    cols = bytes(_buf[_buf.rfind(b"\n", 0, i) + 1 : i + len(key)]).split()
                    if len(cols) == 10 and int(cols[9]) == inode:  # not another column's number
                        if len(_known) >= 16:
                            _known.clear()
                        found = _known[inode] = (int(cols[2][9:], 16), int(cols[1][9:], 16))
                        return found
                    i = _buf.find(key, i + 1, end)
                start = _buf.rfind(b"\n", 0, end) + 1  # the last line may go on in the next piece
                keep = end - start
                _buf[:keep] = _buf[start:end]
    except (OSError, ValueError, IndexError):
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
    ports = _ports(sock)
    if not ports or not ports[0]:
        return False  # not a connection (a listening socket's peer port is 0)
    if _ask(ports[1], b"abort %d %d" % (ports[0], 1 if force else 0)) != b"aborted":
        return False
    try:
        sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _LINGER_0)
    except OSError:
        pass
    return True


def unacked(sock):
    """True while data we sent is unsent or unacknowledged."""
    ports = _ports(sock)
    if not ports or not ports[0]:
        return False
    return _ask(ports[1], b"unacked %d" % ports[0]) == b"1"
