# The API token: which requests need it, how it is read from the request, how it is compared.
# web.App wraps a route's handler with guard(); everything else here is plain functions.

from nostall.response import error_response

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")  # open even when the app has a token


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


def guard(app, handler, all_methods):
    """handler, behind app.token: every method when all_methods, else all but SAFE_METHODS.
    A request without the right token gets a 401 with WWW-Authenticate; the handler never runs."""

    def guarded(req, **params):
        token = app.token
        if token and (all_methods or req.method not in SAFE_METHODS):
            sent = bearer_token(req)
            if sent is None or not tokens_equal(sent, token):
                r = error_response(
                    401,
                    ("no token" if sent is None else "wrong token")
                    + ": send the header Authorization: Bearer <token>",
                )
                r.set_header("WWW-Authenticate", 'Bearer realm="%s"' % app.realm)
                return r
        return handler(req, **params)

    return guarded
