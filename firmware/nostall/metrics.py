# GET /metrics: the /status counters and gauges in Prometheus' text exposition format 0.0.4,
# written one family at a time (a generator the server streams, chunked), so a scrape never
# builds the whole page in the heap. Names follow Prometheus' conventions: the nostall_ prefix,
# _total for counters, base units (_bytes, _seconds); close reasons and error kinds are labels.

import gc

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_COUNTER = b"counter"
_GAUGE = b"gauge"


def _family(name, kind, help_text, samples):
    # samples: (labels bytes, value) pairs; labels b"" or b'{k="v",...}'
    lines = [b"# HELP %s %s\n# TYPE %s %s\n" % (name, help_text, name, kind)]
    for labels, value in samples:
        lines.append(b"%s%s %s\n" % (name, labels, _number(value)))
    return b"".join(lines)


def _number(v):
    if isinstance(v, float):
        return repr(v).encode()
    return b"%d" % v


def _label(value):
    # the text format escapes backslash, double quote and newline in label values
    v = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return v.encode()


def _by(key, d):
    return [(b'{%s="%s"}' % (key, _label(k)), d[k]) for k in sorted(d)]


def families(server, vitals=None):
    """The /metrics page in pieces (bytes), one metric family each.

    Example::

        for piece in families(server):
            sock.write(piece)
    """
    st = server.stats
    pool = server.pool
    info = server.info
    yield _family(b"nostall_info", _GAUGE, b"Firmware version and board, as labels.", [(
        b'{version="%s",board="%s"}' % (_label(info.get("firmware_version", "")), _label(info.get("board", ""))), 1)])
    yield _family(b"nostall_uptime_seconds", _GAUGE, b"Time since the server started.",
                  [(b"", st.uptime_ms() / 1000)])
    yield _family(b"nostall_heap_free_bytes", _GAUGE, b"Free MicroPython heap (on a C3 it includes free IDF heap).",
                  [(b"", gc.mem_free())])
    yield _family(b"nostall_heap_alloc_bytes", _GAUGE, b"MicroPython heap in use.", [(b"", gc.mem_alloc())])
    yield _family(b"nostall_connection_slots", _GAUGE, b"Connections served at once (max_connections).",
                  [(b"", pool.cap)])
    yield _family(b"nostall_connections_open", _GAUGE, b"Connections open now.", [(b"", pool.in_use)])
    yield _family(b"nostall_connections_peak", _GAUGE, b"Most connections open at once since start.",
                  [(b"", pool.peak)])
    yield _family(b"nostall_connections_accepted_total", _COUNTER, b"Connections accepted.", [(b"", st.accepted)])
    yield _family(b"nostall_long_lived_open", _GAUGE, b"WebSockets and event streams open now.",
                  [(b"", pool.long_lived())])
    yield _family(b"nostall_ws_protocol_errors_total", _COUNTER, b"WebSocket clients closed for breaking RFC 6455.",
                  [(b"", st.ws_protocol_errors)])
    yield _family(b"nostall_requests_total", _COUNTER, b"Requests answered by the app.", [(b"", st.requests)])
    closes = [(b'{by="client",reason="close"}', st.closes_by_client), (b'{by="client",reason="reset"}', st.resets_by_client)]
    closes += [(b'{by="server",reason="%s"}' % _label(k), v) for k, v in sorted(st.closes_by_server.items())]
    yield _family(b"nostall_closes_total", _COUNTER, b"Connections ended, by who closed first and why.", closes)
    yield _family(b"nostall_server_resets_total", _COUNTER,
                  b"Closes the server made first with a reset (no TIME_WAIT on the board).", [(b"", st.server_resets)])
    yield _family(b"nostall_error_responses_total", _COUNTER, b"Responses with a 4xx or 5xx status.",
                  [(b'{class="4xx"}', st.status_4xx), (b'{class="5xx"}', st.status_5xx)])
    yield _family(b"nostall_handler_errors_total", _COUNTER, b"Handler failures, by kind.",
                  _by(b"kind", st.handler_errors_by_kind))
    yield _family(b"nostall_rejected_busy_total", _COUNTER, b"Newcomers answered 503 because every slot was busy.",
                  [(b"", st.rejected_busy)])
    yield _family(b"nostall_accept_errors_total", _COUNTER, b"accept() failures (out of sockets or memory).",
                  [(b"", st.accept_errors)])
    yield _family(b"nostall_idle_timeout_seconds", _GAUGE, b"How long an idle keep-alive connection is kept.",
                  [(b"", server.cfg.idle_timeout_ms / 1000)])
    v = vitals() if vitals is not None else {}
    if "wifi_rssi_dbm" in v:
        yield _family(b"nostall_wifi_rssi_dbm", _GAUGE, b"Wi-Fi signal strength.", [(b"", v["wifi_rssi_dbm"])])
    if "reset_cause" in v:
        yield _family(b"nostall_reset_cause", _GAUGE, b"Why the board last reset, as a label.",
                      [(b'{cause="%s"}' % _label(v["reset_cause"]), 1)])
    if "running_slot" in v:
        yield _family(b"nostall_build_info", _GAUGE, b"The running firmware: app version and slot, as labels.",
                      [(b'{version="%s",slot="%s"}' % (_label(info.get("firmware_version", "")), _label(v["running_slot"])), 1)])
        yield _family(b"nostall_boots", _GAUGE, b"Starts of this board since its flash was written.",
                      [(b"", v.get("boot_count", 0))])
        last = v.get("last_update")
        if last:
            yield _family(b"nostall_last_update", _GAUGE, b"The last update's kind and result, as labels.",
                          [(b'{kind="%s",result="%s"}' % (_label(last.get("kind", "")), _label(last.get("result", ""))), 1)])
