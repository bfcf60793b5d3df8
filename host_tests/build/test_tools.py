"""The repository's own tooling: `make lint` is clean, the generators in tools/ (package.json, the
pyright config, the deploy pre-script, the gzipped dashboard) write what the Makefile relies on,
the committed firmware/www/*.gz are fresh, `make help` lists its sections in order, and
`make figures` writes README.md only from a run that passed."""

import gzip
import json
import os
import shutil
import subprocess
import sys

import pytest

from harness import figures, micropython
from harness.paths import ROOT

TOOLS = os.path.join(ROOT, "tools")
# make's own variables, and ours, that must not leak in from the caller (e.g. `make test`)
_SCRUB = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "LINT_PATHS"}


def make(*args):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    return subprocess.run(["make", "-C", ROOT, "--no-print-directory"] + list(args), env=env,
                          capture_output=True, text=True, timeout=120)


def tool(name, *args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(TOOLS, name)] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_lint_is_clean():
    r = make("lint")
    assert r.returncode == 0, r.stdout + r.stderr


def test_help_lists_the_sections_in_order():
    r = make("help")
    assert r.returncode == 0, r.stderr
    sections = {}  # heading -> the targets listed under it
    for line in r.stdout.splitlines():
        if line and not line.startswith(" "):
            heading = line.split(":")[0]
            sections[heading] = []
        elif line.startswith("  make "):
            sections[heading].append(line.split()[1])
    assert list(sections) == ["Run the firmware on this machine", "Test", "Soak, fuzz, bench, figures",
                              "lwIP board emulator (root, /dev/net/tun)", "The real firmware in QEMU (root)", "Board"], r.stdout
    assert sections["Test"] == ["test", "test-emu", "lint"]
    assert sections["Soak, fuzz, bench, figures"] == ["soak", "soak-weather", "fuzz", "bench", "figures"]
    assert sections["lwIP board emulator (root, /dev/net/tun)"] == ["emu", "emu-test", "bench-emu", "abort-check"]
    assert sections["The real firmware in QEMU (root)"] == ["qemu-board"]
    assert {"build", "flash", "deploy", "typecheck", "package-json"} <= set(sections["Board"])


# ---- tools/package_json.py ----


def test_package_json_is_what_the_tool_writes():
    r = tool("package_json.py", "--check")
    assert r.returncode == 0, r.stderr


def test_package_json_lists_a_new_module_and_keeps_the_deps(tmp_path):
    shutil.copytree(os.path.join(ROOT, "firmware", "nostall"), str(tmp_path / "firmware" / "nostall"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(os.path.join(ROOT, "package.json")) as f:
        pkg = json.load(f)
    pkg["deps"] = [["logging", "latest"]]
    (tmp_path / "package.json").write_text(json.dumps(pkg))
    (tmp_path / "firmware" / "nostall" / "extra.py").write_text("X = 1\n")
    r = tool("package_json.py", "--root", str(tmp_path), "--check")
    assert r.returncode == 1 and "make package-json" in r.stderr
    assert tool("package_json.py", "--root", str(tmp_path)).returncode == 0
    new = json.loads((tmp_path / "package.json").read_text())
    assert ["nostall/extra.py", "firmware/nostall/extra.py"] in new["urls"]
    assert new["urls"] == sorted(new["urls"]) and len(new["urls"]) == len(pkg["urls"]) + 1
    assert new["deps"] == [["logging", "latest"]] and new["version"] == pkg["version"]
    assert tool("package_json.py", "--root", str(tmp_path), "--check").returncode == 0


# ---- tools/www_gzip.py (make www) ----

# The dashboard's whole download, gzipped: comfortable for an ESP32-C3 to serve (and to keep)
WWW_BUDGET_BYTES = 8192


def test_the_committed_www_files_are_fresh_and_small():
    r = tool("www_gzip.py", "--check")
    assert r.returncode == 0, r.stderr
    src = os.path.join(ROOT, "dashboard")
    www = os.path.join(ROOT, "firmware", "www")
    names = sorted(os.listdir(src))
    assert sorted(os.listdir(www)) == [n + ".gz" for n in names]  # the board gets these and no others
    total = 0
    for n in names:
        with open(os.path.join(www, n + ".gz"), "rb") as f:
            gz = f.read()
        with open(os.path.join(src, n), "rb") as f:
            assert gzip.decompress(gz) == f.read(), n
        total += len(gz)
    assert total < WWW_BUDGET_BYTES, "the dashboard grew to %d bytes gzipped" % total


def test_www_gzip_writes_checks_and_leaves_fresh_files_alone(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    (src / "a.html").write_bytes(b"<p>hello</p>\n" * 20)
    (src / "sub" / "b.js").write_bytes(b"let x = 1;\n")
    args = ("--src", str(src), "--out", str(out))
    r = tool("www_gzip.py", "--check", *args)
    assert r.returncode == 1 and "a.html.gz" in r.stderr and "b.js.gz" in r.stderr and "make www" in r.stderr
    assert not out.exists()  # --check writes nothing
    r = tool("www_gzip.py", *args)
    assert r.returncode == 0, r.stderr
    a = (out / "a.html.gz").read_bytes()
    assert gzip.decompress(a) == (src / "a.html").read_bytes()
    assert a[4:8] == b"\0\0\0\0" and len(a) < len((src / "a.html").read_bytes())  # mtime 0: same bytes each time
    assert gzip.decompress((out / "sub" / "b.js.gz").read_bytes()) == b"let x = 1;\n"
    assert tool("www_gzip.py", "--check", *args).returncode == 0
    # a fresh file is left as it is (another zlib may compress it to other bytes)
    mtime = os.stat(out / "a.html.gz").st_mtime_ns
    os.utime(out / "a.html.gz", ns=(mtime - 10**9, mtime - 10**9))
    r = tool("www_gzip.py", *args)
    assert r.returncode == 0 and r.stdout == "" and os.stat(out / "a.html.gz").st_mtime_ns == mtime - 10**9
    # a changed source: --check names it; the tool writes it again, with the same bytes every time
    (src / "sub" / "b.js").write_bytes(b"let x = 2;\n")
    r = tool("www_gzip.py", "--check", *args)
    assert r.returncode == 1 and "b.js.gz" in r.stderr and "a.html.gz" not in r.stderr
    assert tool("www_gzip.py", *args).returncode == 0
    first = (out / "sub" / "b.js.gz").read_bytes()
    (out / "sub" / "b.js.gz").write_bytes(b"not gzip")
    assert tool("www_gzip.py", "--check", *args).returncode == 1
    assert tool("www_gzip.py", *args).returncode == 0
    assert (out / "sub" / "b.js.gz").read_bytes() == first
    assert gzip.decompress(first) == b"let x = 2;\n"


# ---- tools/pyright_config.py ----


def test_pyright_config_is_json_with_the_board_stubs(tmp_path):
    out = tmp_path / "cfg" / "pyrightconfig.json"
    r = tool("pyright_config.py", "--stubs", "stubs/B", "--firmware", "fw", "--out", str(out), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    cfg = json.loads(out.read_text())
    stubs = str(tmp_path / "stubs" / "B")
    assert cfg["typeshedPath"] == cfg["stubPath"] == stubs
    assert cfg["extraPaths"] == [str(tmp_path / "fw")]
    relaxed = {k for k, v in cfg.items() if v == "none"}
    assert relaxed == {"reportMissingModuleSource", "reportOptionalMemberAccess", "reportOptionalSubscript",
                       "reportOptionalIterable", "reportOptionalCall", "reportOptionalOperand",
                       "reportOptionalContextManager"}


# ---- tools/deploy_pre.py ----


def test_deploy_pre_script_removes_the_twins_on_micropython(tmp_path):
    board = tmp_path / "board"
    for name in ("main.py", "app.py", "app.mpy", "nostall/web.py", "nostall/web.mpy", "settings.json"):
        (board / name).parent.mkdir(parents=True, exist_ok=True)
        (board / name).write_text("")
    pre = tmp_path / "pre.py"
    r = tool("deploy_pre.py", "--out", str(pre), "app.py", "nostall/web.py", "nostall/gone.py")
    assert r.returncode == 0, r.stderr
    out = micropython.run(str(pre), cwd=str(board))  # as mpremote runs it: from the board's root
    assert out.returncode == 0, out.stdout + out.stderr
    left = sorted(os.path.relpath(os.path.join(d, f), str(board)) for d, _, files in os.walk(str(board)) for f in files)
    assert left == ["app.mpy", "main.py", "nostall/web.mpy", "settings.json"]


def test_deploy_pre_refuses_main_py(tmp_path):
    r = tool("deploy_pre.py", "--out", str(tmp_path / "pre.py"), "app.py", "main.py")
    assert r.returncode != 0 and "main.py" in r.stderr
    assert not (tmp_path / "pre.py").exists()


# ---- harness/figures.py --readme (make figures) ----

README = "intro\n<!-- figures:start -->\nold table\n<!-- figures:end -->\nrest\n"
ROW = {"abuse": "a flood", "load": "64 sockets", "result": "20/20 answered", "lost": "nothing", "test": "t"}


def _figures(tmp_path, exitstatus):
    data = tmp_path / "figures.json"
    data.write_text(json.dumps({"exitstatus": exitstatus, "rows": [ROW]}))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    return str(data), readme


def test_figures_refuse_a_failed_run(tmp_path, capsys):
    data, readme = _figures(tmp_path, 1)
    with pytest.raises(SystemExit) as e:
        figures.main([data, "--readme", str(readme)])
    assert "did not pass" in str(e.value.code) and "\n" not in str(e.value.code)
    assert readme.read_text() == README


def test_figures_write_a_passed_run(tmp_path, capsys):
    data, readme = _figures(tmp_path, 0)
    figures.main([data, "--readme", str(readme)])
    text = readme.read_text()
    assert "old table" not in text and "| a flood | 64 sockets | 20/20 answered | nothing |" in text
    assert text.startswith("intro\n<!-- figures:start -->\n") and text.endswith("<!-- figures:end -->\nrest\n")


def test_figures_of_the_weather_tests_go_to_their_own_table(tmp_path, capsys):
    data, readme = _figures(tmp_path, 0)
    weather = dict(ROW, abuse="3 % loss", test="host_tests/weather/test_lossy_soak.py::test_x")
    (tmp_path / "figures.json").write_text(json.dumps({"exitstatus": 0, "rows": [weather]}))
    readme.write_text(README + "<!-- weather:start -->\nold weather\n<!-- weather:end -->\n")
    figures.main([data, "--readme", str(readme)])
    text = readme.read_text()
    assert "old table" in text, "a table without rows in this run stays as it was"
    assert "old weather" not in text and "| 3 % loss | 64 sockets | 20/20 answered | nothing |" in text
