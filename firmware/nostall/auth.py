# The API token: how it is read from the request, how it is compared, the 401. App.call() and
# App.admit() (web.py: which requests need it) import this module at the first request that must
# show a token.

from nostall.request import HTTPError
from nostall.response import error_response

def tokens_equal(a, b):
    """a == b for two secrets (str or bytes), in a time that does not depend on where they differ:
    every byte of the longer one is compared, and a length mismatch is folded into the result.

    Example::

        tokens_equal(sent, "s3cret-token-0123")  # -> bool
    """
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    na = len(a)
    nb = len(b)
    diff = na ^ nb
    for i in range(na if na > nb else nb):
        diff |= (a[i] if i < na else 0) ^ (b[i] if i < nb else 0)
    return diff == 0


def bearer_token(req):
    """The token of an "Authorization: Bearer <token>" header, or None."""
    v = req.headers.get("authorization")
    if v is None:
        return None
    scheme, _, cred = v.partition(" ")
    return cred.strip() if scheme.lower() == "bearer" else None


def refusal(app, req):
    """The 401 for req when it lacks app.token (App.call asks, only while a token is set),
    else None."""
    e = missing(app, req)
    return None if e is None else error_response(401, e.reason, e.headers)


def missing(app, req):
    """The HTTPError 401 for req when it lacks app.token, else None: App.admit() refuses with it
    before a body is read."""
    sent = bearer_token(req)
    if sent is not None and tokens_equal(sent, app.token):
        return None
    return HTTPError(
        401,
        ("no token" if sent is None else "wrong token") + ": send the header Authorization: Bearer <token>",
        (("WWW-Authenticate", 'Bearer realm="%s"' % app.realm),),
    )
