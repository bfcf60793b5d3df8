# This server's bench app: shadows firmware/app.py on the sim board (its dir comes first on the
# path) with the minimal app every contestant serves: GET / -> hello, GET /big -> the 100 KB file
# through the firmware's own static-file helper. Nothing else of the firmware's app. Its folder
# holds nothing else, so the shims beside the other contestants' scripts stay off its path.

import os

from nostall.web import TEXT, App, Response, send_file


def make_app(hw):
    app = App()
    www = os.getenv("BENCH_WWW")

    @app.get("/")
    def hello(req):
        return Response("hello", content_type=TEXT)

    @app.get("/big")
    def big(req):
        return send_file(www, "big.bin")

    return app
