"""The unit tests of this folder, run once more on the MicroPython unix port: each module's
test_* functions through mp_run.py, which must report every one of them passed."""

import importlib
import os
import subprocess

import pytest

from simboard import FIRMWARE, micropython_path

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = sorted(
    f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py") and f not in (
        "test_on_micropython.py", "test_proto.py")  # test_proto runs proto_cases.py there itself
)


@pytest.mark.parametrize("module", MODULES)
def test_module_on_micropython(module):
    n = len([k for k in dir(importlib.import_module(module)) if k.startswith("test_")])
    env = dict(os.environ, MICROPYPATH=":".join([HERE, FIRMWARE, ".frozen"]))
    out = subprocess.run([micropython_path(), os.path.join(HERE, "mp_run.py"), module], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("%d passed, 0 failed" % n), out.stdout + out.stderr
