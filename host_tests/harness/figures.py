"""Render the abuse figures recorded by `pytest --figures FILE` as the README's table.

    python -m harness.figures reports/figures.json                    # print the table
    python -m harness.figures reports/figures.json --readme README.md # rewrite it in place

The README keeps the table between the markers <!-- figures:start --> and <!-- figures:end -->.
`make figures` runs the abuse suite and then this. --readme takes only a run that passed: after a
failed one it says so in one line, exits 1 and leaves the README as it was.
"""

import argparse
import json
import re
import sys

START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def table(data):
    rows = data["rows"]
    out = ["| abuse | load | a well-behaved client saw | lost |", "|---|---|---|---|"]
    for r in rows:
        cells = [r[k].replace("|", "\\|").replace("\n", " ") for k in ("abuse", "load", "result", "lost")]
        out.append("| " + " | ".join(cells) + " |")
    verdict = "all passed" if data["exitstatus"] == 0 else "SOME FAILED (pytest exit %d)" % data["exitstatus"]
    out.append("")
    out.append("%d rows from `make figures` (%s)." % (len(rows), verdict))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json")
    ap.add_argument("--readme", help="replace the table between the figures markers in this file")
    a = ap.parse_args(argv)
    with open(a.json) as f:
        data = json.load(f)
    if a.readme and data["exitstatus"] != 0:
        sys.exit("error: %s: the abuse tests did not pass (pytest exit %d); %s left as it was"
                 % (a.json, data["exitstatus"], a.readme))
    if not data["rows"]:
        sys.exit("error: %s has no figures: did the abuse tests run (pytest -m abuse --figures FILE)?" % a.json)
    text = table(data)
    if not a.readme:
        print(text)
        return
    with open(a.readme) as f:
        readme = f.read()
    if START not in readme or END not in readme:
        sys.exit("error: %s lacks the markers %s ... %s" % (a.readme, START, END))
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda m: START + "\n" + text + "\n" + END, readme, flags=re.S)
    with open(a.readme, "w") as f:
        f.write(new)
    print("%s: %d figures written" % (a.readme, len(data["rows"])))


if __name__ == "__main__":
    main()
