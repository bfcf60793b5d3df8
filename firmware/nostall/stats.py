# What the server counts; status.py makes /status and the live figures of it. Counting is the
# only job here: every connection's end passes through ended(), every answered status through
# answered(), every handler failure through handler_error().

import sys

from nostall.ticks import ticks_diff, ticks_ms

# How a connection ended when it was not the server's doing; every other reason is a close the
# server made first (idle_timeout, evicted, protocol_error, shutdown, ...: see README "/status").
CLIENT = "client"  # the client closed (EOF): the close this server wants
RESET = "reset"  # the client reset the connection


class Stats:
    """Counters of one server. The pool keeps the connection gauges (open, peak)."""

    def __init__(self):
        self._ticks = ticks_ms()
        self._up_ms = 0
        self.accepted = 0
        self.requests = 0
        self.closes_by_client = 0
        self.resets_by_client = 0
        self.closes_by_server = {}  # reason -> count
        self.server_resets = 0  # of those, closed with a RST (sockets.close): no TIME_WAIT
        self.status_4xx = 0
        self.status_5xx = 0
        self.handler_errors = 0
        self.handler_errors_by_kind = {}  # exception, memory, bad_response, stream, timeout
        self.turned_away = 0  # newcomers that found no slot (turnaway.py): waited, or refused at once
        self.rejected_busy = 0
        self.ws_protocol_errors = 0  # WebSocket clients closed for breaking RFC 6455
        self.accept_errors = 0

    def uptime_ms(self):
        """Milliseconds since start. ticks_ms wraps (every 12.4 days on a board), so the time
        is summed up at each call; the server's ticker calls this every tick_ms."""
        now = ticks_ms()
        self._up_ms += ticks_diff(now, self._ticks)
        self._ticks = now
        return self._up_ms

    def ended(self, reason, reset=False):
        """Count how a connection ended: the client closed, the client reset, or the server
        closed first (by reason; reset: with a RST, so no TIME_WAIT on the board)."""
        if reset:
            self.server_resets += 1
        if reason == CLIENT:
            self.closes_by_client += 1
        elif reason == RESET:
            self.resets_by_client += 1
        else:
            d = self.closes_by_server
            d[reason] = d.get(reason, 0) + 1

    def answered(self, status):
        """Count a response's status (only errors are counted by class)."""
        if status >= 500:
            self.status_5xx += 1
        elif status >= 400:
            self.status_4xx += 1

    def handler_error(self, kind, path, exc):
        """Count (by kind: exception, memory, bad_response, stream, timeout) and log a handler's failure."""
        self.handler_errors += 1
        d = self.handler_errors_by_kind
        d[kind] = d.get(kind, 0) + 1
        print("nostall: handler error (%s) on %s: %r" % (kind, path, exc))
        if exc is not None and hasattr(sys, "print_exception"):
            sys.print_exception(exc)
