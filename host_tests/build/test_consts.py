"""Numbers a firmware module names as a private const() of its own: MicroPython's compiler puts
the number in place of a private const's name (no global, no lookup), but only within its module,
so a number two modules share is written in both. These tests read the sources and check every
copy against the one place that defines the number: words.py's rows (what the server says, by
number: its words loaded at the first use) and pool.py's connection states."""

import os
import re

from harness.paths import FIRMWARE
from nostall import pool

NOSTALL = os.path.join(FIRMWARE, "nostall")
CONST = re.compile(r"^(_[A-Z][A-Z0-9_]*) = const\((\d+)\)", re.M)


def sources():
    out = {}
    for d in (FIRMWARE, NOSTALL):
        for f in sorted(os.listdir(d)):
            if f.endswith(".py"):
                with open(os.path.join(d, f)) as fh:
                    out[os.path.relpath(os.path.join(d, f), FIRMWARE)] = fh.read()
    return out


def word_rows():
    """{const name: its number} from words.py: the rows in order, the first 1."""
    with open(os.path.join(NOSTALL, "words.py")) as f:
        rows = re.findall(r'^\s+"\|([^"|]+)"\s+# (_[A-Z0-9_]+)$', f.read(), re.M)
    assert rows, "words.py has no rows"
    names = [n for _, n in rows]
    assert len(set(names)) == len(names), "a const names two rows"
    return {n: i + 1 for i, n in enumerate(names)}


def test_each_words_const_has_its_rows_number():
    rows = word_rows()
    wrong = []
    for path, src in sources().items():
        for name, value in CONST.findall(src):
            if name in rows and int(value) != rows[name]:
                wrong.append("%s: %s = const(%s), words.py's row %d" % (path, name, value, rows[name]))
    assert not wrong, wrong


def test_each_row_of_words_is_used():
    rows = word_rows()
    used = set()
    for path, src in sources().items():
        if path == "nostall/words.py":
            continue
        defined = {n for n, _ in CONST.findall(src)}
        for name in defined & set(rows):
            # defined, and named again past its definition (said with it)
            if len(re.findall(r"\b%s\b" % name, src)) > 1:
                used.add(name)
    assert used == set(rows), sorted(set(rows) - used)


def test_no_text_is_left_at_a_call_site():
    # the server's own refusals and its errors for an app's mistakes give their number: a text
    # there would cost heap from start-up
    texts = re.compile(r'\b(?:r|self)\.fail\(\d+, "|raise BadResponse\("')
    found = [p for p, src in sources().items() if texts.search(src)]
    assert not found, found


def test_each_state_const_has_pools_number():
    states = {n: v for n, v in vars(pool).items() if n.isupper() and type(v) is int and pool.NAMES[v:v + 1] == (n.lower(),)}
    assert len(states) == len(pool.NAMES), states
    wrong = []
    mirrored = 0
    for path, src in sources().items():
        for name, value in CONST.findall(src):
            if name[1:] in states:
                mirrored += 1
                if int(value) != states[name[1:]]:
                    wrong.append("%s: %s = const(%s), pool.%s = %d" % (path, name, value, name[1:], states[name[1:]]))
    assert mirrored and not wrong, wrong
