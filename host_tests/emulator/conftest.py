"""The emulator tests need root, /dev/net/tun, ip and gcc: without them each module is skipped
with a one-line reason, except on CI (CI=true), where a missing emulator is a failure."""
import os

import pytest

from harness.emu import netns


@pytest.fixture(scope="module", autouse=True)
def emu_available():
    ok, why = netns.available()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail("emulator unavailable on CI: " + why, pytrace=False)
        pytest.skip("emulator unavailable: " + why)
