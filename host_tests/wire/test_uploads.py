"""Streamed request bodies and the files API (issue 19): a 2 MB PUT arrives whole through one
block buffer while another client's /status stays fast, refusals (401, 413, 507) come before the
body, a cut or stalled upload leaves no file and frees its slot, a slow one that moves completes.
The sim board's data folder is its flash's /data (sim home/flash/data)."""

import hashlib
import os
import random
import socket
import subprocess
import threading
import time

import pytest
import requests

from harness import heapmods, micropython
from harness.paths import FIRMWARE
from harness.target import RawConn

TOKEN = "upload-token-0123456789"
AUTH = "Authorization: Bearer %s\r\n" % TOKEN
BODY_TIMEOUT_MS = 2000


@pytest.fixture(scope="module")
def up(make_module_sim, tmp_path_factory):
    """A sim board running the firmware compiled to .mpy, as a stock MicroPython board is
    deployed: the files API and the multipart reader load at their first use, which from source
    would mean compiling them in a heap the sim's start-up left in pieces of a few KB."""
    fw = heapmods.compile_tree(FIRMWARE, str(tmp_path_factory.mktemp("up") / "fw"),
                               heapmods.mpy_cross_for(micropython.binary()))
    t = make_module_sim(settings={"api_token": TOKEN}, limits={"body_timeout_ms": BODY_TIMEOUT_MS}, firmware=fw)
    yield t
    assert t.sim.proc.poll() is None, "sim board died; log: %s" % t.sim.log


def _data(t):
    return os.path.join(t.sim.home, "flash", "data")


def _head(method, path, length=None, extra=""):
    h = "%s %s HTTP/1.1\r\nHost: t\r\n%s" % (method, path, extra)
    if length is not None:
        h += "Content-Length: %d\r\n" % length
    return (h + "\r\n").encode()


def _put(t, path, body, auth=True, piece=65536, pause=0.0):
    with RawConn(t.host, t.port, timeout=20) as c:
        c.send(_head("PUT", path, len(body), AUTH if auth else ""))
        for i in range(0, len(body), piece):
            c.send(body[i : i + piece])
            time.sleep(pause)
        return c.response()


def _get(t, path):
    with RawConn(t.host, t.port, timeout=20) as c:
        return c.request("GET", path)


def _leftovers(t):
    d = _data(t)
    return [n for n in os.listdir(d) if n.startswith(".")] if os.path.isdir(d) else []


def _settle(t, open_before, timeout=3.0):
    # the board's connections back to what they were (the closing one counted out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = t.status()
        if s["connections_open"] <= open_before:
            return s
        time.sleep(0.05)
    raise AssertionError("connections still open: %r" % t.status()["connections_open"])


def test_two_megabytes_arrive_whole_in_bounded_heap_while_status_stays_fast(up):
    body = random.Random(19).randbytes(2 << 20)
    assert _put(up, "/api/files/warm-up.bin", b"w" * 5000).status in (201, 204)  # the modules an upload loads
    idle = up.status(gc=True)["heap_alloc"]
    lat, peak = [], [0]
    stop = threading.Event()

    def poll():
        with RawConn(up.host, up.port) as c:
            while not stop.is_set():
                t0 = time.monotonic()
                r = c.request("GET", "/status?gc=1")
                lat.append(time.monotonic() - t0)
                assert r.status == 200
                peak[0] = max(peak[0], int(r.body.split(b'"heap_alloc": ')[1].split(b",")[0]))
                time.sleep(0.02)

    th = threading.Thread(target=poll)
    th.start()
    try:
        t0 = time.monotonic()
        r = _put(up, "/api/files/big.bin", body, piece=32768, pause=0.02)  # about 1.5 MB/s: a board's pace
        took = time.monotonic() - t0
    finally:
        stop.set()
        th.join(10)
    assert r.status == 201, r
    got = _get(up, "/files/big.bin")
    assert got.status == 200 and hashlib.sha256(got.body).digest() == hashlib.sha256(body).digest()
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else None
    print("upload: 2 MB in %.2f s; heap idle %d B, peak during it %d B (+%d); /status p50 %.1f ms p99 %.1f ms (%d)"
          % (took, idle, peak[0], peak[0] - idle, lat[len(lat) // 2] * 1e3, p99 * 1e3, len(lat)))
    assert len(lat) >= 5
    assert peak[0] - idle <= 8192  # the slot's own buffer, one block buffer, the handler's frame
    assert p99 < 0.5
    assert _leftovers(up) == []


def test_a_two_megabyte_multipart_form_arrives_whole(up):
    big = random.Random(23).randbytes(2 << 20)
    small = b"second file\r\n--not a boundary\r\n"
    files = {"a": ("big form.bin", big, "application/octet-stream"), "b": ("C:\\Users\\x\\notes.txt", small, "text/plain")}
    r = requests.post(up.url + "/api/files", files=files, data={"note": "ignored"},
                      headers={"Authorization": "Bearer " + TOKEN}, timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["saved"] == [{"name": "big form.bin", "size": len(big)}, {"name": "notes.txt", "size": len(small)}]
    got = _get(up, "/files/big%20form.bin")
    assert hashlib.sha256(got.body).digest() == hashlib.sha256(big).digest()
    assert _get(up, "/files/notes.txt").body == small
    # a form cut short: no file, no leftover
    with RawConn(up.host, up.port) as c:
        c.send(_head("POST", "/api/files", 5000, AUTH + "Content-Type: multipart/form-data; boundary=xyz\r\n")
               + b"--xyz\r\nContent-Disposition: form-data; name=\"a\"; filename=\"part.bin\"\r\n\r\n" + b"p" * 1000)
        c.sock.shutdown(socket.SHUT_WR)
        assert c.sock.recv(100) == b""
    assert _get(up, "/files/part.bin").status == 404 and _leftovers(up) == []
    # not a form: 415
    with RawConn(up.host, up.port) as c:
        c.send(_head("POST", "/api/files", 3, AUTH + "Content-Type: text/plain\r\n") + b"abc")
        assert c.response().status == 415


def test_chunked_put_and_the_files_api(up):
    body = random.Random(7).randbytes(300_000)
    with RawConn(up.host, up.port, timeout=20) as c:
        c.send(_head("PUT", "/api/files/logs/day%201.txt", None, AUTH + "Transfer-Encoding: chunked\r\n"))
        rnd = random.Random(3)
        i = 0
        while i < len(body):
            n = rnd.randint(1, 9000)
            c.send(b"%x\r\n" % len(body[i : i + n]) + body[i : i + n] + b"\r\n")
            i += n
        c.send(b"0\r\n\r\n")
        assert c.response().status == 201
        # the same connection goes on; replacing a file is a 204
        c.send(_head("PUT", "/api/files/logs/day%201.txt", 5, AUTH) + b"hello")
        assert c.response().status == 204
        assert c.request("GET", "/files/logs/day%201.txt").body == b"hello"
        listing = c.request("GET", "/api/files")
        assert listing.status == 200 and b'"name": "logs/day 1.txt", "size": 5' in listing.body.replace(b'"size":5', b'"size": 5')
        c.send(_head("DELETE", "/api/files/logs/day%201.txt", None, AUTH))
        assert c.response().status == 204
        assert c.request("GET", "/files/logs/day%201.txt").status == 404
        c.send(_head("DELETE", "/api/files/logs/day%201.txt", None, AUTH))
        assert c.response().status == 404


@pytest.mark.parametrize("path", ["/api/files/../settings.json", "/api/files/a/%2e%2e/b", "/api/files/.upload-1",
                                  "/api/files/a/.hidden", "/api/files/a\\b"])
def test_paths_stay_inside_the_folder_and_hidden_names_are_refused(up, path):
    r = _put(up, path, b"x")
    assert r.status in (400, 404), r
    assert _get(up, "/files/" + path.rpartition("/")[2]).status in (400, 404)


def test_refusals_come_before_the_body(up):
    before = up.status()
    for extra in ("", "Expect: 100-continue\r\n"):
        # no token: 401 for the head alone, the 1 MB body never sent
        with RawConn(up.host, up.port) as c:
            c.send(_head("PUT", "/api/files/x.bin", 1 << 20, extra))
            r = c.response()
            assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
            assert r.headers["connection"] == "close"
        # over the route's limit (4 MB): 413
        with RawConn(up.host, up.port) as c:
            c.send(_head("PUT", "/api/files/x.bin", (4 << 20) + 1, AUTH + extra))
            assert c.response().status == 413
    # accepted: "100 Continue", then the body
    with RawConn(up.host, up.port) as c:
        c.send(_head("PUT", "/api/files/x.bin", 3, AUTH + "Expect: 100-continue\r\n"))
        assert c.response().status == 100
        c.send(b"abc")
        assert c.response().status in (201, 204)
    after = up.status()
    assert after["status_4xx"] - before["status_4xx"] == 4
    assert _get(up, "/files/x.bin").body == b"abc"


def test_a_cut_upload_leaves_no_file_and_frees_its_slot(up):
    open_before = up.status()["connections_open"]
    c = RawConn(up.host, up.port)
    c.send(_head("PUT", "/api/files/cut.bin", 1 << 20, AUTH))
    c.send(os.urandom(300_000))
    time.sleep(0.2)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    c.close()  # a reset, as a client that dies does
    _settle(up, open_before)
    c = RawConn(up.host, up.port)
    c.send(_head("PUT", "/api/files/cut.bin", 1 << 20, AUTH))
    c.send(os.urandom(100_000))
    c.sock.shutdown(socket.SHUT_WR)  # an EOF mid-body: the board closes without an answer
    assert c.sock.recv(100) == b""
    c.close()
    _settle(up, open_before)
    assert _get(up, "/files/cut.bin").status == 404
    assert _leftovers(up) == []


def test_a_slow_upload_that_moves_completes_and_a_stalled_one_is_cut(up):
    body = random.Random(5).randbytes(6 * 1024)
    with RawConn(up.host, up.port, timeout=20) as c:
        c.send(_head("PUT", "/api/files/slow.bin", len(body), AUTH))
        for i in range(0, len(body), 256):  # 1 KB/s: 6 s, three times body_timeout_ms
            c.send(body[i : i + 256])
            time.sleep(0.25)
        assert c.response().status == 201
    assert _get(up, "/files/slow.bin").body == body
    before = up.status()["closes_by_server"].get("body_timeout", 0)
    with RawConn(up.host, up.port, timeout=20) as c:
        c.send(_head("PUT", "/api/files/stalled.bin", 10_000, AUTH) + b"x" * 1000)
        t0 = time.monotonic()
        assert c.closed_by_peer(BODY_TIMEOUT_MS / 1000 + 1.5)
        waited = time.monotonic() - t0
    assert BODY_TIMEOUT_MS / 1000 - 0.3 <= waited
    assert up.status()["closes_by_server"].get("body_timeout", 0) == before + 1
    assert _get(up, "/files/stalled.bin").status == 404
    assert _leftovers(up) == []


def test_what_does_not_fit_the_flash_gets_507(up, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs as the data folder")
    d = _data(up)
    os.makedirs(d, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", d], check=True)
    try:
        with RawConn(up.host, up.port) as c:  # told by its Content-Length: before the body
            c.send(_head("PUT", "/api/files/huge.bin", 400_000, AUTH))
            r = c.response()
            assert r.status == 507 and r.headers["connection"] == "close"
        with RawConn(up.host, up.port, timeout=20) as c:  # chunked: when the flash is full
            c.send(_head("PUT", "/api/files/huge.bin", None, AUTH + "Transfer-Encoding: chunked\r\n"))
            try:
                for _ in range(40):
                    c.send(b"2710\r\n" + b"z" * 10000 + b"\r\n")
                c.send(b"0\r\n\r\n")
            except OSError:
                pass  # the board answered and closed while the rest was on its way
            assert c.response().status == 507
        assert _get(up, "/files/huge.bin").status == 404
        assert os.listdir(d) == []
        assert _put(up, "/api/files/small.txt", b"fits").status == 201
    finally:
        subprocess.run(["umount", d], check=True)
