"""The emulator tests need root, /dev/net/tun, ip and gcc: without them each module is skipped
with a one-line reason, except on CI (CI=true), where a missing emulator is a failure."""
import pytest


@pytest.fixture(scope="module", autouse=True)
def emu_available(need_emulator):
    """Every test here: need_emulator (host_tests/conftest.py)."""
