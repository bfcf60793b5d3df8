"""The browser fixtures of the dashboard's tests: a headless Chromium (harness/browser.py) per
test, with a fresh profile. Without Chromium the tests skip with the reason, except on CI
(CI=true), where .ci/run installs it and its absence is a failure (need_browser, in
host_tests/conftest.py: tests elsewhere start a browser too)."""

import pytest

from harness.browser import chromium


@pytest.fixture
def chrome(need_browser):  # need_browser: host_tests/conftest.py
    """A started chromium(): .driver is its WebDriver, .quit() ends it (and so closes its
    connections) before the test checks the board; the fixture ends it otherwise."""
    with chromium() as c:
        yield c


@pytest.fixture
def browser(chrome):
    """The WebDriver of a headless Chromium."""
    return chrome.driver
