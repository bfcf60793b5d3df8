# The routing table, sans-IO: which handler a request's method and path go to. Paths without
# parameters are one dict lookup; the others (<name>, <int:n>, a last <path:p>) are matched in
# the order they were added, on the path split no more than the longest of them needs. A path
# that matches with another method is a 405 with its Allow (OPTIONS: a 204 with it). App (web.py)
# is a Routes: it adds what its decorators register, and finds with _find().

from micropython import const

from nostall.request import HTTPError
from nostall.response import Response, error_response

# what it says, as numbers: their words are words.py's rows
_BAD_ESCAPE = const(33)
_UNKNOWN_CONVERTER = const(51)
_PATH_NOT_LAST = const(52)


def _parse(pattern):
    # a pattern with parameters -> (segments, tail): each segment a literal str or (name, kind);
    # tail: the name of a trailing <path:name>, which takes the rest of the path (else None)
    segments = []
    tail = None
    parts = pattern.strip("/").split("/") if pattern != "/" else []
    for i, part in enumerate(parts):
        if part.startswith("<") and part.endswith(">"):
            kind, _, name = part[1:-1].rpartition(":")
            kind = kind or "string"
            if kind not in ("string", "int", "path"):
                from nostall.words import say  # a mistake in the app: rare

                raise ValueError(say(_UNKNOWN_CONVERTER, pattern, kind))
            if kind == "path":
                if i != len(parts) - 1:
                    from nostall.words import say

                    raise ValueError(say(_PATH_NOT_LAST, pattern))
                tail = name
            else:
                segments.append((name, kind))
        else:
            segments.append(part)
    return tuple(segments), tail


def _match(segs, tail, parts):
    # the params of a route (_parse) for parts (the path split at most Routes._depth times, the
    # last part holding the rest), or None when it does not match
    n = len(segs)
    if tail is None:
        if len(parts) != n:
            return None
    elif len(parts) < n:
        return None
    params = {}
    for i in range(n):
        seg = segs[i]
        part = parts[i]
        if isinstance(seg, str):
            if seg != part:
                return None
        else:
            if not part:
                return None
            if seg[1] == "int":
                if not part.isdigit():
                    return None
                part = int(part)
            params[seg[0]] = part
    if tail is not None:
        params[tail] = "/".join(parts[n:])
    return params


class Routes:
    def __init__(self):
        self._exact = {}  # path -> {method: handler}: most routes have no parameters
        self._routes = []  # (segments, tail, methods, handler) of the parameterized ones
        self._depth = 0  # the most segments a parameterized route names: paths split no further

    def _add(self, pattern, methods, handler):
        if "<" in pattern:
            segs, tail = _parse(pattern)
            self._routes.append((segs, tail, tuple(methods), handler))
            self._depth = max(self._depth, len(segs))
        else:
            by_method = self._exact.setdefault(pattern, {})
            for m in methods:
                by_method[m] = handler

    def has_route(self, path):
        return path in self._exact

    def _find(self, method, path):
        """(handler, params) or raise HTTPError 404 or NotAllowed (see not_allowed())."""
        by_method = self._exact.get(path)
        allowed = ()
        if by_method is not None:
            h = by_method.get(method) or (method == "HEAD" and by_method.get("GET"))
            if h:
                return h, None
            allowed = tuple(by_method)
        parts = None
        for segs, tail, methods, handler in self._routes:
            if parts is None:
                # at most _depth + 1 parts, the last one holding the rest: a request line of 300
                # "../" costs two strings here, not a list of 300 (a MemoryError on a fragmented heap)
                parts = path.strip("/").split("/", self._depth) if path != "/" else []
            params = _match(segs, tail, parts)
            if params is not None:
                if method in methods or (method == "HEAD" and "GET" in methods):
                    return handler, params
                allowed = allowed + methods
        if allowed:
            raise NotAllowed(allowed)
        raise HTTPError(404, "no route for " + path)


class NotAllowed(Exception):
    def __init__(self, allowed):
        super().__init__()
        self.allowed = allowed


def not_allowed(req, allowed):
    # a path routed for other methods: OPTIONS gets its 204, anything else a 405, with Allow
    allow = sorted(set(allowed + (("HEAD",) if "GET" in allowed else ())))
    allow = ", ".join(allow + ["OPTIONS"])
    if req.method == "OPTIONS":
        return Response(b"", 204, {"Allow": allow})
    r = error_response(405, req.method + " not allowed")
    r.set_header("Allow", allow)
    return r


def path_of(req):
    # the path as routes name it: percent escapes decoded (400 for a bad one)
    path = req.path
    if "%" in path:
        from nostall.escapes import unquote  # loaded by the first path with an escape

        try:
            return unquote(path)
        except (ValueError, UnicodeError):
            raise HTTPError(400, _BAD_ESCAPE)
    return path
