#!/usr/bin/env python3
"""Gzip the dashboard's sources (dashboard/) into what the board serves (firmware/www/, as .gz
files only: the server sends them with Content-Encoding: gzip, see firmware/nostall/static.py).
Level 9, no name and mtime 0 in the gzip header, so the same source gives the same bytes with the
same zlib; a .gz that already decompresses to its source is left as it is (another zlib may
compress the same bytes differently: nothing to commit then). `make www` runs it.

    python3 tools/www_gzip.py                # write firmware/www/<file>.gz for each dashboard/<file>
    python3 tools/www_gzip.py --check        # exit 1 naming each .gz that is missing or stale
"""

import argparse
import gzip
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sources(src):
    """The files under src, as paths relative to it, sorted."""
    found = []
    for d, dirs, files in os.walk(src):
        dirs.sort()
        found += [os.path.relpath(os.path.join(d, f), src) for f in files if not f.startswith(".")]
    return sorted(found)


def compress(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def fresh(gz_path, data):
    """Whether gz_path exists and decompresses to data."""
    try:
        with open(gz_path, "rb") as f:
            return gzip.decompress(f.read()) == data
    except (OSError, EOFError, gzip.BadGzipFile):
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=os.path.join(ROOT, "dashboard"), help="the sources (default %(default)s)")
    ap.add_argument("--out", default=os.path.join(ROOT, "firmware", "www"), help="the .gz files (default %(default)s)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a .gz is missing or stale")
    a = ap.parse_args(argv)
    names = sources(a.src)
    if not names:
        sys.exit("error: no files in %s" % a.src)
    stale = []
    for name in names:
        with open(os.path.join(a.src, name), "rb") as f:
            data = f.read()
        out = os.path.join(a.out, name + ".gz")
        if fresh(out, data):
            continue
        stale.append(out)
        if not a.check:
            os.makedirs(os.path.dirname(out), exist_ok=True)
            gz = compress(data)
            with open(out, "wb") as f:
                f.write(gz)
            print("%s: %d -> %d bytes" % (os.path.relpath(out, ROOT), len(data), len(gz)))
    if a.check and stale:
        sys.exit("error: stale or missing (run `make www` and commit them): "
                 + ", ".join(os.path.relpath(p, ROOT) for p in stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
