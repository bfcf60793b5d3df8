# The socket calls that differ between a board and the sim board: options on an accepted socket,
# how a connection is closed, whether bytes wait on a socket, whether ours are acknowledged.
# Nothing here imports network or machine.
#
# Closing. In normal operation the client closes first, so the board holds no TIME_WAIT. When
# the board must close first with nothing of its own in flight (an idle or silent connection
# timed out or evicted, shutdown, a client that did not close after "Connection: close"),
# close(sock, True) resets the connection instead of sending a FIN: the pcb is freed at once and
# no TIME_WAIT stays on the board. How, by platform (ABORTIVE_CLOSE says which one runs):
#   "tcp_abort"  this project's firmware build: _nostall_tcp.abort() (boards/cmodules), lwIP's
#                tcp_abort(); it declines while sent data is unacknowledged, and then the close
#                is a normal one
#   "so_linger"  Linux (the sim board): SO_LINGER {1, 0}, which always resets
#   "none"       stock MicroPython on a board (make deploy): neither exists, so a normal close
#                (FIN; TIME_WAIT on the board, 12 s with this project's sdkconfig, 120 s stock)
# The sim behind the lwIP emulator runs "tcp_abort" too: host_tests/sim/_nostall_tcp.py asks the
# emulator's lwIP, which decides as the C module does.
#
# So that a timeout never makes the board close first while its answer is unacknowledged, the
# states that wait for the client's EOF count their time from the acknowledgement of the
# board's last bytes (unacked(), pool.py's "after acks").

import select
import struct
import sys
from micropython import const

_IPPROTO_TCP = const(6)  # the same numbers on Linux and lwIP; MicroPython's unix port lacks the names
_TCP_NODELAY = const(1)
_SOL_SOCKET = const(1)  # Linux
_SO_LINGER = const(13)  # Linux

try:
    from _nostall_tcp import abort as _tcp_abort  # pyright: ignore[reportMissingImports]

    ABORTIVE_CLOSE = "tcp_abort"
except ImportError:
    _tcp_abort = None
    ABORTIVE_CLOSE = "so_linger" if sys.platform == "linux" else "none"
try:
    from _nostall_tcp import unacked as _tcp_unacked  # pyright: ignore[reportMissingImports]
except ImportError:
    _tcp_unacked = None  # a firmware build before unacked(), the sim on Linux, stock MicroPython

_LINGER_0 = struct.pack("ii", 1, 0)
_poller = select.poll()  # one for the process: readable() is not reentrant and need not be


def accepted(sock):
    """Set up a socket just accepted: non-blocking, no Nagle."""
    sock.setblocking(False)
    try:
        # a head and a body written separately must not wait for the client's delayed ACK
        # (Nagle): 40 ms per response on Linux, 100+ ms on lwIP
        sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
    except OSError:
        pass


def close(sock, abortive=False, force=False):
    """Close sock; abortive: reset it if this platform can (see the module comment); force: even
    with data unsent or unacknowledged (a client that stopped reading: lwIP would keep its pcb
    through minutes of persist probes after a plain close). True if it was reset."""
    reset = False
    if abortive:
        try:
            if _tcp_abort is not None:
                reset = _tcp_abort(sock, force)
            elif ABORTIVE_CLOSE == "so_linger":
                sock.setsockopt(_SOL_SOCKET, _SO_LINGER, _LINGER_0)
                reset = True
        except OSError:
            reset = False
    try:
        sock.close()
    except OSError:
        pass
    return reset


def unacked(sock):
    """True while bytes sent on sock are not yet acknowledged by the client: lwIP still holds
    them and retransmits them, a second or more after a loss on Wi-Fi. Only this project's
    firmware build can tell (_nostall_tcp.unacked); elsewhere False: the sim's loopback loses
    nothing, and on stock MicroPython a close is a FIN whatever the answer."""
    if _tcp_unacked is None or sock is None:
        return False
    try:
        return _tcp_unacked(sock)
    except OSError:
        return False


def readable(sock):
    """True when bytes (a request, or the client's EOF) wait on sock; does not read them."""
    _poller.register(sock, select.POLLIN)
    try:
        return bool(_poller.poll(0))
    finally:
        _poller.unregister(sock)
