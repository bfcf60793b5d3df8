# What a handler returned or raised, as the Response to send (App.call, web.py, runs it): a plain
# return checked into a Response (response.make_response), an async handler awaited and checked
# the same, an HTTPError as its refusal, any other exception or a bad return a 500 for this request
# only (req.error); the app's error pages (App.errorhandler), which may be async too and must not
# turn a failure into a success.

import sys
from micropython import const

from nostall.request import HTTPError
from nostall.response import BadResponse, Response, bad_response, error_response, make_response

# what it says, as numbers: their words are words.py's rows
_HANDLER_FAILED = const(34)
_BAD_RESPONSE = const(35)
_YIELDED = const(48)

# what handlers mostly return: no need to ask whether it is a coroutine (hasattr costs a raise)
PLAIN = (str, dict, Response, bytes, list, tuple, type(None))


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
            raise bad_response(_YIELDED)
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


def made(app, req, rv):
    # a handler's return as a Response
    try:
        return make_response(rv)
    except Exception as e:  # what it returned cannot be sent: 500 for this request only
        if not isinstance(e, (BadResponse, MemoryError)):
            e = BadResponse(repr(e))  # e.g. a header value with CR/LF in it
        req.error = e
        return error(app, req, 500, _BAD_RESPONSE, e)


async def finish(app, req, coro):
    # an async handler, awaited, checked as App.call() checks a plain one's return
    try:
        rv = await _awaited(coro)  # pyright: ignore[reportGeneralTypeIssues] - MicroPython awaits generators
    except HTTPError as e:
        r = error(app, req, e.status, e.reason, None, e.headers)
    except Exception as e:
        req.error = e
        r = error(app, req, 500, _HANDLER_FAILED, e)
    else:
        r = made(app, req, rv)
    if not isinstance(r, Response):
        r = await r
    return r


def error(app, req, status, reason, exc, headers=None):
    # the error page: the app's handler for exc's class or the status (an awaitable when
    # it has one), else error_response(); headers: what a refusal must say, whoever wrote it
    h = None
    if exc is not None:
        h = app._error_handlers.get(type(exc))
    if h is None:
        h = app._error_handlers.get(status)
        exc = None
    if h is None:
        return _with(error_response(status, reason), headers)
    return _handled(req, h, status, reason, exc, headers)


async def _handled(req, h, status, reason, exc, headers):
    try:
        rv = h(req, exc) if exc is not None else h(req)
        if type(rv) not in PLAIN and hasattr(rv, "send"):
            rv = await _awaited(rv)  # pyright: ignore[reportGeneralTypeIssues] - as in finish
        r = make_response(rv)
        if status >= 500 and r.status < 500 and exc is None:
            r.status = status  # an error page must not turn a failure into a success
    except Exception as e:
        req.error = e
        r = error_response(500, reason)
    return _with(r, headers)


def _with(r, headers):
    for name, value in headers or ():
        r.set_header(name, value)
    return r
