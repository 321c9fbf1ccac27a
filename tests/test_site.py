"""`pipe docs`: the static site, built from a real run of the example project and clicked
through in a real browser (Debian's chromium driven by playwright, no browser download).

The browser fixtures live here, not in conftest.py: only this module needs them. Without
chromium or playwright the browser tests skip with the reason; under CI=true they fail
(.ci/run installs chromium), as the PostgreSQL tests do.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import _no_server, copy_example, run_cli, run_cli_json

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


# ---------------------------------------------------------------- the site's data

BROKEN_SQL = "select product_id, cast(product_name as integer) as n from staging.products\n"


def site_data(out: Path) -> dict:
    text = (out / "data.js").read_text(encoding="utf-8")
    prefix = "window.PIPE_DATA = "
    assert text.startswith(prefix) and text.endswith(";\n")
    return json.loads(text[len(prefix) : -2])


@pytest.fixture(scope="module")
def shop_site(tmp_path_factory) -> tuple[Path, Path]:
    """The example project run on DuckDB for 2026-06-01 (all green) and 2026-06-02 with a
    model whose SQL fails at run time; then `pipe docs`. (project root, site folder)."""
    root = copy_example(tmp_path_factory.mktemp("site") / "shop")
    code, out = run_cli(["run", "--interval", "2026-06-01", "--project", root])
    assert code == 0, out
    (root / "models" / "reports" / "broken.sql").write_text(BROKEN_SQL)
    code, out = run_cli(["run", "--interval", "2026-06-02", "--project", root])
    assert code == 1 and "reports.broken" in out, out
    code, out = run_cli(["docs", "--project", root])
    assert code == 0, out
    assert "wrote " in out and "index.html" in out
    return root, root / ".pipe" / "site"


def test_docs_writes_a_self_contained_site(shop_site):
    _root, site = shop_site
    assert sorted(p.name for p in site.iterdir()) == [
        "app.js",
        "data.js",
        "index.html",
        "style.css",
    ]
    for name in ("index.html", "app.js", "style.css"):
        text = (site / name).read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text


def test_site_data_matches_the_project(shop_site):
    root, site = shop_site
    data = site_data(site)
    listed = run_cli_json(["list", "--json", "--project", root])
    models = {m["name"]: m for m in data["models"]}
    assert sorted(models) == [r["name"] for r in listed]
    for r in listed:
        assert models[r["name"]]["upstream"] == r["depends_on"]
        assert models[r["name"]]["kind"] == r["kind"]
    orders = models["staging.orders"]
    assert orders["description"] == "Orders with their amount, one daily interval per task."
    assert orders["downstream"] == ["marts.customer_orders", "marts.daily_revenue"]
    assert {"name": "order_id", "doc": "Primary key of an order"} in orders["columns"]
    assert [c["name"] for c in orders["columns"]][:3] == ["order_id", "customer_id", "product_id"]
    assert [s["interval"] for s in orders["sql"]] == ["2026-06-02", "2026-06-01"]
    assert "TIMESTAMP '2026-06-02 00:00:00'" in orders["sql"][0]["sql"]
    # layers: a node sits right of everything it reads
    for m in data["models"]:
        for u in m["upstream"]:
            assert models[u]["xy"][0] < m["xy"][0]
    checks = data["checks"]["staging.orders"]
    assert checks["unique(order_id)"]["status"] == "pass"
    assert data["lineage"] is None  # LINEAGE HOOK: set once `pipe lineage` lands


def test_site_runs_show_the_failure_and_the_critical_path(shop_site):
    _root, site = shop_site
    data = site_data(site)
    newest, first = data["runs"]
    assert (newest["id"], newest["status"], first["status"]) == (2, "failed", "success")
    failed = [t for t in newest["tasks"] if t["status"] == "failed"]
    assert [t["model"] for t in failed] == ["reports.broken"]
    assert "Conversion Error" in failed[0]["attempts"][-1]["error"]
    path = [next(t for t in first["tasks"] if t["id"] == i) for i in first["critical_path"]]
    assert path, "a run that finished has a critical path"
    ends = [t["attempts"][-1]["end"] for t in path]
    assert ends == sorted(ends)
    assert ends[-1] == max(t["attempts"][-1]["end"] for t in first["tasks"])
    for t in first["tasks"]:
        for a in t["attempts"]:
            assert 0 <= a["queued"] <= a["start"] <= a["end"]


def test_site_grid_and_freshness(shop_site):
    _root, site = shop_site
    data = site_data(site)
    grid = data["grid"]
    assert grid["states"][:3] == ["published", "failed", "missing"]
    cols = grid["intervals"]
    rows = {r["model"]: r["states"] for r in grid["rows"]}
    state = lambda model, label: grid["states"][int(rows[model][cols.index(label)])]
    assert state("staging.orders", "2026-06-01") == "published"
    assert state("staging.page_views", "2026-06-02") == "published"  # all 24 hours
    assert state("reports.broken", "2026-06-02") == "failed"
    assert state("staging.orders", "2026-06-03") == "missing"
    fresh = {f["model"]: f for f in data["freshness"]}
    assert fresh["staging.orders"]["newest_end"] == "2026-06-03T00:00:00"
    assert fresh["reports.broken"]["status"] == "never built"
    assert fresh["raw.orders"]["status"] == "loaded"


def test_docs_out_option_and_no_project(tmp_path, example_project):
    code, out = run_cli(["docs", "--project", example_project, "--out", tmp_path / "elsewhere"])
    assert code == 0, out
    data = site_data(tmp_path / "elsewhere")
    assert data["runs"] == [] and data["plans"] == []
    assert not (example_project / ".pipe" / "state.db").exists()  # read-only: nothing made
    code, out = run_cli(["docs", "--project", tmp_path / "nothing"])
    assert code == 2, out
