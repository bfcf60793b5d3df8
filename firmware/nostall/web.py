# The application API: routes (with methods and <int:n>/<path:p> parameters), the API token,
# error handlers. The server calls App.dispatch(request) and sends the Response it returns;
# nothing here touches a socket. The routing table is routes.py's; what a handler's return or
# exception becomes, handlers.py's; what a handler may return, response.py's; files, static.py's.

from micropython import const

from nostall.handlers import PLAIN, error, finish, made
from nostall.request import METHODS, HTTPError
from nostall.response import (  # noqa: F401 - the app API in one import: from nostall.web import ...
    HTML,
    JSON,
    TEXT,
    BadResponse,
    Response,
    error_response,
    make_response,
)
from nostall.routes import NotAllowed, Routes, not_allowed, path_of

# what it says, as numbers: their words are words.py's rows
_HANDLER_FAILED = const(34)
_UNKNOWN_ROUTE_METHOD = const(53)
_BAD_STREAM_LIMIT = const(54)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")  # open even while the app has a token (App.call)

# What an app does not use costs no heap: auth.py, static.py and wsproto.py are imported by the
# first request that needs them (a token checked, a file served, a WebSocket's handshake).


def lazy(module, name, first):
    """A handler that calls nostall.<module>.<name>(first, req, **params), the module loaded by
    the first request to it: what an app does not use costs no heap (App.files, app.py's updates)."""
    return _Lazy(module, name, first)


class _Lazy:
    # lazy()'s handler: an object rather than a closure, its three values in one small map
    # rather than three cells

    def __init__(self, module, name, first):
        self.module = module
        self.name = name
        self.first = first

    def __call__(self, req, **params):
        name = self.name
        return getattr(__import__("nostall." + self.module, None, None, (name,)), name)(self.first, req, **params)


def tokens_equal(a, b):
    """nostall.auth.tokens_equal: a == b for two secrets, in constant time (the app API)."""
    from nostall.auth import tokens_equal as equal

    return equal(a, b)


def send_file(root, path, req=None, max_age=None):
    """nostall.static.send_file: a file under root as a Response (the app API)."""
    from nostall.static import send_file as send

    return send(root, path, req, max_age)


def EventStream(channel):  # noqa: N802 - the app API's name for events.EventStream
    """nostall.events.EventStream(channel): an event stream of the channel's messages, for a
    handler to return (the module loads at its first use)."""
    from nostall.events import EventStream as stream

    return stream(channel)


class App(Routes):
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
        Routes.__init__(self)
        self.token = token
        self._error_handlers = {}
        self._guarded = {}  # a handler behind the token -> True: every method, False: all but SAFE_METHODS
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
                from nostall.words import say  # a mistake in the app: rare

                raise ValueError(say(_UNKNOWN_ROUTE_METHOD, pattern, m))
        if stream is not None and (type(stream) is not int or stream < 0):
            from nostall.words import say

            raise ValueError(say(_BAD_STREAM_LIMIT, pattern))

        def register(handler):
            # methods that change things go through the token check (call(), admit()); GET,
            # HEAD and OPTIONS stay open unless require_token made every method need it
            for m in methods:
                if m not in SAFE_METHODS:
                    self._guarded.setdefault(handler, False)
                    break
            self._add(pattern, methods, handler)
            if stream is not None:
                self._streams[handler] = stream
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
        self._guarded[handler] = True
        return handler

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
                from nostall.websocket import Upgrade  # the first upgrade imports it
                from nostall.wsproto import handshake

                return Upgrade(handler, params, handshake(req))

            self.route(pattern, ("GET",))(upgrade)
            if self._guarded.get(handler):  # @app.require_token under it: the handshake needs the token
                self._guarded[upgrade] = True
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
        self.route(api + "/<path:path>", ("PUT", "DELETE"), max_bytes)(lazy("files", "entry", root))
        self.route(api, ("GET", "POST"), max_bytes)(lazy("files", "folder", root))
        self.route(url + "/<path:path>", ("GET",))(lazy("files", "get", root))

    def admit(self, req):
        """Asked when a request's head is in and its body is due, before any of the body is
        read: the body's limit when its route streams it (the handler reads req.stream), None to
        read it whole first. HTTPError to refuse it now, so an upload gets its 401 (or 413, see
        RequestReader) before the client sends the body: a streamed route, or a request that
        waits for "100 Continue", behind the token without it. A path with no route is answered
        after its body (a short one: max_body_bytes)."""
        try:
            handler = self._find(req.method, path_of(req))[0]
        except Exception:  # no route, method not allowed, a bad escape: call() answers it
            return None
        stream = self._streams.get(handler)
        # a short buffered body is read and then refused by call() (the connection goes on);
        # a streamed one, or one the client holds back for "100 Continue", is refused now
        if self.token and self._needs_token(req, handler) and (stream is not None or "expect" in req.raw):
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
            try:
                handler, params = self._find(req.method, path_of(req))
            except NotAllowed as e:
                return not_allowed(req, e.allowed)
            if self.token and self._needs_token(req, handler):
                from nostall.auth import refusal  # loaded by the first request that must show the token

                r = refusal(self, req)
                if r is not None:
                    return r
            rv = handler(req, **params) if params else handler(req)
            if type(rv) not in PLAIN and hasattr(rv, "send"):  # a coroutine (on MicroPython, a generator)
                return finish(self, req, rv)
        except HTTPError as e:
            return error(self, req, e.status, e.reason, None, e.headers)
        except Exception as e:  # the handler's fault: 500 for this request only
            req.error = e
            return error(self, req, 500, _HANDLER_FAILED, e)
        return made(self, req, rv)

    def _needs_token(self, req, handler):
        # asked only while a token is set
        all_methods = self._guarded.get(handler)
        return all_methods is not None and (all_methods or req.method not in SAFE_METHODS)

    async def dispatch(self, req):
        """The Response for req (call(), awaited where it must be)."""
        r = self.call(req)
        if not isinstance(r, Response):
            r = await r
        return r
