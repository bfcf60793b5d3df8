"""The contestants of `make bench` (harness/contestants.py) that need nothing from PyPI, the bare
asyncio bound and this firmware on the sim board, run through the same start and check code the
bench and `python -m harness.contestants` use, so that code keeps working between bench runs.
The PyPI peers need a network install and are left to `python -m harness.contestants`."""

import os

import pytest

from harness import contestants
from harness.contestants import BOUND, THIS, check, start


@pytest.mark.parametrize("c", [BOUND, THIS], ids=lambda c: c.name)
def test_serves_the_bench_app_and_keeps_alive(c, tmp_path):
    with start(c, heap="256K", cache_dir=str(tmp_path)) as h:
        assert h.url == "http://127.0.0.1:%d" % h.port
        problems, closes = check(h, str(tmp_path))
        pid = h.pid
    assert problems == []
    assert closes is False  # both answer a second request on the same connection
    assert not os.path.exists("/proc/%d" % pid) or _zombie(pid), "stop() left the process running"


def _zombie(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(") ")[1].startswith("Z")


def test_a_peer_starts_only_once_installed(tmp_path):
    peer = contestants.by_name("microdot")
    assert not peer.installed(str(tmp_path))
    with pytest.raises(RuntimeError, match="not installed"):
        start(peer, cache_dir=str(tmp_path))
    os.makedirs(peer.folder(str(tmp_path)))
    with open(os.path.join(peer.folder(str(tmp_path)), contestants.STAMP), "w") as f:
        f.write("\n".join(peer.packages) + "\n")
    assert peer.installed(str(tmp_path))  # the stamp names exactly the pinned packages: no reinstall


def test_every_contestant_has_its_app_and_a_pinned_version():
    for c in contestants.PEERS:
        assert os.path.exists(os.path.join(contestants.APPS_BENCH, c.app)), c.name
        assert c.packages and all("==" in p for p in c.packages), c.name
    names = [c.name for c in contestants.CONTESTANTS]
    assert len(names) == len(set(names))
