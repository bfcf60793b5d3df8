"""The host tooling the tests, the Makefile and people share: sim boards, the client side of a
target (`Target`, `RawConn`, the one /status client), the soak, the abuse tools, the socket
fuzzer and its corpus, bench, figures, and the lwIP emulator's Python side (`harness.emu`).

Tools with a command line run as modules with host_tests/ on PYTHONPATH, the way the Makefile
runs them: `PYTHONPATH=host_tests python -m harness.soak --help`. Nothing here imports a test
module or conftest.py, and nothing edits sys.path.

Kept empty of code: MicroPython imports this package too (harness.proto_table).
"""
