"""`make ota`: a firmware image or an app bundle onto boards over HTTP (issue 19), one board or a
fleet, JOBS at a time; the version before and after from /status, a summary table, and an exit
code that is 0 only if every board came back healthy.

    PYTHONPATH=host_tests:firmware python -m harness.ota --host 192.168.1.50 --file micropython.bin
    PYTHONPATH=host_tests:firmware python -m harness.ota --hosts boards.txt --jobs 8 --file app.tar
    PYTHONPATH=host_tests:firmware python -m harness.ota --targets file_sd.json --file micropython.bin

What is sent is told apart by content, not by name: an ESP-IDF app image (first byte 0xE9, an
esp_app_desc_t in its first segment: the build's micropython.bin, not the merged firmware.bin)
goes to PUT /api/update/firmware, checked whole on this host first (nostall.appimage: header,
checksum, appended SHA-256); a tar whose first member is manifest.json goes to PUT
/api/update/app; anything else is refused before a board is asked.

For each board: GET /status and GET /api/update (version, chip, slots); a chip that differs from
the image's, or a lower version than the board's (when both parse; --force installs it), is
refused here, before the upload. The upload streams from the file in 16 KB pieces with
Content-Length, X-SHA256 and `Expect: 100-continue` (the board answers 401, 409 or 413 before
the body; a board that does not answer the expectation gets the body after a second), behind a
progress bar. After the board's 200 it resets; GET /api/update is polled until it runs the slot
it wrote with last.result "ok" (the board marks the new firmware valid only after serving a
request, so this polling is part of its health check), or reports a rollback, or --timeout
passes. Every wait is bounded: connect, each send, the board's verdict, the whole upload, the
return.

Hosts file: one host[:port] a line, `#` comments. Targets file: Prometheus file_sd JSON, a list
of {"targets": ["host:port", ...], "labels": {...}}. The API token: --token or $NOSTALL_TOKEN.
"""

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import queue
import re
import select
import socket
import sys
import tarfile
import threading
import time

import requests

from nostall import appimage

CHUNK_BYTES = 16384  # one send of the upload, one step of the progress bar
CONTINUE_WAIT_S = 1.0  # how long the upload waits for 100 Continue (or an early refusal) before sending anyway
MAX_IMAGE_BYTES = 16 * 1024 * 1024  # the largest flash; the board's slot size is the board's to judge (413)
REPLY_BYTES = 65536  # at most this much of an answer is read
FAILED = ("rolled_back", "health_check_failed", "refused", "interrupted")  # last.result after a failed update
ROUTES = {"firmware": "/api/update/firmware", "app": "/api/update/app"}
COLUMNS = ("board", "before", "after", "slot", "result", "seconds")


class UsageError(Exception):
    """Something on the command line or in a named file that stops the run before any board is
    asked: one line for a person."""


# ---- what is sent ----


class Image:
    """The file to send, inspected once: kind ("firmware" or "app"), size, sha256 (hex), version
    ("" when it has none), chip (esp_chip_id_t of a firmware image, else None)."""

    def __init__(self, path, kind, size, sha256, version, chip=None):
        self.path, self.kind, self.size, self.sha256 = path, kind, size, sha256
        self.version, self.chip = version, chip


def inspect(path):
    """The file at path as an Image; UsageError (one line) when it is neither kind or is broken."""
    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except FileNotFoundError:
        raise UsageError("no such file: %s" % path) from None
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e.strerror or e)) from None
    if head == bytes([appimage.MAGIC]):
        return _inspect_firmware(path)
    if _is_bundle(path):
        return _inspect_bundle(path)
    raise UsageError("%s is neither an ESP-IDF app image (first byte 0xE9 with an app description: the build's "
                     "micropython.bin) nor an app bundle (a tar whose first member is manifest.json)" % path)


def _inspect_firmware(path):
    img = appimage.AppImage(max_size=MAX_IMAGE_BYTES)
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while True:
                piece = f.read(65536)
                if not piece:
                    break
                sha.update(piece)
                img.feed(piece)
        img.finish()
    except appimage.ImageError as e:
        if e.reason == "bootloader":
            raise UsageError("%s starts with a bootloader (the merged firmware.bin?): send the app image, the build's "
                             "micropython.bin" % path) from None
        if e.reason == "not_app" and img.received <= 512:
            raise UsageError("%s is not an ESP-IDF app image: %s" % (path, e)) from None
        raise UsageError("%s: a broken app image, not sent: %s" % (path, e)) from None
    return Image(path, "firmware", img.size, sha.hexdigest(), img.desc["version"], img.chip_id)


def _is_bundle(path):
    try:
        with tarfile.open(path, "r:") as t:
            first = t.next()
    except (tarfile.TarError, OSError, EOFError):
        return False
    return first is not None and first.name.lstrip("./") == "manifest.json"


def _inspect_bundle(path):
    with tarfile.open(path, "r:") as t:
        m = t.extractfile(t.next())
        raw = m.read(REPLY_BYTES) if m is not None else b""
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise UsageError("%s: an app bundle whose manifest.json is not JSON" % path) from None
    version = manifest.get("version", "") if isinstance(manifest, dict) else ""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(65536), b""):
            sha.update(piece)
    return Image(path, "app", os.path.getsize(path), sha.hexdigest(), str(version or ""))


def parse_version(s):
    """"v1.2.3", "1.2", "0.1.0-rc1+dirty" -> (1, 2, 3), (1, 2), (0, 1, 0); None when it has no
    leading number (an image built without a version, a git hash)."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", s or "")
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def is_downgrade(new, old):
    """True when both versions parse and new is lower; None when either does not parse."""
    a, b = parse_version(new), parse_version(old)
    if a is None or b is None:
        return None
    n = max(len(a), len(b))
    return a + (0,) * (n - len(a)) < b + (0,) * (n - len(b))


_CHIP_NAMES = {v.replace("esp32", "ESP32").replace("-", ""): k for k, v in appimage.CHIPS.items()}


def chip_of(board):
    """esp_chip_id_t from /status "board" (MicroPython's sys.implementation._machine, e.g.
    "ESP32C3 module with ESP32C3", "Generic ESP32 module with ESP32") or a chip name ("esp32c3",
    "ESP32-C3"); None when it names no ESP32 (the sim board: the unix port)."""
    if isinstance(board, int):
        return board
    if not isinstance(board, str):
        return None
    s = board.upper().replace("-", "").replace("_", "")
    if " WITH " in s:  # "<board name> with <MCU name>": the MCU is what counts
        s = s.rsplit(" WITH ", 1)[1]
    found = [name for name in _CHIP_NAMES if re.search(r"(?<![A-Z0-9])" + name.upper() + r"(?![A-Z0-9])", s)]
    return _CHIP_NAMES[max(found, key=len)] if found else None  # "ESP32C3" over "ESP32"


# ---- where it goes ----


def parse_hostport(s, port):
    """"host", "host:8080", "[fe80::1]:8080" -> (host, port); ValueError for a bad one."""
    s = s.strip()
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(s)
        p = rest[1:] if rest else str(port)
    elif s.count(":") == 1:
        host, p = s.split(":")
    else:
        host, p = s, str(port)
    if not host or not p.isdigit() or not 0 < int(p) < 65536 or re.search(r"[\s/]", host):
        raise ValueError(s)
    return host, int(p)


def read_hosts(path, port):
    """A hosts file: one host[:port] a line; `#` starts a comment; blank lines are skipped."""
    out = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(parse_hostport(line, port))
        except ValueError:
            raise UsageError("%s line %d: %r is not host[:port]" % (path, n, line)) from None
    if not out:
        raise UsageError("%s names no board (one host[:port] a line)" % path)
    return _unique(out)


def read_targets(path, port):
    """A Prometheus file_sd JSON file: [{"targets": ["host:port", ...], "labels": {...}}, ...]."""
    try:
        groups = json.loads(_read_text(path))
    except ValueError as e:
        raise UsageError("%s is not JSON (a Prometheus file_sd file: [{\"targets\": [...]}]): %s" % (path, e)) from None
    if not isinstance(groups, list):
        raise UsageError("%s: a file_sd file is a JSON list of {\"targets\": [...], \"labels\": {...}}" % path)
    out = []
    for i, g in enumerate(groups):
        targets = g.get("targets") if isinstance(g, dict) else None
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise UsageError("%s: group %d has no \"targets\" list of \"host:port\" strings" % (path, i))
        for t in targets:
            try:
                out.append(parse_hostport(t, port))
            except ValueError:
                raise UsageError("%s: group %d: %r is not host:port" % (path, i, t)) from None
    if not out:
        raise UsageError("%s names no board (no targets)" % path)
    return _unique(out)


def _read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        raise UsageError("no such file: %s" % path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError("cannot read %s: %s" % (path, e)) from None


def _unique(targets):
    seen = set()
    return [t for t in targets if not (t in seen or seen.add(t))]


def name_of(target):
    host, port = target
    host = "[%s]" % host if ":" in host else host
    return host if port == 80 else "%s:%d" % (host, port)


# ---- one board ----


class Row:
    """One line of the summary: board, before, after, slot, result ("ok" or why not), seconds."""

    def __init__(self, board):
        self.board, self.before, self.after, self.slot, self.result, self.seconds = board, "", "", "", "", 0.0

    @property
    def ok(self):
        return self.result == "ok"


class Failed(Exception):
    """This board's update stops here: result is the summary's word, message the line printed."""

    def __init__(self, result, message):
        super().__init__(message)
        self.result = result


class Board:
    """The HTTP side of one board: its JSON routes and the streamed upload."""

    def __init__(self, target, opts):
        self.host, self.port = target
        self.opts = opts
        self.url = "http://%s:%d" % (("[%s]" % self.host) if ":" in self.host else self.host, self.port)

    def get_json(self, path, timeout=None):
        """GET path -> (status, JSON or None); requests' exceptions when nothing answers."""
        t = timeout or self.opts.connect_timeout
        with requests.get(self.url + path, timeout=(t, t)) as r:
            if r.status_code != 200:
                return r.status_code, None
            try:
                return 200, r.json()
            except ValueError:
                return 200, None

    def put(self, image, bar):
        """PUT the file to its route, streamed -> (status, reason, body text). Failed when the
        connection breaks and no answer can be read."""
        o = self.opts
        deadline = time.monotonic() + o.upload_timeout
        conn = http.client.HTTPConnection(self.host, self.port, timeout=o.connect_timeout)
        sent = 0
        try:
            try:
                conn.putrequest("PUT", ROUTES[image.kind], skip_accept_encoding=True)
                conn.putheader("Content-Type", "application/octet-stream")
                conn.putheader("Content-Length", str(image.size))
                conn.putheader("X-SHA256", image.sha256)
                conn.putheader("Expect", "100-continue")
                if o.token:
                    conn.putheader("Authorization", "Bearer " + o.token)
                conn.endheaders()
                conn.sock.settimeout(o.connect_timeout)  # each send: the board takes 16 KB within this
                if _await_continue(conn.sock, CONTINUE_WAIT_S):
                    with open(image.path, "rb") as f:
                        while True:
                            piece = f.read(CHUNK_BYTES)
                            if not piece:
                                break
                            if time.monotonic() > deadline:
                                raise Failed("upload timeout", "upload not done after %d s (%d of %d bytes sent)" % (
                                    o.upload_timeout, sent, image.size))
                            conn.sock.sendall(piece)
                            sent += len(piece)
                            bar.update(len(piece))
            except OSError as e:
                if isinstance(e, (socket.timeout, ConnectionRefusedError, socket.gaierror)) and not sent:
                    raise Failed("unreachable", "cannot send to %s: %s" % (self.url, _why(e))) from None
                # the board may have answered and closed (a refusal mid-body): read what it said
                what = "upload broken after %d of %d bytes (%s)" % (sent, image.size, _why(e))
                try:
                    conn.sock.settimeout(2.0)
                    return self._answer(conn)
                except Exception:
                    raise Failed("upload broken", what) from None
            conn.sock.settimeout(o.reply_timeout)  # the board checks the image after its last byte
            try:
                return self._answer(conn)
            except (OSError, http.client.HTTPException) as e:
                raise Failed("no answer", "no answer to the upload within %d s (%s)" % (o.reply_timeout, _why(e))) \
                    from None
        finally:
            conn.close()

    @staticmethod
    def _answer(conn):
        r = conn.getresponse()
        body = r.read(REPLY_BYTES).decode("utf-8", "replace")
        return r.status, r.reason, body


def _await_continue(sock, wait_s):
    """After a head with `Expect: 100-continue`: True to send the body (100 Continue came, or
    nothing within wait_s), False when the board's final answer came first (a refusal). A 100
    is taken off the socket; a final answer is left for http.client to read."""
    ready, _, _ = select.select([sock], [], [], wait_s)
    if not ready:
        return True
    deadline = time.monotonic() + wait_s
    while True:
        peek = sock.recv(1024, socket.MSG_PEEK)
        if not peek:
            return False  # closed: getresponse() says so
        if len(peek) >= 12 and not re.match(rb"HTTP/1\.[01] 1\d\d", peek):
            return False  # a final answer
        end = peek.find(b"\r\n\r\n")
        if len(peek) >= 12 and end >= 0:
            sock.recv(end + 4)  # the interim answer, off the socket
            return True
        if time.monotonic() > deadline or len(peek) >= 1024:
            return True  # half an answer after a second: send; getresponse() reads what it is
        select.select([], [], [], 0.02)  # more of it to come (the peeked bytes keep the socket readable)


def _shown(path):
    """path as a person would type it here: relative under this directory, else as given."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _why(e):
    return type(e).__name__ + (": " + str(e) if str(e) else "")


def _short(text, n=160):
    line = " ".join((text or "").split())
    return line if len(line) <= n else line[: n - 3] + "..."


def update_one(target, image, opts, say, bars):
    """Update one board; its Row (result "ok" only when it came back healthy)."""
    b = Board(target, opts)
    row = Row(name_of(target))
    t0 = time.monotonic()
    try:
        _update(b, row, image, opts, lambda msg: say(row.board, msg), bars)
        row.result = "ok"
    except Failed as e:
        row.result = e.result
        say(row.board, "FAILED: %s" % e)
    except Exception as e:  # a bug or a board answering nonsense: this board fails, the others go on
        row.result = "error"
        say(row.board, "FAILED: %s" % _why(e))
    row.seconds = time.monotonic() - t0
    return row


def _update(b, row, image, opts, say, bars):
    try:
        code, status = b.get_json("/status")
    except requests.RequestException as e:
        raise Failed("unreachable", "%s/status does not answer (%s)" % (b.url, type(e).__name__)) from None
    if code != 200 or not isinstance(status, dict):
        raise Failed("unreachable", "%s/status answered %s, not JSON" % (b.url, code))
    row.before = str(status.get("firmware_version", "?"))
    try:
        code, state = b.get_json("/api/update")
    except requests.RequestException as e:
        raise Failed("unreachable", "%s/api/update does not answer (%s)" % (b.url, type(e).__name__)) from None
    if code == 404:
        raise Failed("no OTA", "the board's firmware takes no updates (GET /api/update: 404): flash it once by cable "
                     "(make build flash)")
    if code != 200 or not isinstance(state, dict):
        raise Failed("error", "GET /api/update answered %s, not JSON" % code)
    board_chip = chip_of(state.get("chip"))
    if board_chip is None:
        board_chip = chip_of(status.get("board"))
    if image.kind == "firmware":
        if board_chip is not None and board_chip != image.chip:
            raise Failed("wrong chip", "the image is for %s, the board is %s (%s): not sent" % (
                appimage.chip_name(image.chip), appimage.chip_name(board_chip), status.get("board")))
        if "next" in state and state["next"] is None:
            raise Failed("no OTA", "the board has no OTA partition table (GET /api/update: next is null): flash it "
                         "once by cable (make build flash)")
    board_version = str(state.get("version") or row.before) if image.kind == "firmware" else row.before
    down = is_downgrade(image.version, board_version)
    if down and not opts.force:
        raise Failed("downgrade", "the image is %s, the board runs %s: a downgrade, not sent (FORCE=1 sends it)" % (
            image.version, board_version))
    say("%s %s -> %s, running %s on %s" % (image.kind, board_version, image.version or "(no version)",
                                            state.get("running", "?"), status.get("board", "?")))

    with bars.bar(row.board, image.size) as bar:
        code, reason, body = b.put(image, bar)
    if code != 200:
        raise Failed(*_refusal(image, code, reason, body))
    try:
        done = json.loads(body)
    except ValueError:
        raise Failed("error", "the board answered 200 with no JSON: %s" % _short(body)) from None
    if not isinstance(done, dict) or done.get("result") != "ok":
        raise Failed("error", "the board answered 200 with %s" % _short(body))
    if done.get("sha256") and done["sha256"].lower() != image.sha256:
        raise Failed("sha256", "the board wrote a file with SHA-256 %s, not this one (%s)" % (
            done["sha256"], image.sha256))
    row.slot = str(done.get("slot") or "")
    say("written%s (%s bytes), the board resets in %s ms; waiting up to %d s for it to come back healthy" % (
        " to " + row.slot if row.slot else "", done.get("size", image.size), done.get("resetting_in_ms", "?"),
        opts.timeout))
    reset_ms = done.get("resetting_in_ms")
    reset_s = min(reset_ms / 1000.0, 10.0) if isinstance(reset_ms, (int, float)) and reset_ms > 0 else 0.3
    state = _wait_healthy(b, row.slot or None, state, reset_s, opts)
    code, after = 0, None
    end = time.monotonic() + max(opts.poll_interval, 5.0)
    while time.monotonic() < end:
        try:
            code, after = b.get_json("/status")
            if code == 200 and isinstance(after, dict):
                break
        except requests.RequestException:
            pass
        time.sleep(opts.poll_interval)
    row.after = str(after.get("firmware_version", "?")) if isinstance(after, dict) else "?"
    say("healthy: running %s, version %s -> %s" % (state.get("running"), row.before, row.after))


def _refusal(image, code, reason, body):
    text = re.sub(r"^%d [^:]*: " % code, "", _short(body)) or reason  # the board's text starts "400 Bad Request: "
    if code == 401:
        return "refused 401", "401: the board wants its API token (TOKEN=... or $NOSTALL_TOKEN)" + (
            ", and this one is not it" if body and "token" in body.lower() else "")
    if code == 404 and image.kind == "app":
        return "no app bundles", "the board's firmware does not take app bundles (PUT /api/update/app: 404)"
    if code == 404:
        return "no OTA", "the board's firmware takes no firmware updates (PUT /api/update/firmware: 404)"
    if code == 409:
        return "refused 409", "409: %s" % (text or "an update is in progress, or the board has no OTA partitions")
    if code == 413:
        return "too big", "413: the image (%d bytes) does not fit the board's slot%s" % (
            image.size, ": " + text if text else "")
    if code == 507:
        return "refused 507", "507: the board has no room for it%s" % (": " + text if text else "")
    return "refused %d" % code, "%d: %s" % (code, text)


def _wait_healthy(b, slot, before, reset_s, opts):
    """Poll until the board runs slot with last.result "ok" (GET /api/update; /status's
    running_slot and last_update when the new firmware lacks that route). A rollback is told
    only once the board has evidently reset (it went away, or its boot count moved), so an old
    failure on record is not taken for this one. Failed on rollback or at opts.timeout."""
    deadline = time.monotonic() + opts.timeout
    time.sleep(min(reset_s + 0.2, opts.timeout))
    went_away, seen = False, None
    while True:
        st = None
        try:
            code, st = b.get_json("/api/update", timeout=min(opts.connect_timeout, 3.0))
            if code == 404:
                code, s = b.get_json("/status", timeout=min(opts.connect_timeout, 3.0))
                st = {"running": s.get("running_slot"), "last": s.get("last_update"),
                      "boot_count": s.get("boot_count")} if code == 200 and isinstance(s, dict) else None
        except requests.RequestException:
            went_away = True
        if isinstance(st, dict):
            seen = st
            last = st.get("last") if isinstance(st.get("last"), dict) else {}
            running = st.get("running")
            reset = went_away or st.get("boot_count") != before.get("boot_count")
            if last.get("result") == "ok" and (running == slot if slot else reset):
                return st
            if reset and last.get("result") in FAILED and (slot is None or running != slot):
                raise Failed(last["result"], "the board came back on %s: %s%s" % (
                    running, last["result"], ": " + _short(last.get("detail")) if last.get("detail") else ""))
        if time.monotonic() + opts.poll_interval > deadline:
            break
        time.sleep(opts.poll_interval)
    if seen is None:
        raise Failed("timeout", "no answer from the board within %d s of the update" % opts.timeout)
    last = seen.get("last") if isinstance(seen.get("last"), dict) else {}
    raise Failed("timeout", "not healthy within %d s: running %s, last update %s" % (
        opts.timeout, seen.get("running"), last.get("result", "none")))


# ---- many boards ----


class Bars:
    """Progress bars (tqdm) for the uploads under way, one line each, lines reused as boards
    finish; off when stderr is not a terminal or with --no-progress. say() prints above them."""

    def __init__(self, enabled, lines):
        self.enabled = enabled
        self.free = queue.Queue()
        for i in range(lines):
            self.free.put(i)
        self.lock = threading.Lock()
        if enabled:
            from tqdm import tqdm

            self.tqdm = tqdm

    def say(self, board, msg):
        line = "%s: %s" % (board, msg)
        if self.enabled:
            self.tqdm.write(line)
        else:
            with self.lock:
                print(line, flush=True)

    def bar(self, board, total):
        return _Bar(self, board, total)


class _Bar:
    def __init__(self, bars, board, total):
        self.bars, self.board, self.total, self.t = bars, board, total, None

    def __enter__(self):
        if self.bars.enabled:
            self.pos = self.bars.free.get()
            self.t = self.bars.tqdm(total=self.total, desc=self.board, unit="B", unit_scale=True, unit_divisor=1024,
                                    position=self.pos, leave=False, dynamic_ncols=True)
        return self

    def update(self, n):
        if self.t is not None:
            self.t.update(n)

    def __exit__(self, *exc):
        if self.t is not None:
            self.t.close()
            self.bars.free.put(self.pos)


def run(targets, image, opts, bars):
    """Update every target, opts.jobs at a time -> the Rows in the targets' order."""
    rows = [None] * len(targets)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(opts.jobs, len(targets)))) as ex:
        futures = {ex.submit(update_one, t, image, opts, bars.say, bars): i for i, t in enumerate(targets)}
        try:
            for f in concurrent.futures.as_completed(futures):
                rows[futures[f]] = f.result()
        except KeyboardInterrupt:
            ex.shutdown(wait=False, cancel_futures=True)
            raise
    return rows


def table(rows):
    """The summary: a column per COLUMNS, padded."""
    cells = [list(COLUMNS)] + [[r.board, r.before or "-", r.after or "-", r.slot or "-", r.result,
                                 "%.1f" % r.seconds] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c[i].ljust(widths[i]) for i in range(len(COLUMNS))).rstrip() for c in cells)


# ---- command line ----


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        self.exit(2, "error: %s (python -m harness.ota --help)\n" % message)


def main(argv=None):
    ap = _Parser(description=__doc__.split("\n\n")[0])
    where = ap.add_argument_group("where (one of)")
    where.add_argument("--host", help="one board: host[:port]")
    where.add_argument("--hosts", metavar="FILE", help="boards: one host[:port] a line, # comments")
    where.add_argument("--targets", metavar="FILE", help="boards: a Prometheus file_sd JSON file")
    ap.add_argument("--port", type=int, default=80, help="the boards' HTTP port where a host names none (80)")
    ap.add_argument("--file", help="a firmware app image (micropython.bin) or an app bundle (tar with manifest.json)")
    ap.add_argument("--default-file", help="the file when --file is not given (make ota: the build's micropython.bin)")
    ap.add_argument("--token", default=os.environ.get("NOSTALL_TOKEN") or None,
                    help="the boards' API token (default $NOSTALL_TOKEN)")
    ap.add_argument("--force", action="store_true", help="send a lower version than a board runs")
    ap.add_argument("--jobs", type=int, default=4, help="boards updated at once (4)")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds for a board to come back healthy (90)")
    ap.add_argument("--connect-timeout", type=float, default=5.0, help="seconds for a connection, a GET, a send (5)")
    ap.add_argument("--reply-timeout", type=float, default=60.0, help="seconds for the board's verdict on an upload (60)")
    ap.add_argument("--upload-timeout", type=float, default=600.0, help="seconds for a whole upload (600)")
    ap.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls while a board resets (1)")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress bars (default: when stderr is a terminal)")
    a = ap.parse_args(argv)
    try:
        if sum(x is not None and x != "" for x in (a.host, a.hosts, a.targets)) != 1:
            raise UsageError("name the board with --host (make ota BOARD_IP=...), or a fleet with --hosts FILE (HOSTS=) "
                             "or --targets FILE (TARGETS=): one of them")
        if a.jobs < 1:
            raise UsageError("--jobs (JOBS) must be 1 or more")
        if min(a.timeout, a.connect_timeout, a.reply_timeout, a.upload_timeout, a.poll_interval) <= 0:
            raise UsageError("the timeouts and the poll interval must be more than 0 seconds")
        if not 0 < a.port < 65536:
            raise UsageError("--port %d is not a TCP port" % a.port)
        if a.host:
            try:
                targets = [parse_hostport(a.host, a.port)]
            except ValueError:
                raise UsageError("%r is not host[:port] (BOARD_IP=192.168.1.50 or 192.168.1.50:8080)" % a.host) from None
        else:
            targets = read_hosts(a.hosts, a.port) if a.hosts else read_targets(a.targets, a.port)
        path = a.file or a.default_file
        if not path:
            raise UsageError("name the file to send with --file (make ota FILE=...)")
        if not a.file and not os.path.exists(path):
            raise UsageError("no firmware at %s: build it first (make build BOARD=...), or name a file with FILE=..."
                             % _shown(path))
        image = inspect(path)
    except UsageError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    progress = sys.stderr.isatty() if a.progress is None else a.progress
    bars = Bars(progress, a.jobs)
    print("ota: %s %s (%s, %d bytes, version %s%s, sha256 %s...) to %d board%s, %d at a time" % (
        image.kind, _shown(image.path), "app bundle" if image.kind == "app" else
        "app image for " + appimage.chip_name(image.chip), image.size, image.version or "(none)",
        ", downgrades allowed" if a.force else "", image.sha256[:12], len(targets), "s" if len(targets) != 1 else "",
        min(a.jobs, len(targets))), flush=True)
    try:
        rows = run(targets, image, a, bars)
    except KeyboardInterrupt:
        print("ota: interrupted", file=sys.stderr)
        return 130
    good = sum(r.ok for r in rows)
    print()
    print(table(rows))
    print("ota: %d of %d board%s updated and healthy" % (good, len(rows), "s" if len(rows) != 1 else ""))
    return 0 if good == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
