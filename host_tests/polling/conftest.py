"""Fixtures of the polling tests: every board here is a sim board behind an lwIP of its own (the
board's TCP stack, so TIME_WAIT is counted where a board would hold it), reached from a client
network namespace made for the module (harness.simboard.Lab). Needs root and /dev/net/tun:
skipped with a one-line reason without them, a failure on CI (CI=true)."""

import os

import pytest

from harness.emu import netns
from harness.simboard import Lab


@pytest.fixture(scope="module", autouse=True)
def emu_available():
    ok, why = netns.available()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail("emulator unavailable on CI: " + why, pytrace=False)
        pytest.skip("emulator unavailable: " + why)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, request):
    lab = Lab(tmp_path_factory.mktemp("lab"), request.module.__name__.rpartition(".")[2][-8:])
    yield lab
    lab.close()


@pytest.fixture
def make_lab(tmp_path):
    """Labs of this test's own: make_lab(tag) -> Lab, all closed after the test."""
    labs = []

    def make(tag):
        (tmp_path / tag).mkdir()
        labs.append(Lab(tmp_path / tag, tag))
        return labs[-1]

    yield make
    for lab in labs:
        lab.close()
