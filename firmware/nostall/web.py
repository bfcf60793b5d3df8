# The application API: routes (with methods and <int:n>/<path:p> parameters), the API token,
# error handlers. The server calls App.dispatch(request) and sends the Response it returns;
# nothing here touches a socket. What a handler may return is response.py's; files, static.py's.

import sys

from nostall.request import METHODS, HTTPError, unquote
from nostall.response import (  # noqa: F401 - the app API in one import: from nostall.web import ...
    HTML,
    JSON,
    TEXT,
    BadResponse,
    EventStream,
    Response,
    Upgrade,
    error_response,
    make_response,
)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")  # open even while the app has a token

# What an app does not use costs no heap: auth.py, static.py and wsproto.py are imported by the
# first request that needs them (a token checked, a file served, a WebSocket's handshake).


def guard(app, handler, all_methods):
    """handler, behind app.token: every method when all_methods, else all but SAFE_METHODS. A
    request without the right token gets a 401 (auth.refusal); the handler never runs."""

    def guarded(req, **params):
        if app.token and (all_methods or req.method not in SAFE_METHODS):
            from nostall.auth import refusal

            r = refusal(app, req)
            if r is not None:
                return r
        return handler(req, **params)

    app._guarded[guarded] = all_methods  # App.admit() checks the token before a body comes
    return guarded


def tokens_equal(a, b):
    """nostall.auth.tokens_equal: a == b for two secrets, in constant time (the app API)."""
    from nostall.auth import tokens_equal as equal

    return equal(a, b)


def send_file(root, path, req=None, max_age=None):
    """nostall.static.send_file: a file under root as a Response (the app API)."""
    from nostall.static import send_file as send

    return send(root, path, req, max_age)


# what handlers mostly return: no need to ask whether it is a coroutine (hasattr costs a raise)
_PLAIN = (str, dict, Response, bytes, list, tuple, type(None))


def _awaited(coro):
    # `await coro`, checking what it yields: asyncio's own waits all yield None, so a value means
    # the handler is a plain generator (`yield` where `return` was meant). Awaited directly, its
    # task would be parked where no timeout can cancel it, and its connection slot lost for good.
    exc = None
    while True:
        try:
            y = coro.throw(exc) if exc is not None else coro.send(None)
        except StopIteration as e:
            return e.value
        if y is not None:
            coro.close()
            raise BadResponse("a handler yielded a value: to stream, return Response(stream=generator)")
        exc = None
        try:
            yield
        except BaseException as e:  # cancellation (handler timeout, shutdown): the handler's to handle
            exc = e


if sys.implementation.name != "micropython":
    # CPython (the unit tests) awaits a plain generator only once it is marked so; its asyncio
    # yields futures, so there only handlers that do not wait run
    from types import coroutine

    _awaited = coroutine(_awaited)  # pyright: ignore[reportAssignmentType]


class _Route:
    def __init__(self, pattern, methods, handler):
        self.methods = methods
        self.handler = handler
        self.segments = []  # (literal str) or (name, kind)
        self.tail = None  # a trailing <path:name> takes the rest of the path
        parts = pattern.strip("/").split("/") if pattern != "/" else []
        for i, part in enumerate(parts):
            if part.startswith("<") and part.endswith(">"):
                kind, _, name = part[1:-1].rpartition(":")
                kind = kind or "string"
                if kind not in ("string", "int", "path"):
                    raise ValueError("route %r: unknown converter %r" % (pattern, kind))
                if kind == "path":
                    if i != len(parts) - 1:
                        raise ValueError("route %r: <path:...> must come last" % pattern)
                    self.tail = name
                else:
                    self.segments.append((name, kind))
            else:
                self.segments.append(part)

    def match(self, parts):
        # parts: the path split at most App._depth (>= len(segments)) times; the last may hold "/"
        segs = self.segments
        n = len(segs)
        if self.tail is None:
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
        if self.tail is not None:
            params[self.tail] = "/".join(parts[n:])
        return params


class App:
    """Routes requests to handlers.

    token: when set (a str), every route's methods other than GET/HEAD/OPTIONS answer 401 unless
    the request carries "Authorization: Bearer <token>"; require_token protects a route's every
    method. app.token may be set or changed after the routes are defined; None turns checks off.

    Example::

        app = App(token="0123456789abcdef")

        @app.route("/led/<int:n>", methods=("GET", "POST"))   # POST needs the token, GET not
        async def led(req, n):
            return {"led": n, "on": True}
    """

    realm = "nostall"  # the WWW-Authenticate realm of 401 answers

    def __init__(self, token=None):
        self.token = token
        self._exact = {}  # path -> {method: handler}: most routes have no parameters
        self._routes = []
        self._depth = 0  # the most segments a parameterized route names: paths split no further
        self._error_handlers = {}
        self._guarded = {}  # a handler behind the token (guard()) -> its all_methods
        self._streams = {}  # a handler that reads its body as a stream -> the body's limit

    def route(self, pattern, methods=("GET",), stream=None):
        """Decorator: handler(req, **params) for the methods at pattern. stream: the handler
        reads the body itself, up to this many bytes, from req.stream (nostall.bodystream;
        None when the request has no body) while it comes; else the body is read whole first
        (max_body_bytes) into req.body. A streamed route's handler is async.

        Example::

            @app.route("/api/upload", methods=("PUT",), stream=1 << 21)
            async def upload(req):
                block = bytearray(4096)
                while n := await req.stream.readinto(block):
                    ...  # block[:n]
        """
        for m in methods:
            if m not in METHODS:
                raise ValueError("route %r: unknown method %r" % (pattern, m))
        if stream is not None and (type(stream) is not int or stream < 0):
            raise ValueError("route %r: stream is the body's limit in bytes" % pattern)

        def register(handler):
            # methods that change things go through the token check; GET/HEAD/OPTIONS stay direct
            guarded = handler
            for m in methods:
                if m not in SAFE_METHODS:
                    guarded = guard(self, handler, False)
                    break
            if "<" in pattern:
                r = _Route(pattern, tuple(methods), guarded)
                self._routes.append(r)
                self._depth = max(self._depth, len(r.segments))
            else:
                by_method = self._exact.setdefault(pattern, {})
                for m in methods:
                    by_method[m] = handler if m in SAFE_METHODS else guarded
            if stream is not None:
                self._streams[handler] = self._streams[guarded] = stream
            return handler

        return register

    def require_token(self, handler):
        """Decorator: every method of this route needs the token (while app.token is set).

        Example::

            @app.get("/api/secret")
            @app.require_token
            def secret(req):
                return {"s": 42}
        """
        return guard(self, handler, True)

    def websocket(self, pattern):
        """Decorator: a WebSocket route; handler(req, ws, **params) runs once the handshake is
        answered (see nostall.websocket.WebSocket).

        Example::

            @app.websocket("/ws/echo")
            async def echo(req, ws):
                while (msg := await ws.receive()) is not None:
                    await ws.send(msg)
        """

        def register(handler):
            def upgrade(req, **params):
                from nostall.wsproto import handshake  # the first upgrade imports it

                return Upgrade(handler, params, handshake(req))

            self.route(pattern, ("GET",))(upgrade)
            return handler

        return register

    def events(self, pattern, channel):
        """An event-stream route (text/event-stream) sending the channel's messages; a client
        coming back with Last-Event-ID gets what it missed, as far as the channel kept it."""
        self.route(pattern, ("GET",))(lambda req: EventStream(channel))

    def get(self, pattern):
        return self.route(pattern, ("GET",))

    def post(self, pattern, stream=None):
        return self.route(pattern, ("POST",), stream)

    def put(self, pattern, stream=None):
        return self.route(pattern, ("PUT",), stream)

    def delete(self, pattern):
        return self.route(pattern, ("DELETE",))

    def has_route(self, path):
        return path in self._exact

    def errorhandler(self, status_or_exception):
        """Register handler(req) for a status, or handler(req, exc) for an exception class."""

        def register(handler):
            self._error_handlers[status_or_exception] = handler
            return handler

        return register

    def static(self, prefix, root, index="index.html", max_age=None):
        """Serve the files under the directory root at URL prefix ("/" serves root/index.html),
        with their .gz twins, ETags and 304s (nostall.static)."""
        prefix = prefix.rstrip("/")
        root = root.rstrip("/")

        def serve(req, path=""):
            return send_file(root, path or index, req, max_age)

        self.route(prefix + "/<path:path>", ("GET",))(serve)
        self.route(prefix or "/", ("GET",))(serve)

    def files(self, root, api="/api/files", url="/files", max_bytes=4 << 20):
        """The files under the folder root, over HTTP (nostall.files): PUT api/<path> (a body
        of at most max_bytes, streamed to flash), POST api (a multipart/form-data form of files),
        GET api (the list), DELETE api/<path>, GET url/<path>. The module is loaded by the first request to one of them."""
        root = root.rstrip("/")

        def call(name):
            def handler(req, **params):
                from nostall import files

                return getattr(files, name)(root, req, **params)

            return handler

        self.route(api + "/<path:path>", ("PUT",), max_bytes)(call("put"))
        self.route(api, ("POST",), max_bytes)(call("post"))
        self.route(api + "/<path:path>", ("DELETE",))(call("delete"))
        self.route(api, ("GET",))(call("listing"))
        self.route(url + "/<path:path>", ("GET",))(call("get"))

    def _find(self, method, path):
        """(handler, params) or raise HTTPError 404/405."""
        by_method = self._exact.get(path)
        allowed = ()
        if by_method is not None:
            h = by_method.get(method) or (method == "HEAD" and by_method.get("GET"))
            if h:
                return h, None
            allowed = tuple(by_method)
        parts = None
        for r in self._routes:
            if parts is None:
                # at most _depth + 1 parts, the last one holding the rest: a request line of 300
                # "../" costs two strings here, not a list of 300 (a MemoryError on a fragmented heap)
                parts = path.strip("/").split("/", self._depth) if path != "/" else []
            params = r.match(parts)
            if params is not None:
                if method in r.methods or (method == "HEAD" and "GET" in r.methods):
                    return r.handler, params
                allowed = allowed + r.methods
        if allowed:
            raise _NotAllowed(allowed)
        raise HTTPError(404, "no route for " + path)

    def admit(self, req):
        """Asked when a request's head is in and its body is due, before any of the body is
        read: the body's limit when its route streams it (the handler reads req.stream), None to
        read it whole first. HTTPError to refuse it now, so an upload gets its 401 (or 413, see
        RequestReader) before the client sends the body: a streamed route, or a request that
        waits for "100 Continue", behind the token without it. A path with no route is answered
        after its body (a short one: max_body_bytes)."""
        try:
            handler = self._find(req.method, _path(req))[0]
        except Exception:  # no route, method not allowed, a bad escape: call() answers it
            return None
        stream = self._streams.get(handler)
        all_methods = self._guarded.get(handler)
        # a short buffered body is read and then refused by the guard (the connection goes on);
        # a streamed one, or one the client holds back for "100 Continue", is refused now
        if (all_methods is not None and self.token and (all_methods or req.method not in SAFE_METHODS)
                and (stream is not None or "expect" in req.raw)):
            from nostall.auth import missing

            e = missing(self, req)
            if e is not None:
                raise e
        return stream

    def call(self, req):
        """The Response for req, or (for an async handler or error handler) an awaitable that
        gives it: the server awaits only what must be awaited. Never raises (an exception
        becomes a 500)."""
        try:
            path = _path(req)
            try:
                handler, params = self._find(req.method, path)
            except _NotAllowed as e:
                allow = sorted(set(e.allowed + (("HEAD",) if "GET" in e.allowed else ())))
                allow = ", ".join(allow + ["OPTIONS"])
                if req.method == "OPTIONS":
                    return Response(b"", 204, {"Allow": allow})
                r = error_response(405, req.method + " not allowed")
                r.set_header("Allow", allow)
                return r
            rv = handler(req, **params) if params else handler(req)
            if type(rv) not in _PLAIN and hasattr(rv, "send"):  # a coroutine (on MicroPython, a generator)
                return self._finish(req, rv)
        except HTTPError as e:
            return self._error(req, e.status, e.reason, None, e.headers)
        except Exception as e:  # the handler's fault: 500 for this request only
            req.error = e
            return self._error(req, 500, "handler failed", e)
        return self._made(req, rv)

    async def dispatch(self, req):
        """The Response for req (call(), awaited where it must be)."""
        r = self.call(req)
        if not isinstance(r, Response):
            r = await r
        return r

    def _made(self, req, rv):
        try:
            return make_response(rv)
        except Exception as e:  # what it returned cannot be sent: 500 for this request only
            if not isinstance(e, (BadResponse, MemoryError)):
                e = BadResponse(repr(e))  # e.g. a header value with CR/LF in it
            req.error = e
            return self._error(req, 500, "handler returned a bad response", e)

    async def _finish(self, req, coro):
        # an async handler, awaited, checked as call() checks a plain one's return
        try:
            rv = await _awaited(coro)  # pyright: ignore[reportGeneralTypeIssues] - MicroPython awaits generators
        except HTTPError as e:
            r = self._error(req, e.status, e.reason, None, e.headers)
        except Exception as e:
            req.error = e
            r = self._error(req, 500, "handler failed", e)
        else:
            r = self._made(req, rv)
        if not isinstance(r, Response):
            r = await r
        return r

    def _error(self, req, status, reason, exc, headers=None):
        # the error page: the app's handler for exc's class or the status (an awaitable when
        # it has one), else error_response(); headers: what a refusal must say, whoever wrote it
        h = None
        if exc is not None:
            h = self._error_handlers.get(type(exc))
        if h is None:
            h = self._error_handlers.get(status)
            exc = None
        if h is None:
            return _with(error_response(status, reason), headers)
        return self._handled(req, h, status, reason, exc, headers)

    async def _handled(self, req, h, status, reason, exc, headers):
        try:
            rv = h(req, exc) if exc is not None else h(req)
            if type(rv) not in _PLAIN and hasattr(rv, "send"):
                rv = await _awaited(rv)  # pyright: ignore[reportGeneralTypeIssues] - as in call
            r = make_response(rv)
            if status >= 500 and r.status < 500 and exc is None:
                r.status = status  # an error page must not turn a failure into a success
        except Exception as e:
            req.error = e
            r = error_response(500, reason)
        return _with(r, headers)


def _path(req):
    path = req.path
    if "%" in path:
        try:
            return unquote(path)
        except (ValueError, UnicodeError):
            raise HTTPError(400, "bad percent escape in path")
    return path


def _with(r, headers):
    for name, value in headers or ():
        r.set_header(name, value)
    return r


class _NotAllowed(Exception):
    def __init__(self, allowed):
        super().__init__()
        self.allowed = allowed
