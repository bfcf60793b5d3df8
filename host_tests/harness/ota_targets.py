"""`make ota`: which boards (harness/ota.py). One named on the command line (host[:port]), a
hosts file (one host[:port] a line, `#` comments) or a Prometheus file_sd JSON file (a list of
{"targets": ["host:port", ...], "labels": {...}}); a target is (host, port), each once, in the
order named."""

import json
import re

from harness.ota_image import UsageError


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
        if line:
            out.append(_target(line, port, "%s line %d: %r is not host[:port]" % (path, n, line)))
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
        out += [_target(t, port, "%s: group %d: %r is not host:port" % (path, i, t)) for t in targets]
    if not out:
        raise UsageError("%s names no board (no targets)" % path)
    return _unique(out)


def _target(s, port, complaint):
    """parse_hostport(s, port), or UsageError(complaint)."""
    try:
        return parse_hostport(s, port)
    except ValueError:
        raise UsageError(complaint) from None


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


def bracketed(host):
    """host as it stands in a URL: an IPv6 address in brackets."""
    return "[%s]" % host if ":" in host else host


def name_of(target):
    """(host, port) as the summary names it: the port only when it is not 80."""
    host, port = target
    return bracketed(host) if port == 80 else "%s:%d" % (bracketed(host), port)
