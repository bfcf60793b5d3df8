# Phew! (PyPI micropython-phew, and its fork micropython-ccrighton-phew) serving the bench app:
# its serve_file for /big. Shims beside this script: machine.py (RTC), network.py (empty). Phew
# logs every request to stdout and to log.txt in the cwd (the harness runs it in a scratch dir).
# The shims sit in this folder, so only Phew! sees them (a script's own dir comes first on the path).

from bench_app import BIG, HELLO, HOST, PORT
from phew import server


@server.route("/")
def hello(request):
    return HELLO, 200, "text/plain"


@server.route("/big")
def big(request):
    return server.serve_file(BIG)


server.run(host=HOST, port=PORT)
