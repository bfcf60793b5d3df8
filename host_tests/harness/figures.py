"""Render the abuse figures recorded by `pytest --figures FILE` as the README's tables.

    python -m harness.figures reports/figures.json                    # print the tables
    python -m harness.figures reports/figures.json --readme README.md # rewrite them in place

Rows go to one of two tables by the test that recorded them: host_tests/weather/ (the link's
weather, README "On a real Wi-Fi") between <!-- weather:start --> and <!-- weather:end -->, every
other between <!-- figures:start --> and <!-- figures:end -->. Only a table that got rows is
rewritten, so a run of the weather tests alone leaves the abuse table as it was. `make figures`
runs the abuse suite (weather included) and then this. --readme takes only a run that passed:
after a failed one it says so in one line, exits 1 and leaves the README as it was.
"""

import argparse
import json
import re
import sys

# table name -> (markers, the prefix of the test ids whose rows it takes; None: the rest)
TABLES = {
    "weather": (("<!-- weather:start -->", "<!-- weather:end -->"), "host_tests/weather/"),
    "figures": (("<!-- figures:start -->", "<!-- figures:end -->"), None),
}
START, END = TABLES["figures"][0]


def split(rows):
    """{table name: its rows}, for the tables that get any."""
    out = {}
    for r in rows:
        name = next((n for n, (_, prefix) in TABLES.items() if prefix and r.get("test", "").startswith(prefix)),
                    "figures")
        out.setdefault(name, []).append(r)
    return out


def table(data, rows=None):
    rows = data["rows"] if rows is None else rows
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
    ap.add_argument("--readme", help="replace the tables between the markers in this file")
    a = ap.parse_args(argv)
    with open(a.json) as f:
        data = json.load(f)
    if a.readme and data["exitstatus"] != 0:
        sys.exit("error: %s: the abuse tests did not pass (pytest exit %d); %s left as it was"
                 % (a.json, data["exitstatus"], a.readme))
    if not data["rows"]:
        sys.exit("error: %s has no figures: did the abuse tests run (pytest -m abuse --figures FILE)?" % a.json)
    tables = split(data["rows"])
    if not a.readme:
        print("\n\n".join(table(data, rows) for rows in tables.values()))
        return
    with open(a.readme) as f:
        readme = f.read()
    for name, rows in tables.items():
        start, end = TABLES[name][0]
        if start not in readme or end not in readme:
            sys.exit("error: %s lacks the markers %s ... %s" % (a.readme, start, end))
        text = table(data, rows)
        readme = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: start + "\n" + text + "\n" + end,
                        readme, flags=re.S)
    with open(a.readme, "w") as f:
        f.write(readme)
    print("%s: %s" % (a.readme, ", ".join("%d %s rows" % (len(r), n) for n, r in tables.items())))


if __name__ == "__main__":
    main()
