# The API token (firmware/nostall/auth.py): the constant-time compare, the Bearer header,
# guard() in front of a handler. Runs on CPython and on MicroPython.

from unitcheck import header, request

from nostall.auth import bearer_token, tokens_equal
from nostall.web import guard

TOKEN = "0123456789abcdef"


class _App:
    # what guard() reads of web.App
    realm = "board"

    def __init__(self, token):
        self.token = token
        self._guarded = {}  # what guard() writes: App.admit() reads it


def handler(req, **params):
    return ("ran", params)


def test_tokens_equal():
    assert tokens_equal("abc", b"abc") and not tokens_equal("abc", "abd") and not tokens_equal("abc", "abcd")
    assert not tokens_equal("", "a") and tokens_equal("", "")


def test_bearer_token():
    assert bearer_token(request("GET", "/", {"Authorization": "Bearer  tok "})) == "tok"
    assert bearer_token(request("GET", "/", {"Authorization": "bearer tok"})) == "tok"
    assert bearer_token(request("GET", "/", {"Authorization": "Basic xyz"})) is None
    assert bearer_token(request("GET", "/")) is None


def test_guard_refuses_without_the_right_token():
    g = guard(_App(TOKEN), handler, False)
    for headers, why in (({}, "no token"), ({"Authorization": "Bearer nope"}, "wrong token")):
        r = g(request("PUT", "/", headers), n=1)
        assert r.status == 401, r
        assert header(r, "WWW-Authenticate") == 'Bearer realm="board"'
        assert why in r.body.decode(), r.body
    assert g(request("PUT", "/", {"Authorization": "Bearer " + TOKEN}), n=1) == ("ran", {"n": 1})


def test_guard_lets_safe_methods_through_unless_every_method_is_guarded():
    assert guard(_App(TOKEN), handler, False)(request("GET", "/")) == ("ran", {})
    assert guard(_App(TOKEN), handler, True)(request("GET", "/")).status == 401
    assert guard(_App(TOKEN), handler, True)(request("GET", "/", {"Authorization": "Bearer " + TOKEN})) == ("ran", {})


def test_guard_is_open_while_the_app_has_no_token():
    app = _App(None)
    g = guard(app, handler, True)
    assert g(request("DELETE", "/")) == ("ran", {})
    app.token = TOKEN  # read at each request: a token set later takes effect
    assert g(request("DELETE", "/")).status == 401
