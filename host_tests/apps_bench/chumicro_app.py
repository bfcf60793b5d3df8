# chumicro-http-server (PyPI) serving the bench app: its streaming response fills its buffer from
# the file for /big; the loop is chumicro-runner's, which sleeps on the listener between requests
# (the README's busy loop would spin a core while idle).

from bench_app import BIG, HELLO, HOST, PORT, size
from chumicro_http_server import HttpServer, build_response
from chumicro_http_server.streaming import SOURCE_EOF, build_streaming_response
from chumicro_runner import Runner
from chumicro_sockets import listener

server = HttpServer(transport_factory=lambda: listener(host=HOST, port=PORT))


@server.route("/")
def hello(request):
    return build_response(200, text=HELLO)


@server.route("/big")
def big(request):
    f = open(BIG, "rb")

    def source(buffer):
        n = f.readinto(buffer)
        if n:
            return n
        f.close()
        return SOURCE_EOF

    return build_streaming_response(200, source=source, content_length=size(BIG),
                                    headers={"Content-Type": "application/octet-stream"})


runner = Runner()
runner.add(server)
while True:
    now = runner.tick()
    runner.wait(now)
