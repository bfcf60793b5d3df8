"""The browser fixtures of the dashboard's tests: a headless Chromium (harness/browser.py) per
test, with a fresh profile. Without Chromium the tests skip with the reason, except on CI
(CI=true), where .ci/run installs it and its absence is a failure."""

import os

import pytest

from harness.browser import chromium, missing


@pytest.fixture
def need_browser():
    """For a test that starts chromium() itself (with options of its own)."""
    why = missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail("browser tests cannot run on CI: " + why)
        pytest.skip(why)


@pytest.fixture
def chrome(need_browser):
    """A started chromium(): .driver is its WebDriver, .quit() ends it (and so closes its
    connections) before the test checks the board; the fixture ends it otherwise."""
    with chromium() as c:
        yield c


@pytest.fixture
def browser(chrome):
    """The WebDriver of a headless Chromium."""
    return chrome.driver
