"""The sim board's socket module: the unix port's own (usocket), with one change of address. On a
board, binding 0.0.0.0 (firmware/board.py's BIND_HOST) listens on the board's interfaces, and the
listening socket outlives a Wi-Fi reconnect, also onto another address. The sim board's
interfaces all live on the host's loopback, so its 0.0.0.0 is 127.0.0.1: the sim listens on
loopback only, with the firmware unchanged. Whatever address the fake network hands out
(network.py: a label) does not move it. MicroPython only."""

from usocket import *  # noqa: F403
import usocket as _usocket

_ANY = ("0.0.0.0", "")
_HOST_LOOPBACK = "127.0.0.1"


def getaddrinfo(host, port, *args):
    if host in _ANY:
        host = _HOST_LOOPBACK
    return _usocket.getaddrinfo(host, port, *args)
