"""`pipe docs`: the static site, built from a real run of the example project and clicked
through in a real browser (Debian's chromium driven by playwright, no browser download).

The browser fixtures live here, not in conftest.py: only this module needs them. Without
chromium or playwright the browser tests skip with the reason; under CI=true they fail
(.ci/run installs chromium), as the PostgreSQL tests do.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import _no_server

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """PIPE_TEST_CHROMIUM, else the first chromium on PATH."""
    given = os.environ.get("PIPE_TEST_CHROMIUM")
    if given:
        return given
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    """A headless chromium for the whole session (skip, or fail under CI=true, without one)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_server("playwright is not installed: pip install -e '.[test]'")
    path = chromium_path()
    if path is None:
        _no_server("no chromium on PATH: apt-get install chromium (or set PIPE_TEST_CHROMIUM)")
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=path, headless=True)
        except Exception as exc:  # playwright's own Error: the browser did not start
            _no_server(f"chromium at {path} does not start: {exc}")
        yield chromium
        chromium.close()


class Watched:
    """A page whose console errors, uncaught exceptions and non-file:// requests are
    recorded; every request that would leave the machine is aborted."""

    def __init__(self, context):
        self.context = context
        self.errors: list[str] = []
        self.requests: list[str] = []
        context.route("**/*", self._route)
        self.page = context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _route(self, route):
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def _console(self, msg):
        if msg.type == "error":
            self.errors.append(f"console {msg.type}: {msg.text}")

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.requests == [], f"network requests: {self.requests}"


@pytest.fixture
def watched(browser):
    """A fresh browser context at a laptop's size; fails the test on any console error or
    network request."""
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    w = Watched(context)
    yield w
    context.close()
    w.assert_clean()


@pytest.mark.browser
def test_browser_opens_a_local_file(watched, tmp_path: Path):
    page = tmp_path / "hello.html"
    page.write_text("<!doctype html><title>t</title><h1 id=h>hello</h1>")
    watched.page.goto(page.as_uri())
    assert watched.page.inner_text("#h") == "hello"
