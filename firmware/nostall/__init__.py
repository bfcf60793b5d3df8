# nostall: an HTTP/1.1 server for MicroPython boards that never holds TIME_WAIT in normal operation.
# proto.py is the sans-IO protocol, web.py the application API, server.py the asyncio shell,
# config.py every limit, settings.py the settings file. Nothing here imports network or machine.

VERSION = "0.1.0"
