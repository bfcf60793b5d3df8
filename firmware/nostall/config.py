# Every limit and timeout of the server, with its unit in its name, and its one default.
# Sizes assume an ESP32 running MicroPython v1.24+: lwIP gives MicroPython 10 sockets
# (CONFIG_LWIP_MAX_SOCKETS) and 12 active TCP pcbs; the listener, DNS and mpremote/WebREPL
# need some of them, so the default connection cap is 6. The bounds of each (its minimum, and a
# maximum for some) are bounds.py's, checked when a Config is given values of its own.


class ConfigError(ValueError):
    pass


class SettingsError(ValueError):
    """A setting in the settings file is wrong (settings.py, lan.py; raised at start-up)."""


class Config:
    """Server limits: each a class attribute with its unit in its name and its one default.
    Unknown names and impossible values raise ConfigError with a fix.

    Example::

        cfg = Config(max_connections=4, idle_timeout_ms=3000)
    """

    # connections (counts)
    max_connections = 6  # open client sockets; at the cap the LRU idle one is evicted, else see below
    # connections lwIP holds for accept(), each from its SYN on; a SYN beyond them is dropped and
    # the client waits for its retransmission (Linux: 1 s; QEMU's slirp: 6 s). Clients connect in
    # bursts (browsers open up to 6 at once) that land before the event loop runs, so 2 made
    # 4 clients stall (issue 17, host_tests/harness/qemu_load.py). 4 fills lwIP's 12 pcbs with
    # the 6 slots and the 2 turn-aways (6 did not: through lwIP floods then took pcbs the slots
    # and turn-aways needed); on the QEMU C3 a burst of 4 fared as at 6 (0 stalls kept alive)
    listen_backlog = 4
    # then "Connection: close" and wait for the client's EOF; 0: no cap. A board has no use for
    # one (a connection holds nothing that grows, and at the cap idle ones are evicted anyway),
    # and each forced reconnect costs the client a handshake and leaves it a TIME_WAIT
    max_requests_per_connection = 0
    # newcomers waiting for a slot at the cap (then a 503); more than this are closed at once.
    # Each waiting one holds a socket of lwIP's 10: two leave room for the listener and DNS
    max_turnaways = 2
    # sizes (bytes)
    # per connection slot, preallocated: holds a usual request head (a browser's: 400-800).
    # A longer one (up to max_header_bytes) gets a buffer of that size while it is read
    recv_buffer_bytes = 1024
    max_request_line_bytes = 1024  # longer: 414
    max_header_bytes = 2048  # request line + headers + blank line; longer: 431
    max_header_count = 32  # more header fields: 431
    max_body_bytes = 16384  # Content-Length or decoded chunked body; larger: 413
    send_chunk_bytes = 1024  # files are read and sent in pieces this big (one buffer per transfer)
    # Where MicroPython grows its heap from the system's (the esp32 port): a collection every
    # this many bytes allocated while the heap is grown (heapkeep.py). The port grows its heap
    # for a transient (a 16 KB WebSocket message) by ESP-IDF's largest free block, leaving lwIP
    # and the network driver 7-20 KB, and gives the area back at a collection that finds it empty;
    # without one until the grown heap is full, what is kept meanwhile (a module loaded at its
    # first use) holds the area for good: on the QEMU C3 ESP-IDF stayed at 19 KB free and the
    # Ethernet driver ran out of receive buffers. 0: a collection only when the heap is full
    gc_every_bytes = 16384
    # ESP-IDF's free heap this far below its highest since the server started: "grown" (an area
    # is at least 18 KB for a 16 KB message, as large as the heap so far at first). Otherwise
    # collections only when full: every gc_every_bytes cost a C3 ~79k instructions a request.
    # 0: always grown
    heap_grown_bytes = 16384
    # timeouts (milliseconds)
    header_timeout_ms = 5000  # from the first byte of a request to the end of its head
    body_timeout_ms = 10000  # to read a whole body
    # a client that takes nothing of the answer this long is dropped (a reset). It must outlast
    # lwIP's retransmissions of one segment lost four times on Wi-Fi: ESP-IDF's first RTO is
    # 1.5 s and each retry waits longer (1.5 + 3 + 4.5 + 6 = 15 s); 10 s cut a request at 10 %
    # loss through lwIP. Longer costs little: at the cap a stalled client yields its slot
    write_timeout_ms = 20000
    # a kept-alive connection with no request in flight: longer than the clients keep one idle
    # (Chromium 300 s, Prometheus 5 min, aiohttp 15 s), so they close first and the board holds
    # no TIME_WAIT; at the cap the least recently used is evicted anyway
    idle_timeout_ms = 330000
    # a new connection that has sent nothing yet; Chromium drops an unused preconnect after 10 s
    first_request_timeout_ms = 20000
    # after "Connection: close": wait this long for the client's EOF, counted from the moment
    # the client has acknowledged the whole answer (a lost segment is retransmitted 1.5 s or
    # more later on Wi-Fi: the client cannot close before; unacknowledged for write_timeout_ms:
    # the client is gone, and the close is a reset)
    linger_timeout_ms = 2000
    linger_drain_bytes = 4096  # bytes read and dropped while waiting for that EOF
    handler_timeout_ms = 10000  # a handler that takes longer gets a 503
    # at the cap with none idle: a connection stalled on its client this long (no first request,
    # a trickling head or body, not reading, no EOF after close) yields its slot to a newcomer,
    # which waits up to this long for one before its 503
    stall_evict_ms = 1000
    shutdown_timeout_ms = 1000  # on stop, time given to responses in flight
    # WebSocket and event streams: long-lived connections, each in a slot of its own
    max_long_lived_connections = 4  # at once (at most max_connections - 1): the rest stay for requests
    ws_max_message_bytes = 16384  # a larger message, or a frame announcing one: close 1009
    ws_ping_interval_ms = 20000  # a WebSocket client silent this long gets a ping
    ws_pong_timeout_ms = 10000  # and nothing back (no frame at all) this long after it: closed
    ws_close_wait_ms = 200  # after the close handshake: the client may close TCP first, else a reset
    sse_heartbeat_ms = 15000  # an event stream with nothing to say this long gets a comment line
    tick_ms = 100  # how often deadlines are checked (the granularity of every timeout)
    # a firmware's first start after an update: it is kept once it has served a request within
    # this long (the update tool asks at once), else the board resets into the last one
    health_window_ms = 60000

    def __init__(self, **overrides):
        if overrides:  # the defaults need no checking: the checks load when there is something to check
            from nostall.bounds import check

            check(self, overrides)

    def as_dict(self):
        return {name: getattr(self, name) for name in NAMES}


# the limit names, in one sorted tuple, read off the class once
NAMES = tuple(sorted(k for k in dir(Config) if not k.startswith("_") and type(getattr(Config, k)) is int))
