# The server's figures as documents: /status (JSON) and the live figures a dashboard follows
# (channel.STATUS, once a second). Loaded by the first /status or the first follower: a board
# nobody asks keeps the heap (stats.py counts; this only reads the counts).

import gc
import json

from nostall.sockets import ABORTIVE_CLOSE


def document(server, collect=False):
    """The /status JSON document: uptime, heap, connections, closes by side, errors, limits,
    info (firmware version, board) and the board's vitals (Wi-Fi RSSI, reset cause).
    collect: run the GC first, for a comparable heap."""
    if collect:
        gc.collect()
    st = server.stats
    d = _common(server, st.uptime_ms())
    d["connections_accepted"] = st.accepted
    d["closes_by_server"] = st.closes_by_server
    d["abortive_close"] = ABORTIVE_CLOSE
    d["status_4xx"] = st.status_4xx
    d["status_5xx"] = st.status_5xx
    d["handler_errors"] = st.handler_errors
    d["handler_errors_by_kind"] = st.handler_errors_by_kind
    d["turned_away"] = st.turned_away
    d["rejected_busy"] = st.rejected_busy
    d["ws_protocol_errors"] = st.ws_protocol_errors
    d["accept_errors"] = st.accept_errors
    d["limits"] = server.cfg.as_dict()
    d.update(server.info)
    if server.vitals is not None:
        d.update(server.vitals())
    return d


def live(server, up, requests_per_s):
    """The live figures (JSON text) and the app's own (STATUS.extra: the LED, a reading)."""
    from nostall.channel import STATUS  # loaded already: the ticker calls this for its followers

    d = _common(server, up)
    d["requests_per_s"] = requests_per_s
    try:
        more = STATUS.extra()
        if more:
            d.update(more)
    except Exception as e:  # the app's hook: its fault is logged, the figures go out
        server.stats.handler_error("exception", "STATUS.extra", e)
    return json.dumps(d)


def _common(server, up):
    # what both carry, under the same names
    st = server.stats
    pool = server.pool
    return {"uptime_ms": up, "heap_free": gc.mem_free(), "heap_alloc": gc.mem_alloc(),
            "connections_open": pool.in_use, "connections_peak": pool.peak,
            "long_lived_open": pool.long_lived(), "requests": st.requests,
            "closes_by_client": st.closes_by_client, "resets_by_client": st.resets_by_client,
            "closes_by_server_total": sum(st.closes_by_server.values()), "server_resets": st.server_resets}
