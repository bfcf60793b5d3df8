"""The Autobahn|Testsuite cases, run by kosoku (pinned in requirements.txt) against a WebSocket
echo URL, and the same cases against the `websockets` library's own server as the reference:
a case only counts against us if that library passes it under the same runner.

    cases = run("ws://127.0.0.1:8080/ws/echo", "reports/autobahn/board")
    with reference_server() as url:
        ref = run(url, "reports/autobahn/websockets")
    print(table(summary(cases)))

kosoku runs in a child process (python -m harness.autobahn URL OUTDIR CASE...), which writes its
reports (index.html, index.json, a page per case) to OUTDIR: a child starts in the calling
thread's network namespace, so the cases reach a board behind the lwIP emulator too.

Case groups: 1 framing, 2 pings/pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8,
7 close handshake, 9 performance (only those whose messages fit a 64 KB limit: 9.1.1, 9.2.1,
9.7.x, 9.8.x), 10 miscellaneous (a 64 KB message). 12 and 13 are permessage-deflate, which the
server does not offer."""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

CASES = ("1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.1.1", "9.2.1", "9.7.*", "9.8.*", "10.*")
VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
_GOOD_CLOSE = ("OK", "INFORMATIONAL")
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # host_tests/


def run(url, outdir, cases=CASES, timeout=600):
    """Every selected case against url, in a child process: [(case_id, behavior, close)]."""
    env = dict(os.environ, PYTHONPATH=_HERE)
    out = subprocess.run([sys.executable, "-m", "harness.autobahn", url, str(outdir)] + list(cases),
                         env=env, capture_output=True, text=True, timeout=timeout)
    index = os.path.join(outdir, "index.json")
    if not os.path.exists(index):
        raise RuntimeError("kosoku wrote no report (exit %d): %s" % (out.returncode, out.stderr[-2000:]))
    with open(index) as f:
        by_agent = json.load(f)
    return sorted(((cid, c["behavior"], c["behaviorClose"]) for agent in by_agent.values()
                   for cid, c in agent.items()), key=lambda c: _case_key(c[0]))


def verdict(case):
    """A case's one verdict, as Autobahn's report shows it: a closing handshake gone wrong fails
    a case whose messages were right."""
    _, v, close = case
    if v == "ERROR" or close not in _GOOD_CLOSE:
        return "FAILED"
    return v


def failed(cases):
    return [c[0] for c in cases if verdict(c) == "FAILED"]


def summary(cases):
    """{group: {verdict: count}} in group order."""
    out = {}
    for c in cases:
        counts = out.setdefault(c[0].split(".")[0], dict.fromkeys(VERDICTS, 0))
        counts[verdict(c)] += 1
    return out


def table(by_group, title="group"):
    """A Markdown table of summary()."""
    lines = ["| %s | %s |" % (title, " | ".join(VERDICTS)), "|---" * (len(VERDICTS) + 1) + "|"]
    for g, counts in by_group.items():
        lines.append("| %s | %s |" % (g, " | ".join(str(counts[v]) for v in VERDICTS)))
    return "\n".join(lines)


@contextlib.contextmanager
def reference_server(max_size=2**20):
    """The `websockets` library's echo server on a free loopback port, in a thread: its URL."""
    started = threading.Event()
    box = {}

    async def echo(ws):
        try:
            async for msg in ws:
                await ws.send(msg)
        except ConnectionClosed:  # the cases that must fail the connection: expected, not news
            pass

    async def main():
        async with serve(echo, "127.0.0.1", 0, max_size=max_size, compression=None) as server:
            box["port"] = server.sockets[0].getsockname()[1]
            box["stop"] = asyncio.get_running_loop().create_future()
            box["loop"] = asyncio.get_running_loop()
            started.set()
            await box["stop"]

    t = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    t.start()
    if not started.wait(10):
        raise RuntimeError("the websockets reference server did not start")
    try:
        yield "ws://127.0.0.1:%d" % box["port"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set_result, None)
        t.join(10)


def _case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))


def main(url, outdir, cases):
    import kosoku
    from kosoku._report import write_reports

    try:
        results = asyncio.run(kosoku.run_fuzzingclient(url, cases))
    except kosoku.FailureError as e:  # raised when any case did not pass; it carries them all
        results = e.results
    write_reports(results, outdir)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:] or list(CASES))
