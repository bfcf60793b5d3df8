# The API token (firmware/nostall/auth.py): the constant-time compare, the Bearer header, and
# which requests to an App need it. Runs on CPython and on MicroPython.

from unitcheck import header, request

from nostall.auth import bearer_token, tokens_equal
from nostall.web import App

TOKEN = "0123456789abcdef"


def _app(token, every_method=False):
    # one handler at /x/<int:n> for GET and PUT, and at /y for GET and DELETE
    app = App(token)
    app.realm = "board"
    h = app.require_token(handler) if every_method else handler
    app.route("/x/<int:n>", ("GET", "PUT"))(h)
    app.route("/y", ("GET", "DELETE"))(h)
    return app


def handler(req, **params):
    return {"ran": params}


def _ran(r):
    return r.status == 200 and r.body.startswith(b'{"ran"')


def test_tokens_equal():
    assert tokens_equal("abc", b"abc") and not tokens_equal("abc", "abd") and not tokens_equal("abc", "abcd")
    assert not tokens_equal("", "a") and tokens_equal("", "")


def test_bearer_token():
    assert bearer_token(request("GET", "/", {"Authorization": "Bearer  tok "})) == "tok"
    assert bearer_token(request("GET", "/", {"Authorization": "bearer tok"})) == "tok"
    assert bearer_token(request("GET", "/", {"Authorization": "Basic xyz"})) is None
    assert bearer_token(request("GET", "/")) is None


def test_a_changing_method_is_refused_without_the_right_token():
    app = _app(TOKEN)
    for path in ("/x/1", "/y"):
        method = "PUT" if path == "/x/1" else "DELETE"
        for headers, why in (({}, "no token"), ({"Authorization": "Bearer nope"}, "wrong token")):
            r = app.call(request(method, path, headers))
            assert r.status == 401, r
            assert header(r, "WWW-Authenticate") == 'Bearer realm="board"'
            assert why in r.body.decode(), r.body
        assert _ran(app.call(request(method, path, {"Authorization": "Bearer " + TOKEN})))


def test_safe_methods_stay_open_unless_every_method_needs_the_token():
    assert _ran(_app(TOKEN).call(request("GET", "/x/1")))
    assert _ran(_app(TOKEN).call(request("HEAD", "/y")))
    every = _app(TOKEN, every_method=True)
    assert every.call(request("GET", "/x/1")).status == 401
    assert _ran(every.call(request("GET", "/y", {"Authorization": "Bearer " + TOKEN})))


def test_require_token_applies_whichever_decorator_comes_first():
    app = App(TOKEN)
    app.require_token(app.get("/z")(handler))  # marked after it was routed
    assert app.call(request("GET", "/z")).status == 401


def test_no_token_no_check():
    app = _app(None, every_method=True)
    assert _ran(app.call(request("DELETE", "/y")))
    app.token = TOKEN  # read at each request: a token set later takes effect
    assert app.call(request("DELETE", "/y")).status == 401
