"""Fixtures of the polling tests: every board here is a sim board behind an lwIP of its own (the
board's TCP stack, so TIME_WAIT is counted where a board would hold it), reached from a client
network namespace made for the module. Needs root and /dev/net/tun: skipped with a one-line
reason without them, a failure on CI (CI=true)."""

import os

import pytest

from harness.emu import netns
from harness.simboard import SimFleet


@pytest.fixture(scope="module", autouse=True)
def emu_available():
    ok, why = netns.available()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail("emulator unavailable on CI: " + why, pytrace=False)
        pytest.skip("emulator unavailable: " + why)


class Lab:
    """A client namespace and the sim boards behind lwIP that it reaches: lab.board(limits)."""

    def __init__(self, tmp_path, tag):
        self.ns = netns.new_namespace("nsp", tag)
        self.fleet = SimFleet(tmp_path, emu_ns=self.ns)

    @property
    def ns_path(self):
        return str(netns.NETNS_DIR / self.ns)

    def client(self):
        """Context manager: this thread's new sockets live in the lab's namespace."""
        return netns.in_netns(self.ns_path)

    def board(self, limits=None, **kw):
        return self.fleet.start(limits, **kw)

    def sysctl(self, key, value):
        netns.Emulator.sysctl_in(self.ns, key, value)

    def close(self):
        self.fleet.close()
        netns.delete_namespace(self.ns)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, request):
    lab = Lab(tmp_path_factory.mktemp("lab"), request.module.__name__.rpartition(".")[2][-8:])
    yield lab
    lab.close()
