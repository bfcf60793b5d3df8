"""`make ota`: talking to one board over HTTP (harness/ota.py). Its JSON routes (GET /status,
GET /api/update); the upload, streamed from the file behind a progress bar with Content-Length,
X-SHA256 and `Expect: 100-continue` (the board answers 401, 409 or 413 before the body; a board
that does not answer the expectation gets the body after a second), and what a refusal means;
then waiting for the board to come back from its reset running the slot it wrote, with
last.result "ok" (the board marks the new firmware valid only after serving a request, so this
polling is part of its health check), or a rollback. Every wait is bounded: connect, each send,
the board's verdict, the whole upload, the return. Failed says why this board's update stops."""

import http.client
import re
import select
import socket
import time

import requests

from harness.ota_targets import bracketed
from harness.target import wait_for

CHUNK_BYTES = 16384  # one send of the upload, one step of the progress bar
CONTINUE_WAIT_S = 1.0  # how long the upload waits for 100 Continue (or an early refusal) before sending anyway
REPLY_BYTES = 65536  # at most this much of an answer is read
FAILED = ("rolled_back", "health_check_failed", "refused", "interrupted")  # last.result after a failed update
ROUTES = {"firmware": "/api/update/firmware", "app": "/api/update/app"}


class Failed(Exception):
    """This board's update stops here: result is the summary's word, message the line printed."""

    def __init__(self, result, message):
        super().__init__(message)
        self.result = result


class Board:
    """The HTTP side of one board: its JSON routes, the streamed upload, the wait for its return.
    opts: the command line's (token, force, timeouts, poll_interval)."""

    def __init__(self, target, opts):
        self.host, self.port = target
        self.opts = opts
        self.url = "http://%s:%d" % (bracketed(self.host), self.port)

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

    def ask(self, path):
        """get_json(path); Failed "unreachable" when nothing answers."""
        try:
            return self.get_json(path)
        except requests.RequestException as e:
            raise Failed("unreachable", "%s%s does not answer (%s)" % (self.url, path, type(e).__name__)) from None

    def status_after(self):
        """/status as a dict once the board answers with one (for up to 5 s), else None."""
        def status():
            try:
                code, s = self.get_json("/status")
            except requests.RequestException:
                return None
            return s if code == 200 and isinstance(s, dict) else None

        return wait_for(status, timeout=max(self.opts.poll_interval, 5.0), step=self.opts.poll_interval)

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
                    raise Failed("unreachable", "cannot send to %s: %s" % (self.url, why(e))) from None
                # the board may have answered and closed (a refusal mid-body): read what it said
                what = "upload broken after %d of %d bytes (%s)" % (sent, image.size, why(e))
                try:
                    conn.sock.settimeout(2.0)
                    return self._answer(conn)
                except Exception:
                    raise Failed("upload broken", what) from None
            conn.sock.settimeout(o.reply_timeout)  # the board checks the image after its last byte
            try:
                return self._answer(conn)
            except (OSError, http.client.HTTPException) as e:
                raise Failed("no answer", "no answer to the upload within %d s (%s)" % (o.reply_timeout, why(e))) \
                    from None
        finally:
            conn.close()

    @staticmethod
    def _answer(conn):
        r = conn.getresponse()
        body = r.read(REPLY_BYTES).decode("utf-8", "replace")
        return r.status, r.reason, body

    def wait_healthy(self, slot, before, reset_s):
        """Poll until the board runs slot with last.result "ok" (GET /api/update; /status's
        running_slot and last_update when the new firmware lacks that route) -> that state. A
        rollback is told only once the board has evidently reset (it went away, or its boot count
        moved from before's), so an old failure on record is not taken for this one. Failed on
        rollback or at opts.timeout."""
        opts = self.opts
        deadline = time.monotonic() + opts.timeout
        time.sleep(min(reset_s + 0.2, opts.timeout))
        went_away, seen = False, None
        while True:
            st = None
            try:
                code, st = self.get_json("/api/update", timeout=min(opts.connect_timeout, 3.0))
                if code == 404:
                    code, s = self.get_json("/status", timeout=min(opts.connect_timeout, 3.0))
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
                        running, last["result"], ": " + short(last.get("detail")) if last.get("detail") else ""))
            if time.monotonic() + opts.poll_interval > deadline:
                break
            time.sleep(opts.poll_interval)
        if seen is None:
            raise Failed("timeout", "no answer from the board within %d s of the update" % opts.timeout)
        last = seen.get("last") if isinstance(seen.get("last"), dict) else {}
        raise Failed("timeout", "not healthy within %d s: running %s, last update %s" % (
            opts.timeout, seen.get("running"), last.get("result", "none")))


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


def refusal(image, code, reason, body):
    """A board's answer other than 200 to the upload -> (the summary's word, the line printed)."""
    text = re.sub(r"^%d [^:]*: " % code, "", short(body)) or reason  # the board's text starts "400 Bad Request: "
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


def why(e):
    """An exception as one line: its type and message."""
    return type(e).__name__ + (": " + str(e) if str(e) else "")


def short(text, n=160):
    """text on one line, at most n characters."""
    line = " ".join((text or "").split())
    return line if len(line) <= n else line[: n - 3] + "..."
