# A test app for host_tests/wire/test_security.py, shadowing firmware/app.py on the sim board (its
# dir comes first on the path): the real app's routes, plus handlers that put request input into
# response headers and statuses every way an app can, and routes of its own behind the token.
# Unix port only.


from nostall.web import Response

from real_app import make_real_app as _real_app


class Oops(Exception):
    pass


def make_app(hw):
    app = _real_app(hw)

    # ---- request input into response headers: each must give a 500, never a split response ----

    @app.get("/sec/header")
    def header(req):  # a header dict passed to Response
        return Response("x", headers={req.args.get("name", "X-Reflect"): req.args.get("v", "")})

    @app.get("/sec/ctype")
    def ctype(req):  # the content type
        return Response("x", content_type=req.args.get("v", ""))

    @app.get("/sec/append")
    def append(req):  # straight into the list, past set_header
        r = Response("x")
        r.headers.append(("X-Raw", req.args.get("v", "")))
        return r

    @app.get("/sec/tuple")
    def tuple_headers(req):  # (body, status, headers)
        return "x", 200, {"X-Tuple": req.args.get("v", "")}

    @app.get("/sec/redirect")
    def redirect(req):  # Location
        return Response.redirect(req.args.get("to", "/"))

    @app.get("/sec/stream")
    def stream(req):  # a streamed response's headers
        def gen():
            yield b"x"

        return Response(stream=gen(), headers=[("X-Stream", req.args.get("v", ""))])

    @app.get("/sec/status")
    def status(req):  # a status that is no status
        s = req.args.get("s", "200")
        return "x", int(s) if s.lstrip("-").isdigit() else s

    @app.errorhandler(Oops)
    def oops(req, exc):  # an error page reflecting input
        return "error page", 400, {"X-Error": req.args.get("v", "")}

    @app.get("/sec/errorpage")
    def errorpage(req):
        raise Oops()

    # ---- the token on an app's own routes ----

    @app.get("/sec/secret")
    @app.require_token
    def secret(req):
        return {"secret": 42}

    items = {}

    # a route with a parameter: its GET is shadowed by the real app's static catch-all (routes
    # with parameters match in the order they were added), so /sec/items reads them
    @app.get("/sec/items")
    def all_items(req):
        return {str(k): v for k, v in items.items()}

    @app.route("/sec/item/<int:n>", methods=("PUT", "DELETE"))
    def item(req, n):
        if req.method == "PUT":
            items[n] = req.text
        elif req.method == "DELETE":
            items.pop(n, None)
        return {"n": n, "value": items.get(n)}

    return app
