# The bounds of the limits (config.py has their names and defaults): a Config given values of
# its own is checked here, once, when it is made; a default Config loads none of this.

from nostall.config import NAMES, ConfigError

# the smallest value each limit may take (the rest: 1). 0 where 0 means "none" or "no cap";
# sizes below which nothing useful fits: a WebSocket message as long as a control frame may be
# (125, RFC 6455), a buffer for a short head, a request line "GET / HTTP/1.1", one header field
# "Host: x", a file piece; ticks under 10 ms only cost wake-ups
_MIN = {
    "max_connections": 1,
    "listen_backlog": 1,
    "max_requests_per_connection": 0,
    "max_turnaways": 0,
    "max_long_lived_connections": 0,
    "ws_max_message_bytes": 125,
    "recv_buffer_bytes": 256,
    "max_request_line_bytes": 16,
    "max_header_bytes": 64,
    "max_header_count": 1,
    "max_body_bytes": 0,
    "send_chunk_bytes": 64,
    "gc_every_bytes": 0,
    "heap_grown_bytes": 0,
    "tick_ms": 10,
}


# the largest some sizes may be: a long head gets a buffer of max_header_bytes while it is read
# (16 KB: beyond what servers take, nginx 8 KB a line, Apache 8 KB a field, on a board's heap)
_MAX = {"max_header_bytes": 16384}


def check(cfg, overrides):
    """Set overrides on cfg, each a known limit's int within its bounds; ConfigError with the fix."""
    for name, value in overrides.items():
        if name not in NAMES:
            raise ConfigError("unknown limit %r; known: %s" % (name, ", ".join(NAMES)))
        if type(value) is not int:
            raise ConfigError("limit %s must be an integer, got %r" % (name, value))
        setattr(cfg, name, value)
    for name in NAMES:
        v = getattr(cfg, name)
        lo = _MIN.get(name, 1)
        if v < lo:
            raise ConfigError("limit %s=%d is below its minimum %d" % (name, v, lo))
        hi = _MAX.get(name)
        if hi is not None and v > hi:
            raise ConfigError("limit %s=%d is above its maximum %d" % (name, v, hi))
    if cfg.max_request_line_bytes > cfg.max_header_bytes:
        raise ConfigError("max_request_line_bytes must not exceed max_header_bytes")
