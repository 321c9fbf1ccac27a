"""`pipe docs`: the static site, built from a real run of the example project and clicked
through in a real browser (Debian's chromium driven by playwright, no browser download).

The browser fixtures live here, not in conftest.py: only this module needs them. Without
chromium or playwright the browser tests skip with the reason; under CI=true they fail
(.ci/run installs chromium), as the PostgreSQL tests do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import _no_server, copy_example, run_cli, run_cli_json, run_pipe

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
    lineage = data["lineage"]  # what `pipe lineage` says, both ways
    for model, column in (("marts.customer_orders", "country_rank"), ("staging.orders", "amount")):
        up = run_cli_json(["lineage", f"{model}.{column}", "--json", "--project", root])
        down = run_cli_json(
            ["lineage", f"{model}.{column}", "--downstream", "--json", "--project", root]
        )
        site_up = lineage[model][column]["upstream"]
        site_down = lineage[model][column]["downstream"]
        assert [".".join(c) for c in site_up] == up["parents"]
        assert [".".join(c) for c in site_down] == down["children"]
    assert lineage["staging.orders"]["order_id"]["upstream"] == [["raw.orders", "order_id"]]
    assert ["staging.orders", "order_id"] in lineage["raw.orders"]["order_id"]["downstream"]
    assert ["marts.customer_orders", "lifetime_value"] in (
        lineage["staging.orders"]["amount"]["downstream"]
    )
    assert data["lineage_errors"] == {}


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
    assert data["lineage"]["staging.orders"]["order_id"]["upstream"]
    code, out = run_cli(
        ["docs", "--project", example_project, "--out", tmp_path / "e2", "--no-lineage"]
    )
    assert code == 0, out
    assert site_data(tmp_path / "e2")["lineage"] is None
    assert not (example_project / ".pipe" / "state.db").exists()  # read-only: nothing made
    code, out = run_cli(["docs", "--project", tmp_path / "nothing"])
    assert code == 2, out


# ---------------------------------------------------------------- in the browser

SHOTS = os.environ.get("PIPE_TEST_SCREENSHOTS")  # e.g. docs/img: refresh the docs' screenshots


def shoot(page, tmp_path: Path, name: str) -> Path:
    """A screenshot of the viewport: into $PIPE_TEST_SCREENSHOTS when set, else tmp_path."""
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.mouse.move(0, 0)  # no hover highlight left from a click
    page.screenshot(path=str(path))
    assert path.stat().st_size > 5_000
    return path


def scale_of(transform: str) -> float:
    return float(re.search(r"scale\(([-\d.e]+)\)", transform).group(1))


def translate_of(transform: str) -> tuple[float, float]:
    x, y = re.search(r"translate\(([-\d.e]+) ([-\d.e]+)\)", transform).groups()
    return float(x), float(y)


def open_site(watched, site: Path, route: str = ""):
    from playwright.sync_api import expect

    page = watched.page
    page.goto((site / "index.html").as_uri() + route)
    expect(page.locator("#main")).not_to_be_empty()
    return page


@pytest.mark.browser
def test_dag_page_search_and_selection(watched, shop_site, tmp_path):
    from playwright.sync_api import expect

    root, site = shop_site
    data = site_data(site)
    page = open_site(watched, site)
    nodes = page.locator("#dag .node")
    expect(nodes).to_have_count(len(data["models"]))
    edges = sum(len(m["upstream"]) for m in data["models"])
    expect(page.locator("#dag .edge")).to_have_count(edges)
    expect(page.locator("#dag .node.failed")).to_have_count(1)  # reports.broken, last run
    assert "reports.broken" in page.locator("#dag .node.failed title").text_content()
    shoot(page, tmp_path, "dag")

    # pan and zoom: keys, wheel, drag; 0 fits again
    vp = page.locator("#vp")
    fitted = vp.get_attribute("transform")
    page.keyboard.press("+")
    assert scale_of(vp.get_attribute("transform")) > scale_of(fitted)
    page.keyboard.press("0")
    assert vp.get_attribute("transform") == fitted
    page.keyboard.press("ArrowLeft")
    assert translate_of(vp.get_attribute("transform"))[0] > translate_of(fitted)[0]
    box = page.locator("#dag").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.wheel(0, -300)
    zoomed = vp.get_attribute("transform")
    assert scale_of(zoomed) > scale_of(fitted)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 70, steps=4)
    page.mouse.up()
    assert translate_of(vp.get_attribute("transform"))[1] > translate_of(zoomed)[1]
    page.keyboard.press("0")

    page.keyboard.press("/")
    box = page.locator("#q")
    expect(box).to_be_focused()
    # the same selection as `pipe list --select` gives
    for selector in (
        "+marts.daily_revenue",
        "staging.orders+",
        "tag:finance",
        "raw.orders customer_orders",
    ):
        want = run_cli_json(["list", "--json", "--select", selector, "--project", root])
        box.fill(selector)
        hits = page.locator("#dag .node.hit title").all_text_contents()
        assert sorted(hits) == sorted(r["name"] for r in want), selector
    box.fill("tag:nope")
    expect(page.locator("#qinfo")).to_have_text("no model has tag 'nope'")
    box.fill("+vip_customers")
    expect(page.locator("#qinfo")).to_contain_text("of 13 match")
    shoot(page, tmp_path, "dag-select")
    box.fill("daily_revenue")
    box.press("Enter")
    expect(page.locator("main h1")).to_contain_text("marts.daily_revenue")


@pytest.mark.browser
def test_click_through_dag_model_run_failed_task(watched, shop_site, tmp_path):
    from playwright.sync_api import expect

    _root, site = shop_site
    data = site_data(site)
    models = {m["name"]: m for m in data["models"]}
    page = open_site(watched, site)

    # DAG -> model
    page.locator("#dag .node", has=page.locator("title", has_text="staging.orders")).click()
    expect(page.locator("main h1")).to_contain_text("staging.orders")
    assert page.url.endswith("#/model/staging.orders")
    expect(page.locator("#desc")).to_have_text(models["staging.orders"]["description"])
    expect(page.locator("#up li")).to_have_text(
        ["raw.orders", "staging.customers", "staging.products"]
    )
    expect(page.locator("#down li")).to_have_text(["marts.customer_orders", "marts.daily_revenue"])
    cols = page.locator("#columns tbody tr")
    expect(cols).to_have_count(len(models["staging.orders"]["columns"]))
    expect(page.locator("#col-amount")).to_contain_text("Order amount in dollars")
    check_names = [c["name"] for c in models["staging.orders"]["checks"]]
    expect(page.locator("#checks tbody tr td:first-child")).to_have_text(check_names)
    expect(page.locator("#checks tbody tr").first).to_contain_text("pass")
    # the compiled SQL of a chosen interval
    expect(page.locator("#sql")).to_contain_text("TIMESTAMP '2026-06-02 00:00:00'")
    page.select_option("#sqlpick", label="2026-06-01")
    expect(page.locator("#sql")).to_contain_text("TIMESTAMP '2026-06-01 00:00:00'")
    shoot(page, tmp_path, "model")

    # column lineage, both ways: from a column to the one it comes from, and what that feeds
    page.locator("#col-amount .lin-down a", has_text="marts.customer_orders.lifetime_value").click()
    expect(page.locator("main h1")).to_contain_text("marts.customer_orders")
    row = page.locator("#col-lifetime_value")
    expect(row).to_have_class("hit")
    expect(row.locator(".lin-up")).to_have_text("staging.orders.amount")
    expect(row.locator(".lin-down")).to_contain_text("reports.vip_customers.lifetime_value")
    shoot(page, tmp_path, "lineage")
    row.locator(".lin-up a").click()
    expect(page.locator("main h1")).to_contain_text("staging.orders")

    # model -> the run that failed (its recent tasks) -> the failed task
    page.locator("#recent a", has_text="run 2").first.click()
    expect(page.locator("main h1")).to_contain_text("Run 2")
    run = data["runs"][0]
    expect(page.locator("#timeline .row")).to_have_count(len(run["tasks"]))
    expect(page.locator("#timeline .row.crit")).to_have_count(len(run["critical_path"]))
    expect(page.locator("#critical li")).to_have_count(len(run["critical_path"]))
    expect(page.locator("#failures")).to_contain_text("reports.broken")
    expect(page.locator("#failures pre.error")).to_contain_text("Conversion Error")
    expect(page.locator("#wait")).to_contain_text("in total")
    shoot(page, tmp_path, "run")
    page.locator("#failures a", has_text="reports.broken").click()
    expect(page.locator("main h1")).to_contain_text("reports.broken")
    expect(page.locator("#status")).to_have_text("failed")
    expect(page.locator("#attempts pre.error")).to_contain_text(
        "Could not convert string 'notebook'"
    )
    shoot(page, tmp_path, "task")


@pytest.mark.browser
def test_grid_freshness_keyboard_and_theme(watched, shop_site, tmp_path):
    from playwright.sync_api import expect

    _root, site = shop_site
    data = site_data(site)
    page = open_site(watched, site, "#/grid")
    expect(page.locator("#grid tbody tr")).to_have_count(len(data["grid"]["rows"]))
    cell = page.locator('#grid td[title="reports.broken · 2026-06-02: failed"]')
    expect(cell).to_have_class("cell st-failed")
    cell.locator("a").click()  # a failed cell opens the run that failed it
    expect(page.locator("main h1")).to_contain_text("Run 2")
    page.go_back()
    cell = page.locator('#grid td[title="staging.page_views · 2026-06-01: published"]')
    expect(cell).to_have_class("cell st-published")
    expect(page.locator("#glegend > span")).to_have_count(len(data["grid"]["states"]))
    shoot(page, tmp_path, "grid")

    page.keyboard.press("5")
    expect(page.locator("main h1")).to_have_text("Freshness")
    expect(page.locator("#fresh tbody tr")).to_have_count(len(data["freshness"]))
    row = page.locator("#fresh tbody tr", has_text="reports.broken")
    expect(row).to_contain_text("never built")
    shoot(page, tmp_path, "freshness")

    page.keyboard.press("2")
    expect(page.locator("main h1")).to_have_text("Models")
    page.keyboard.press("/")
    page.keyboard.type("tag:finance")
    expect(page.locator("#mt tbody tr")).to_have_count(2)
    page.keyboard.press("Tab")  # the first model link in the table
    expect(page.locator("#mt a").first).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main h1")).to_contain_text("marts.customer_orders")

    html = page.locator("html")
    before = html.get_attribute("data-theme")
    page.keyboard.press("t")
    after = html.get_attribute("data-theme")
    assert after in ("dark", "light") and after != before
    if after == "light":
        page.keyboard.press("t")
    expect(html).to_have_attribute("data-theme", "dark")
    page.keyboard.press("1")
    expect(page.locator("#dag .node")).to_have_count(len(data["models"]))
    shoot(page, tmp_path, "dag-dark")
    page.reload()  # the choice is kept
    expect(html).to_have_attribute("data-theme", "dark")


class Served:
    """`pipe docs --serve --port 0` in a subprocess: `url`, `line()` reads its next line;
    stopped with SIGINT (as Ctrl-C) by `stop()`, which returns its remaining output."""

    def __init__(self, root: Path):
        from conftest import pipe_executable

        self.proc = subprocess.Popen(
            [pipe_executable(), "docs", "--serve", "--port", "0"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        # a line that never comes must fail the test, not hang it
        self.watchdog = threading.Timer(120, self.proc.kill)
        self.watchdog.start()
        first, second = self.line(), self.line()
        assert first.startswith("wrote "), (first, second)
        assert second.startswith("serving http://127.0.0.1:"), (first, second)
        self.url = second.split()[1]

    def line(self) -> str:
        return self.proc.stdout.readline()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        rest, _ = self.proc.communicate(timeout=30)
        self.watchdog.cancel()
        return rest


def test_docs_serve_rebuilds_on_change(example_project):
    """`pipe docs --serve` answers on localhost and rebuilds when a sidecar changes."""
    import urllib.request

    served = Served(example_project)
    try:
        with urllib.request.urlopen(served.url + "index.html", timeout=10) as resp:
            assert resp.status == 200 and b"app.js" in resp.read()
        sidecar = example_project / "models" / "staging" / "customers.yml"
        sidecar.write_text(sidecar.read_text().replace("Customers, cleaned.", "Served fresh."))
        assert served.line().startswith("rebuilt ")
        with urllib.request.urlopen(served.url + "data.js", timeout=10) as resp:
            assert "Served fresh." in resp.read().decode()
    finally:
        rest = served.stop()
    assert served.proc.returncode == 0, rest
    assert "stopped" in rest


@pytest.mark.browser
def test_served_page_reloads_after_a_rebuild(browser, example_project):
    from playwright.sync_api import expect

    served = Served(example_project)
    context = browser.new_context()
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(served.url + "index.html#/model/staging.customers")
        expect(page.locator("#desc")).to_have_text("Customers, cleaned.")
        page.wait_for_function(
            "performance.getEntriesByType('resource').some("
            "e => e.name.endsWith('data.js') && e.initiatorType === 'fetch')"
        )
        sidecar = example_project / "models" / "staging" / "customers.yml"
        sidecar.write_text(sidecar.read_text().replace("Customers, cleaned.", "Served fresh."))
        assert served.line().startswith("rebuilt ")
        expect(page.locator("#desc")).to_have_text("Served fresh.", timeout=15_000)
    finally:
        context.close()
        served.stop()
    assert errors == []


def grid_cells(data: dict, state: str) -> set[tuple[str, str]]:
    """(model, interval label) of every grid cell in `state`."""
    grid = data["grid"]
    code = str(grid["states"].index(state))
    return {
        (row["model"], grid["intervals"][i])
        for row in grid["rows"]
        for i, c in enumerate(row["states"])
        if c == code
    }


def test_grid_shows_what_status_calls_stale_and_partial(example_project):
    root = example_project
    sidecar = root / "models" / "staging" / "orders.yml"
    sidecar.write_text(sidecar.read_text() + "freshness: {warn_after: 26h, error_after: 48h}\n")
    assert run_cli(["run", "--interval", "2026-06-01", "--project", root])[0] == 0
    code, out = run_cli(
        [
            "run",
            "--interval",
            "2026-06-01",
            "--select",
            "staging.customers",
            "--force",
            "--project",
            root,
        ]
    )
    assert code == 0, out
    status = run_cli_json(["status", "--json", "--project", root])
    assert status["stale"], "republishing staging.customers makes its readers stale"
    assert run_cli(["docs", "--project", root])[0] == 0
    data = site_data(root / ".pipe" / "site")
    stale = {(s["model"], s["start"][:10]) for s in status["stale"]}
    assert grid_cells(data, "stale") == stale
    assert ("marts.customer_orders", "2026-06-01") in stale
    done = run_pipe(["status", "--freshness", "--json"], root)
    assert done.returncode == 1, done.stderr  # staging.orders is past error_after
    verdicts = json.loads(done.stdout)
    want = {r["name"]: r["status"] for r in verdicts["freshness"] if r["kind"] != "source"}
    have = {f["model"]: f["check"]["status"] for f in data["freshness"] if f["check"]}
    assert have == want
    assert have["staging.orders"] == "error"  # data of June, thresholds of hours
    late = {f["model"]: f["late_rows"] for f in data["freshness"] if f["late_rows"]}
    assert late == {r["model"]: [r["intervals"], r["rows"]] for r in status["late_rows"]}

    code, out = run_cli(
        [
            "run",
            "--interval",
            "2026-06-02",
            "--allow-partial",
            "--execution-time",
            "2026-06-02T12:00",
            "--project",
            root,
        ]
    )
    assert code == 0, out
    status = run_cli_json(["status", "--json", "--project", root])
    assert run_cli(["docs", "--project", root])[0] == 0
    data = site_data(root / ".pipe" / "site")
    partial = grid_cells(data, "partial")
    want = {(p["model"], p["start"][:10]) for p in status["partial"]}
    assert ("staging.orders", "2026-06-02") in partial
    # a daily cell is partial when one of its intervals is (an hourly model: 12 of 24)
    assert {m for m, _ in want} == {m for m, _ in partial}


OUTPUT_CASES = [
    ("select a, b as c, count(*) as n from t group by 1, 2", ["a", "c", "n"]),
    ("with x as (select 1 as a from y) select x.a, t.* from x, t", ["a", "*"]),
    ("select a from t union all select b from u", ["a"]),
    ("(select a from t) union all (select b from u)", ["a"]),
    ("select (select max(v) from w) as m, extract(year from ts) as y from t", ["m", "y"]),
    ("select trim(both 'x' from s) as s2, 'from' as word, \"from\" from t", ["s2", "word", "from"]),
    ("select distinct on (a) a, b from t order by a, b desc limit 3", ["a", "b"]),
    (
        "select a, row_number() over (partition by b order by c) as r from t qualify r = 1",
        ["a", "r"],
    ),
    ("select count(*) filter (where a > 1) as k, sum(x) total from t", ["k", "total"]),
    ("select case when a then 1 else 2 end as c from t where a", ["c"]),
    ("select -- from here\n a /* from */ as b from t", ["b"]),
    ("select *", ["*"]),
    ("select from where", []),
    ("select 'unterminated from t", []),
]


@pytest.mark.parametrize(("sql", "want"), OUTPUT_CASES)
def test_output_columns_agree_with_a_full_parse(sql, want):
    from pipe import sqlcolumns

    assert sqlcolumns.output_columns(sql, "duckdb") == want
    assert sqlcolumns.output_columns_parsed(sql, "duckdb") == want


def test_output_columns_in_a_pool_and_no_work_in_module_state(write_project, monkeypatch):
    """The parses a first build hands to forked workers reach them through the fork
    (parallel.fan_out), not through module-level state; same columns either way."""
    from pipe import site
    from pipe.compiler import compile_project
    from pipe.loader import load_project

    root = write_project({"models/m/one.sql": "select 1 as a\n"})
    cp = compile_project(load_project(root), None, write_cache=False)
    sql_of = {f"m.t{i}": sql for i, (sql, _) in enumerate(OUTPUT_CASES * 3)}
    want = {f"m.t{i}": cols for i, (_, cols) in enumerate(OUTPUT_CASES * 3)}
    cache = root / ".pipe" / "cache" / "site-columns.pickle"
    monkeypatch.setattr(site, "POOL_MIN", 10**9)
    assert site.output_columns(cp, sql_of) == want
    cache.unlink()
    monkeypatch.setattr(site, "POOL_MIN", 1)
    assert site.output_columns(cp, sql_of) == want
    state = [k for k, v in vars(site).items() if isinstance(v, (list, dict, set)) and k[:2] != "__"]
    assert not state, f"module-level mutable state in pipe.site: {sorted(state)}"
