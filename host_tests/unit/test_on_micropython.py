"""The unit tests of this folder, run once more on the MicroPython unix port: each module's
test_* functions through mp_run.py, which must report every one of them passed."""

import importlib
import os

import pytest

from harness import micropython
from harness.paths import FIRMWARE

HERE = os.path.dirname(os.path.abspath(__file__))
# test_proto.py runs its table there itself (proto_cases.py)
MODULES = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py")
                 and f not in ("test_on_micropython.py", "test_proto.py"))


@pytest.mark.parametrize("module", MODULES)
def test_module_on_micropython(module):
    n = len([k for k in dir(importlib.import_module(module)) if k.startswith("test_")])
    out = micropython.run(os.path.join(HERE, "mp_run.py"), [module], path=[HERE, FIRMWARE], timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("%d passed, 0 failed" % n), out.stdout + out.stderr
