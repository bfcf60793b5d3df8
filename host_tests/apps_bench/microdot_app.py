# Microdot (PyPI microdot) serving the bench app: its own send_file for /big.

from bench_app import BIG, HELLO, HOST, PORT
from microdot import Microdot, Response

app = Microdot()


@app.route("/")
async def hello(request):
    return HELLO, 200, {"Content-Type": "text/plain"}


@app.route("/big")
async def big(request):
    return Response.send_file(BIG)


app.run(host=HOST, port=PORT)
