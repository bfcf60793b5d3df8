"""`make ota` (host_tests/harness/ota.py) against fake boards: threaded http.servers that follow
the board's update contract (issue 19: GET /status, GET /api/update, PUT /api/update/firmware
with the token, 100-continue, the image checks of nostall.appimage, a reset, the health check
that the first request after boot completes) and misbehave on purpose: one rolls back, one wants
another token, one never comes back, one ends the upload half-way. One board and a fleet, exit
codes, the downgrade and wrong-chip refusals before any upload, file kinds, hosts and file_sd
files, and the Makefile's dry run and one-line messages."""

import hashlib
import http.server
import io
import json
import os
import subprocess
import tarfile
import threading
import time

import pytest
import requests

from harness import appimage_build, ota
from harness.paths import ROOT
from harness.simboard import SimFleet
from nostall import appimage

TOKEN = "ota-tool-token-0123"  # an api_token is 16..128 characters (the sim board checks)
C3_BOARD = "ESP32C3 module with ESP32C3"  # MicroPython's sys.implementation._machine on a C3
FAST = ["--poll-interval", "0.05", "--connect-timeout", "2", "--reply-timeout", "5", "--no-progress"]
_SCRUB = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "NOSTALL_TOKEN", "BOARD_IP", "BOARD_PORT", "FILE",
          "HOSTS", "TARGETS", "JOBS", "FORCE", "TOKEN", "OTA_TIMEOUT"}


class Uploads:
    """PUTs in flight across every fake board (the fleet's concurrency limit)."""

    lock = threading.Lock()
    now = 0
    most = 0

    @classmethod
    def enter(cls):
        with cls.lock:
            cls.now += 1
            cls.most = max(cls.most, cls.now)

    @classmethod
    def leave(cls):
        with cls.lock:
            cls.now -= 1


class FakeBoard:
    """A board as the update contract describes it. after: "ok" (comes back on the new slot and
    marks it valid once it has served a request), "rolled_back" (comes back on the old slot with
    that result), "dead" (never comes back); cut_at: answer 409 and close after that many body
    bytes; expect: answer Expect: 100-continue (else ignore it, as some servers do)."""

    def __init__(self, after="ok", version="0.1.0", board=C3_BOARD, chip=appimage.CHIP_C3, token=TOKEN,
                 slot_bytes=0x180000, down_s=0.2, cut_at=None, expect=True):
        self.after, self.version, self.board, self.chip, self.token = after, version, board, chip, token
        self.slot_bytes, self.down_s, self.cut_at, self.expect = slot_bytes, down_s, cut_at, expect
        self.running, self.last, self.boot_count, self.pending = "ota_0", None, 7, None
        self.down_until = 0.0
        self.unmarked = False  # booted a new slot, not yet marked valid (no request served)
        self.puts = []  # (path, headers, bytes received) of each PUT that reached its handler
        self.continues = 0  # 100 Continue sent
        self.refused_early = 0  # final answers to a head with Expect, before any body
        self.lock = threading.Lock()
        fake = self

        class Handler(Handle):
            board = fake

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def down(self):
        return time.monotonic() < self.down_until

    def reset(self, image_version):
        """machine.reset() after the answer: away for down_s, then what `after` says."""
        with self.lock:
            self.down_until = float("inf") if self.after == "dead" else time.monotonic() + self.down_s
            self.boot_count += 1
            if self.after == "ok":
                self.running, self.pending, self.unmarked = "ota_1", None, True
                self.version = image_version or self.version
            elif self.after == "rolled_back":
                self.boot_count += 1  # the new slot's boot, then the bootloader's way back
                self.pending = None
                self.last = {"kind": "firmware", "result": "rolled_back", "slot": "ota_1",
                             "detail": "health check failed: no request served within 60 s"}

    def served(self):
        with self.lock:
            if self.unmarked:  # mark_app_valid_cancel_rollback() after the first request served
                self.unmarked = False
                self.last = {"kind": "firmware", "result": "ok", "slot": self.running, "detail": ""}

    def status(self):
        return {"firmware_version": self.version, "board": self.board, "reset_cause": "soft",
                "running_slot": self.running, "boot_count": self.boot_count, "last_update": self.last}

    def update_state(self):
        nxt = "ota_1" if self.running == "ota_0" else "ota_0"
        return {"version": self.version, "running": self.running, "boot": self.running, "next": nxt,
                "pending": self.pending, "last": self.last, "boot_count": self.boot_count, "reset_cause": "soft"}


class Handle(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    board = None  # the FakeBoard, set by the subclass

    def log_message(self, *args):
        pass

    def handle(self):
        if self.board.down():  # resetting, or gone: the connection ends unanswered
            return
        super().handle()

    def _send(self, code, body, ctype="application/json", close=False):
        data = json.dumps(body).encode() if ctype == "application/json" else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _refusal(self):
        """401 or 413 from the head alone, as the board's streamed route does."""
        b = self.board
        if b.token and self.headers.get("Authorization") != "Bearer " + b.token:
            return 401, "a valid API token is needed: Authorization: Bearer <token>"
        if int(self.headers.get("Content-Length") or 0) > b.slot_bytes:
            return 413, "larger than the slot (%d bytes)" % b.slot_bytes
        return None

    def handle_expect_100(self):
        if not self.board.expect:
            return True
        refusal = self._refusal() if self.path.startswith("/api/update/") else None
        if refusal:
            self.board.refused_early += 1
            self._send(refusal[0], refusal[1], "text/plain", close=True)
            return False
        self.board.continues += 1
        return super().handle_expect_100()

    def do_GET(self):
        b = self.board
        if b.down():
            self.close_connection = True
            return
        if self.path == "/status":
            self._send(200, b.status())
        elif self.path == "/api/update":
            self._send(200, b.update_state())
        else:
            self._send(404, "not found", "text/plain")
        b.served()

    def do_PUT(self):
        b = self.board
        if self.path == "/api/update/app":
            return self._send(404, "not found", "text/plain", close=True)
        if self.path != "/api/update/firmware":
            return self._send(404, "not found", "text/plain", close=True)
        refusal = self._refusal()
        if refusal:
            return self._send(refusal[0], refusal[1], "text/plain", close=True)
        n = int(self.headers["Content-Length"])
        want = self.headers.get("X-SHA256")
        img = appimage.AppImage(chip_id=b.chip, max_size=b.slot_bytes, sha256=want)
        got = 0
        sha = hashlib.sha256()
        Uploads.enter()
        try:
            while got < n:
                piece = self.rfile.read1(min(4096, n - got))
                if not piece:
                    return
                got += len(piece)
                sha.update(piece)
                if b.cut_at is not None and got >= b.cut_at:
                    b.puts.append((self.path, dict(self.headers), got))
                    return self._send(409, "an update is already in progress", "text/plain", close=True)
                try:
                    img.feed(piece)
                except appimage.ImageError as e:
                    b.puts.append((self.path, dict(self.headers), got))
                    return self._send(400, str(e), "text/plain", close=True)
            time.sleep(0.05)  # the board's own check of the slot and set_boot()
        finally:
            Uploads.leave()
        b.puts.append((self.path, dict(self.headers), got))
        try:
            img.finish()
        except appimage.ImageError as e:
            return self._send(400, str(e), "text/plain", close=True)
        b.pending = "ota_1"
        version = img.desc["version"]
        self._send(200, {"result": "ok", "kind": "firmware", "slot": "ota_1", "size": img.size,
                         "sha256": sha.hexdigest(), "image_version": version, "resetting_in_ms": 100}, close=True)
        threading.Timer(0.1, b.reset, (version,)).start()


@pytest.fixture
def boards():
    made = []

    def make(**kw):
        made.append(FakeBoard(**kw))
        return made[-1]

    Uploads.now = Uploads.most = 0
    yield make
    for b in made:
        b.stop()


def image(tmp_path, version="0.2.0", chip=appimage.CHIP_C3, size=96 * 1024, name="micropython.bin"):
    p = tmp_path / name
    p.write_bytes(appimage_build.build(chip_id=chip, version=version, size=size))
    return str(p)


def run_ota(capsys, *args, timeout="5"):
    rc = ota.main(list(args) + FAST + ["--timeout", timeout, "--token", TOKEN])
    out, err = capsys.readouterr()
    return rc, out, err


def summary(out):
    """The summary table's rows: {board: [before, after, slot, result]} (cells cut at the header's columns)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["board", "before"])
    starts = [lines[head].index(c) for c in ota.COLUMNS] + [None]
    rows = {}
    for line in lines[head + 1:]:
        if line.startswith("ota: "):
            break
        cells = [line[starts[i]:starts[i + 1]].strip() for i in range(len(ota.COLUMNS))]
        rows[cells[0]] = cells[1:5]
    return rows


# ---- one board ----


def test_one_board_updates_and_comes_back_healthy(tmp_path, capsys, boards):
    b = boards()
    f = image(tmp_path)
    t0 = time.monotonic()
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", f)
    assert rc == 0, out + err
    assert summary(out) == {b.addr: ["0.1.0", "0.2.0", "ota_1", "ok"]}
    assert "1 of 1 board updated and healthy" in out
    assert time.monotonic() - t0 < 5
    (path, headers, got), = b.puts
    data = open(f, "rb").read()
    assert path == "/api/update/firmware" and got == len(data) == int(headers["Content-Length"])
    assert headers["X-SHA256"] == hashlib.sha256(data).hexdigest()
    assert headers["Authorization"] == "Bearer " + TOKEN
    assert b.continues == 1  # the body went after the board's 100 Continue
    assert b.running == "ota_1" and b.last["result"] == "ok"  # the tool's polling made it mark the slot valid


def test_a_board_that_ignores_expect_gets_the_body_after_a_second(tmp_path, capsys, boards):
    b = boards(expect=False)
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", image(tmp_path))
    assert rc == 0, out + err
    assert b.continues == 0 and len(b.puts) == 1


def test_the_token_from_the_environment(tmp_path, capsys, boards, monkeypatch):
    b = boards()
    monkeypatch.setenv("NOSTALL_TOKEN", TOKEN)
    rc = ota.main(["--host", b.addr, "--file", image(tmp_path), "--timeout", "5"] + FAST)
    out, _ = capsys.readouterr()
    assert rc == 0, out


def test_a_rollback_fails_with_its_result(tmp_path, capsys, boards):
    b = boards(after="rolled_back")
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", image(tmp_path))
    assert rc == 1
    assert summary(out) == {b.addr: ["0.1.0", "-", "ota_1", "rolled_back"]}
    assert "came back on ota_0: rolled_back: health check failed" in out


def test_an_old_failure_on_record_is_not_taken_for_this_one(tmp_path, capsys, boards):
    b = boards(down_s=0.6)
    b.last = {"kind": "firmware", "result": "rolled_back", "slot": "ota_1", "detail": "last week"}
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", image(tmp_path))
    assert rc == 0, out + err


def test_a_wrong_token_is_refused_before_the_body(tmp_path, capsys, boards):
    b = boards(token="another")
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", image(tmp_path))
    assert rc == 1
    assert summary(out)[b.addr] == ["0.1.0", "-", "-", "refused 401"]
    assert "401: the board wants its API token (TOKEN=... or $NOSTALL_TOKEN)" in out
    assert b.refused_early == 1 and b.puts == []  # the body was never sent


def test_a_refusal_mid_upload_is_read_and_reported(tmp_path, capsys, boards):
    b = boards(cut_at=32 * 1024)
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", image(tmp_path, size=1024 * 1024))
    assert rc == 1
    line = next(line for line in out.splitlines() if "FAILED" in line)
    assert "409: an update is already in progress" in line or "upload broken after" in line, line


def test_a_board_that_never_comes_back_times_out(tmp_path, capsys, boards):
    b = boards(after="dead")
    t0 = time.monotonic()
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", image(tmp_path), timeout="1")
    assert rc == 1
    assert time.monotonic() - t0 < 4
    assert summary(out)[b.addr] == ["0.1.0", "-", "ota_1", "timeout"]
    assert "no answer from the board within 1 s" in out


def test_a_downgrade_is_refused_unless_forced(tmp_path, capsys, boards):
    b = boards(version="0.3.0")
    f = image(tmp_path, version="v0.2.9")
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", f)
    assert rc == 1 and b.puts == []
    assert summary(out)[b.addr][3] == "downgrade"
    assert "the image is v0.2.9, the board runs 0.3.0: a downgrade, not sent (FORCE=1 sends it)" in out
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", f, "--force")
    assert rc == 0, out + err
    assert summary(out)[b.addr] == ["0.3.0", "v0.2.9", "ota_1", "ok"]


def test_a_wrong_chip_is_refused_before_the_upload(tmp_path, capsys, boards):
    b = boards()
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", image(tmp_path, chip=appimage.CHIP_ESP32))
    assert rc == 1 and b.puts == [] and b.continues == 0
    assert "the image is for esp32, the board is esp32c3 (%s): not sent" % C3_BOARD in out
    # a board whose chip /status does not tell (the sim: the unix port) is left to refuse it itself
    b2 = boards(board="linux [GCC 12.2.0] version")
    rc, out, err = run_ota(capsys, "--host", b2.addr, "--file", image(tmp_path, chip=appimage.CHIP_ESP32))
    assert rc == 1 and len(b2.puts) == 1
    assert "400: an image for esp32, this board is esp32c3" in out


def test_an_app_bundle_to_a_board_without_the_route(tmp_path, capsys, boards):
    b = boards()
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", bundle(tmp_path))
    assert rc == 1
    line = next(line for line in out.splitlines() if "FAILED" in line)
    assert line == "%s: FAILED: the board's firmware does not take app bundles (PUT /api/update/app: 404)" % b.addr


def test_an_unreachable_board(tmp_path, capsys, boards):
    b = boards()
    b.stop()
    rc, out, err = run_ota(capsys, "--host", b.addr, "--file", image(tmp_path))
    assert rc == 1 and summary(out)[b.addr][3] == "unreachable"


# ---- a fleet ----


def test_a_fleet_from_a_hosts_file(tmp_path, capsys, boards):
    good = [boards() for _ in range(4)]
    bad = boards(after="rolled_back")
    dead = boards(after="dead")
    hosts = tmp_path / "hosts.txt"
    lines = ["# the shop floor", ""] + [g.addr + "   # line %d" % i for i, g in enumerate(good)]
    lines += [bad.addr, dead.addr, good[0].addr]  # a repeated board is updated once
    hosts.write_text("\n".join(lines) + "\n")
    t0 = time.monotonic()
    rc, out, err = run_ota(capsys, "--hosts", str(hosts), "--file", image(tmp_path), "--jobs", "2", timeout="2")
    assert rc == 1
    assert time.monotonic() - t0 < 12
    rows = summary(out)
    assert list(rows) == [g.addr for g in good] + [bad.addr, dead.addr]  # the file's order
    assert all(rows[g.addr] == ["0.1.0", "0.2.0", "ota_1", "ok"] for g in good)
    assert rows[bad.addr][3] == "rolled_back" and rows[dead.addr][3] == "timeout"
    assert "4 of 6 boards updated and healthy" in out
    assert Uploads.most <= 2
    assert all(len(g.puts) == 1 for g in good)


def test_a_fleet_from_a_file_sd_file_all_healthy(tmp_path, capsys, boards):
    fleet = [boards() for _ in range(3)]
    sd = tmp_path / "targets.json"
    sd.write_text(json.dumps([{"targets": [fleet[0].addr, fleet[1].addr], "labels": {"room": "a"}},
                              {"targets": [fleet[2].addr]}]))
    rc, out, err = run_ota(capsys, "--targets", str(sd), "--file", image(tmp_path), "--jobs", "3")
    assert rc == 0, out + err
    assert list(summary(out)) == [b.addr for b in fleet]
    assert "3 of 3 boards updated and healthy" in out


def test_the_summary_table_lines_up():
    rows = [ota.Row("10.0.0.1"), ota.Row("board-with-a-long-name:8080")]
    rows[0].before, rows[0].after, rows[0].slot, rows[0].result, rows[0].seconds = "0.1.0", "0.2.0", "ota_1", "ok", 12.34
    rows[1].result = "unreachable"
    lines = ota.table(rows).splitlines()
    assert lines[0].split() == list(ota.COLUMNS)
    assert lines[1].split() == ["10.0.0.1", "0.1.0", "0.2.0", "ota_1", "ok", "12.3"]
    assert lines[2].split() == ["board-with-a-long-name:8080", "-", "-", "-", "unreachable", "0.0"]
    assert lines[0].index("before") == lines[1].index("0.1.0") == lines[2].index("  -") + 2


# ---- files, hosts, versions, chips ----


def bundle(tmp_path, manifest=b'{"version": "0.2.0", "files": {}}', first="manifest.json"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in ((first, manifest), ("app.py", b"print(1)\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    p = tmp_path / "app.tar"
    p.write_bytes(buf.getvalue())
    return str(p)


def test_files_are_told_apart_by_content(tmp_path):
    fw = ota.inspect(image(tmp_path, name="app.tar"))  # the name says nothing
    assert (fw.kind, fw.version, fw.chip) == ("firmware", "0.2.0", appimage.CHIP_C3)
    assert fw.sha256 == hashlib.sha256(open(fw.path, "rb").read()).hexdigest()
    app = ota.inspect(bundle(tmp_path))
    assert (app.kind, app.version, app.chip) == ("app", "0.2.0", None)
    refusals = {
        "neither an ESP-IDF app image": bundle(tmp_path, first="app.json"),
        "neither an ESP-IDF app image ": str(_write(tmp_path / "notes.txt", b"hello\n")),
        "a broken app image, not sent: checksum": str(_write(tmp_path / "bad.bin", _bad_checksum())),
        "a broken app image, not sent: the image ends early": str(_write(
            tmp_path / "short.bin", appimage_build.build(size=8192)[:5000])),
        "starts with a bootloader (the merged firmware.bin?)": str(_write(tmp_path / "firmware.bin", _bootloader())),
        "no such file": str(tmp_path / "missing.bin"),
    }
    for words, path in refusals.items():
        with pytest.raises(ota.UsageError) as e:
            ota.inspect(path)
        assert words.strip() in str(e.value) and "\n" not in str(e.value), (words, str(e.value))


def _write(p, data):
    p.write_bytes(data)
    return p


def _bad_checksum():
    img = bytearray(appimage_build.build(size=8192))
    img[1000] ^= 0xFF  # inside the filler segment: the checksum no longer adds up
    return bytes(img)


def _bootloader():
    # a merged firmware.bin starts with the bootloader: an image whose first segment holds
    # esp_bootloader_desc_t (first byte 0x50), not esp_app_desc_t
    desc = bytes([0x50]) + b"\x00" * 255
    return appimage_build.build(segments=[], **{}).replace(appimage_build.app_desc("0.0.1", "nostall"), desc)


def test_hosts_files(tmp_path):
    p = tmp_path / "hosts"
    p.write_text("# boards\n10.0.0.1\n10.0.0.2:8080  # the lab\n\n[fe80::1]:81\nboard.local\n10.0.0.1\n")
    assert ota.read_hosts(str(p), 80) == [("10.0.0.1", 80), ("10.0.0.2", 8080), ("fe80::1", 81), ("board.local", 80)]
    for text, words in (("10.0.0.1:http\n", "line 1: '10.0.0.1:http' is not host[:port]"),
                        ("# nothing\n", "names no board"), ("a b\n", "is not host[:port]"),
                        ("10.0.0.1:70000\n", "is not host[:port]")):
        p.write_text(text)
        with pytest.raises(ota.UsageError) as e:
            ota.read_hosts(str(p), 80)
        assert words in str(e.value)


def test_file_sd_files(tmp_path):
    p = tmp_path / "sd.json"
    p.write_text(json.dumps([{"targets": ["10.0.0.1:80", "10.0.0.2"], "labels": {"job": "nostall", "room": "a"}},
                             {"targets": ["10.0.0.3:8080", "10.0.0.1:80"], "labels": {}}, {"targets": []}]))
    assert ota.read_targets(str(p), 80) == [("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.0.3", 8080)]
    for text, words in (("not json", "is not JSON (a Prometheus file_sd file"),
                        ('{"targets": ["a"]}', "a JSON list of"),
                        ('[{"labels": {}}]', 'group 0 has no "targets" list'),
                        ('[{"targets": [1]}]', 'group 0 has no "targets" list'),
                        ('[{"targets": ["10.0.0.1:"]}]', "group 0: '10.0.0.1:' is not host:port"),
                        ("[]", "names no board")):
        p.write_text(text)
        with pytest.raises(ota.UsageError) as e:
            ota.read_targets(str(p), 80)
        assert words in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ota.UsageError, match="no such file"):
        ota.read_targets(str(tmp_path / "none.json"), 80)


def test_versions_and_chips():
    assert ota.parse_version("v1.2.3") == (1, 2, 3) and ota.parse_version("0.1.0-rc1+dirty") == (0, 1, 0)
    assert ota.parse_version("") is None and ota.parse_version("HEAD-HASH-NOTFOUND") is None
    assert ota.is_downgrade("0.1.9", "0.2.0") and not ota.is_downgrade("0.2", "0.2.0")
    assert not ota.is_downgrade("0.2.1", "v0.2.0") and ota.is_downgrade("1.0", "1.0.1")
    assert ota.is_downgrade("", "0.1.0") is None  # the real micropython.bin of the QEMU C3 has no version
    assert ota.chip_of("ESP32C3 module with ESP32C3") == appimage.CHIP_C3
    assert ota.chip_of("Generic ESP32 module with ESP32") == appimage.CHIP_ESP32
    assert ota.chip_of("ESP32S3 module with ESP32S3") == appimage.CHIP_S3
    assert ota.chip_of("esp32c3") == appimage.CHIP_C3 and ota.chip_of("ESP32-C3") == appimage.CHIP_C3
    assert ota.chip_of(5) == 5 and ota.chip_of(None) is None
    assert ota.chip_of("linux [GCC 12.2.0] version") is None


def test_command_line_refusals_are_one_line(tmp_path, capsys):
    f = image(tmp_path)
    for args, words in ((["--file", f], "name the board with --host"),
                        (["--host", "a", "--hosts", "b", "--file", f], "one of them"),
                        (["--host", "10.0.0.1:x", "--file", f], "is not host[:port]"),
                        (["--host", "10.0.0.1", "--jobs", "0", "--file", f], "--jobs (JOBS) must be 1 or more"),
                        (["--host", "10.0.0.1"], "name the file to send"),
                        (["--host", "10.0.0.1", "--default-file", str(tmp_path / "none.bin")], "no firmware at"),
                        (["--host", "10.0.0.1", "--file", str(tmp_path / "none.bin")], "no such file"),
                        (["--host", "10.0.0.1", "--jobs", "many", "--file", f], "invalid int value")):
        try:
            rc = ota.main(args)
        except SystemExit as e:  # argparse's own refusals
            rc = e.code
        _, err = capsys.readouterr()
        assert rc == 2, args
        assert err.startswith("error: ") and err.count("\n") == 1 and words in err, (args, err)


# ---- make ota ----


def make(*args):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    return subprocess.run(["make", "-C", ROOT, "--no-print-directory"] + list(args), env=env,
                          capture_output=True, text=True, timeout=60)


def test_make_ota_dry_run(tmp_path):
    r = make("-n", "ota", "BOARD_IP=10.0.0.5", "FILE=%s" % (tmp_path / "x.bin"), "TOKEN=sekrit", "FORCE=1", "JOBS=3")
    assert r.returncode == 0, r.stderr
    cmd = " ".join(r.stdout.replace("\\\n", " ").split())
    assert "-m harness.ota --host 10.0.0.5 --port 80 --file '%s' --jobs 3 --timeout 90 --force" % (tmp_path / "x.bin") \
        in cmd, cmd
    assert "sekrit" not in r.stdout  # the token travels in the environment
    r = make("-n", "ota", "HOSTS=fleet.txt", "BOARD=ESP32_GENERIC")
    cmd = " ".join(r.stdout.replace("\\\n", " ").split())
    assert "--hosts 'fleet.txt' --default-file 'build/firmware-ESP32_GENERIC/micropython.bin' --jobs 4" in cmd, cmd
    assert "--force" not in cmd
    r = make("-n", "ota", "TARGETS=sd.json", "BOARD_PORT=8080")
    assert "--targets 'sd.json'" in r.stdout and "--host " not in r.stdout


@pytest.mark.parametrize("args,words", [
    ((), "name the board with BOARD_IP=x.x.x.x, or a fleet with HOSTS=<file> or TARGETS=<file_sd.json>"),
    (("BOARD_IP=10.0.0.5", "HOSTS=h"), "give one of them"),
    (("BOARD_IP=10.0.0.5", "JOBS=x"), "JOBS=x is not a whole number"),
    (("BOARD_IP=10.0.0.5", "JOBS=0"), "JOBS=0 is not a whole number"),
    (("BOARD_IP=10.0.0.5", "OTA_TIMEOUT=1.5"), "OTA_TIMEOUT=1.5 is not a whole number of seconds"),
    (("BOARD_IP=10.0.0.5", "FORCE=yes"), "FORCE=yes: 1 sends a lower version"),
])
def test_make_ota_bad_variables_say_so_in_one_line(args, words):
    r = make("ota", *args)
    assert r.returncode != 0
    assert r.stdout == "" and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr


def test_make_ota_missing_files_say_so_in_one_line(tmp_path):
    r = make("ota", "BOARD_IP=127.0.0.1:9", "FILE=%s" % (tmp_path / "nope.bin"))
    assert r.returncode != 0 and r.stderr.startswith("error: no such file: %s\n" % (tmp_path / "nope.bin")), r.stderr
    r = make("ota", "BOARD_IP=127.0.0.1:9", "BUILD_ROOT=%s" % tmp_path)
    assert r.returncode != 0
    assert "error: no firmware at" in r.stderr and "micropython.bin: build it first" in r.stderr, r.stderr
    r = make("ota", "HOSTS=%s" % (tmp_path / "fleet.txt"), "FILE=%s" % image(tmp_path))
    assert r.returncode != 0 and r.stderr.startswith("error: no such file: %s\n" % (tmp_path / "fleet.txt")), r.stderr


def test_make_ota_updates_a_board(tmp_path, boards):
    b = boards()
    r = make("ota", "BOARD_IP=127.0.0.1", "BOARD_PORT=%d" % b.port, "FILE=%s" % image(tmp_path), "TOKEN=" + TOKEN,
             "OTA_TIMEOUT=10")
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary(r.stdout) == {b.addr: ["0.1.0", "0.2.0", "ota_1", "ok"]}
    assert b.puts[0][1]["Authorization"] == "Bearer " + TOKEN


# ---- the sim board (the firmware's own update routes, SIM_OTA=1) ----


def test_the_sim_board_end_to_end(tmp_path, capsys):
    """Two sim boards with the OTA layout updated for real (the sim resets and comes back on the
    other slot, marked valid once the tool's polling is served), then a downgrade and a wrong
    token refused."""
    fleet = SimFleet(tmp_path)
    try:
        sims = [fleet.start(settings={"api_token": TOKEN}, limits={"health_window_ms": 5000}, env={"SIM_OTA": "1"},
                            heap="320K") for _ in range(2)]
        if requests.get(sims[0].url + "/api/update", timeout=5).status_code == 404:
            pytest.skip("this firmware has no GET /api/update yet")
        hosts = tmp_path / "hosts"
        hosts.write_text("".join("%s:%d\n" % (t.host, t.port) for t in sims))
        f = tmp_path / "micropython.bin"
        f.write_bytes(appimage_build.build(appimage.CHIP_C3, "0.2.0", size=200_000))
        rc, out, err = run_ota(capsys, "--hosts", str(hosts), "--file", str(f), timeout="30")
        assert rc == 0, out + err
        rows = summary(out)
        assert [r[2:] for r in rows.values()] == [["ota_1", "ok"]] * 2, out
        for t in sims:
            info = requests.get(t.url + "/api/update", timeout=5).json()
            assert info["running"] == "ota_1" and info["last"]["result"] == "ok", info
        f.write_bytes(appimage_build.build(appimage.CHIP_C3, "0.0.1", size=50_000))
        rc, out, err = run_ota(capsys, "--hosts", str(hosts), "--file", str(f))
        assert rc == 1 and [r[3] for r in summary(out).values()] == ["downgrade"] * 2, out
        rc = ota.main(["--host", "%s:%d" % (sims[0].host, sims[0].port), "--file", str(f), "--force",
                       "--token", "not-it"] + FAST)
        out, _ = capsys.readouterr()
        assert rc == 1 and list(summary(out).values())[0][3] == "refused 401", out
    finally:
        fleet.close()
