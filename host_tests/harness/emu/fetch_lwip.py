"""Fetch lwIP's source from Debian (`apt-get source lwip`) into a cache dir.

Usage: PYTHONPATH=host_tests python3 -m harness.emu.fetch_lwip CACHE_DIR STAMP

Writes the path of the unpacked tree (relative to the cwd) into STAMP.
lwIP is never vendored in the repo: Debian's source package is the one
copy, and we compile only its BSD-licensed core (src/), never its port/.

If apt knows no source for lwip, a deb-src entry is added that mirrors
the machine's own Debian `deb` entry (derived here, at run time, so no
mirror host name is written into the repo), then `apt-get update`.
Every failure ends with one line on stderr and exit status 1.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

SRC_LIST = "/etc/apt/sources.list.d/nostall-emu-deb-src.sources"
# Debian's main archive path; security/updates carry no extra lwip source.
ARCHIVE_URI = re.compile(r"^\S+/debian/?$")


def fail(msg):
    print("error: " + msg, file=sys.stderr)
    sys.exit(1)


def run(argv, cwd=None):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True)


def unpacked(cache):
    trees = sorted(glob.glob(os.path.join(cache, "lwip-*", "src", "core", "tcp.c")))
    return os.path.dirname(os.path.dirname(os.path.dirname(trees[-1]))) if trees else None


def apt_has_source():
    r = run(["apt-cache", "showsrc", "lwip"])
    return r.returncode == 0 and "Package: lwip" in r.stdout


def deb822_stanzas(text):
    for block in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields:
            yield fields


def derive_src_entries():
    """deb822 stanzas (as text) for deb-src, copied from the Debian `deb` entries."""
    out = []
    paths = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in paths:
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        for line in lines:
            # one-line format: deb [options] URI suite [component...]
            m = re.match(r"^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", line)
            if m and ARCHIVE_URI.match(m.group(2)):
                stanza = "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n" % (
                    m.group(2), m.group(3), m.group(4).strip())
                signed = re.search(r"signed-by=(\S+?)[\s\]]", m.group(1) or "")
                if signed:
                    stanza += "Signed-By: %s\n" % signed.group(1)
                out.append(stanza)
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        if path == SRC_LIST:
            continue
        try:
            text = open(path).read()
        except OSError:
            continue
        for f in deb822_stanzas(text):
            if "deb" not in f.get("types", "").split() or f.get("enabled", "yes").lower() == "no":
                continue
            uris = [u for u in f.get("uris", "").split() if ARCHIVE_URI.match(u)]
            if not uris or not f.get("suites"):
                continue
            stanza = "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n" % (
                " ".join(uris), f["suites"], f.get("components", "main"))
            if f.get("signed-by"):
                stanza += "Signed-By: %s\n" % f["signed-by"]
            out.append(stanza)
    return out


def add_deb_src():
    entries = derive_src_entries()
    if not entries:
        fail("apt-get source impossible: no Debian 'deb' entry in /etc/apt/sources.list* to mirror as deb-src")
    print("==> adding deb-src entry %s (mirrors the configured Debian archive)" % SRC_LIST, file=sys.stderr)
    with open(SRC_LIST, "w") as f:
        f.write("# Added by the nostall project's `make emu` to fetch lwIP's source.\n")
        f.write("\n".join(entries))
    print("==> apt-get update", file=sys.stderr)
    r = run(["apt-get", "update", "-q"])
    if r.returncode != 0:
        fail("apt-get source impossible: apt-get update failed: " + (r.stderr.strip().splitlines() or ["?"])[-1])


def main():
    if len(sys.argv) != 3:
        fail("usage: python3 -m harness.emu.fetch_lwip CACHE_DIR STAMP")
    cache, stamp = sys.argv[1], sys.argv[2]
    tree = unpacked(cache)
    if not tree:
        if os.geteuid() != 0:
            fail("apt-get source impossible: needs root (run make emu as root)")
        for tool, pkg in (("apt-get", "apt"), ("dpkg-source", "dpkg-dev")):
            if not shutil.which(tool):
                fail("apt-get source impossible: %s not found (apt-get install %s)" % (tool, pkg))
        if not apt_has_source():
            add_deb_src()
            if not apt_has_source():
                fail("apt-get source impossible: the Debian archive offers no source package 'lwip'")
        os.makedirs(cache, exist_ok=True)
        print("==> apt-get source lwip (into %s)" % cache, file=sys.stderr)
        r = run(["apt-get", "source", "-q", "lwip"], cwd=cache)
        tree = unpacked(cache)
        if r.returncode != 0 or not tree:
            fail("apt-get source lwip failed: " + (r.stderr.strip().splitlines() or ["?"])[-1])
    with open(stamp + ".tmp", "w") as f:
        f.write(tree + "\n")
    os.replace(stamp + ".tmp", stamp)
    print("==> lwIP source: %s" % tree, file=sys.stderr)


if __name__ == "__main__":
    main()
