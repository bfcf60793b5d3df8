"""`make ota`: a firmware image or an app bundle onto boards over HTTP (issue 19), one board or a
fleet, JOBS at a time; the version before and after from /status, a summary table, and an exit
code that is 0 only if every board came back healthy.

    PYTHONPATH=host_tests:firmware python -m harness.ota --host 192.168.1.50 --file micropython.bin
    PYTHONPATH=host_tests:firmware python -m harness.ota --hosts boards.txt --jobs 8 --file app.tar
    PYTHONPATH=host_tests:firmware python -m harness.ota --targets file_sd.json --file micropython.bin

This module is the command line: the arguments, one line for a bad one, the run and the exit
code. The rest, a job a module:
  harness.ota_image    what is sent, told apart by content (an ESP-IDF app image: the build's
                       micropython.bin, checked whole here by nostall.appimage; or a tar whose
                       first member is manifest.json, an app bundle), the chip and version checks
  harness.ota_targets  which boards: --host, a hosts file (one host[:port] a line, `#`
                       comments) or a Prometheus file_sd JSON file
  harness.ota_board    HTTP to one board: its JSON routes, the streamed upload, the wait for its
                       return (its health check)
  harness.ota_update   one board's update, step by step, to its line of the summary
  harness.ota_fleet    many boards, JOBS at a time, behind progress bars; the summary table

The API token: --token or $NOSTALL_TOKEN.
"""

import argparse
import os
import sys

from harness.ota_fleet import COLUMNS, Bars, run, table
from harness.ota_image import UsageError, chip_of, inspect, is_downgrade, parse_version
from harness.ota_targets import parse_hostport, read_hosts, read_targets
from harness.ota_update import Row
from nostall import appimage

# what this module lends its parts' names to (the tests, anyone scripting the tool)
__all__ = ["COLUMNS", "Row", "UsageError", "chip_of", "inspect", "is_downgrade", "main", "parse_version",
           "read_hosts", "read_targets", "table"]


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


def _shown(path):
    """path as a person would type it here: relative under this directory, else as given."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


if __name__ == "__main__":
    sys.exit(main())
