"""The MLflow UI of a finished experiment, in headless Chromium: every trial with method, density, EM and F1.

`spa-tune ui` serves the experiment's store; the browser opens the experiment's runs page at the
address spa-tune gives (``experiment_page``) and reads the values the UI shows against the store
(``MlflowClient``). Screenshots go to ``<experiment>/screenshots/``.
"""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from spa_tune.experiment.folder import load_experiment
from spa_tune.tracking.mlflow_runs import experiment_page
from tests.servers import group_members

from .conftest import POINTS

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium_path fixture skips (or fails) with the reason
    expect = None

pytestmark = pytest.mark.e2e

# How the UI writes a metric: the runs table with JavaScript's String(value), the compare view with
# MLflow's Utils.formatMetric (the same expression as in the UI's bundle).
JS_STRING = "v => String(v)"
JS_FORMAT_METRIC = (
    "v => v === 0 ? '0' : Math.abs(v) < 1e-3 ? v.toExponential(3).toString()"
    " : Math.abs(v) < 10 ? (Math.round(1e3 * v) / 1e3).toString()"
    " : Math.abs(v) < 100 ? (Math.round(100 * v) / 100).toString() : (Math.round(10 * v) / 10).toString()"
)
RUN_NAME_COLUMN = "attributes.`Run Name`"
# Metrics of the compare view's grid: row name -> values, one per run column, in column order.
READ_METRICS_GRID = """section => {
    const grids = section.querySelectorAll('[role="grid"]');
    const names = {}, values = {};
    for (const cell of grids[0].querySelectorAll('[role="rowgroup"] > div')) names[cell.style.top] = cell.innerText.trim();
    for (const cell of grids[1].querySelectorAll('[role="rowgroup"] > div')) {
        (values[cell.style.top] = values[cell.style.top] || []).push([parseFloat(cell.style.left), cell.innerText.trim()]);
    }
    const table = {};
    for (const [top, name] of Object.entries(names)) table[name] = (values[top] || []).sort((a, b) => a[0] - b[0]).map(v => v[1]);
    return table;
}"""


@pytest.fixture(scope="module")
def store(e2e_experiment):
    """The experiment's parent run and its trial runs, read from the store."""
    _, _, runs = load_experiment(e2e_experiment)
    client = MlflowClient(tracking_uri=runs.tracking_uri)
    children = client.search_runs(
        [runs.experiment_id], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{runs.parent_run_id}'"
    )
    assert len(children) == len(POINTS)
    return runs, sorted(children, key=lambda run: run.info.run_name)


@pytest.fixture(scope="module")
def screenshots(e2e_experiment):
    folder = e2e_experiment / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder


def save_screenshot(page, path, capsys) -> None:
    page.screenshot(path=str(path))
    with capsys.disabled():
        print(f"\nscreenshot: {path}")


def open_runs_page(browser, server, runs, children):
    """The experiment's runs page; nested runs expanded where the UI folds them under the parent."""
    page = browser.context.new_page()
    page.goto(f"{server.base}/{experiment_page(runs.experiment_id)}")
    page.locator(f'[row-id="{runs.parent_run_id}"]').first.wait_for()
    first = page.get_by_role("link", name=children[0].info.run_name, exact=True)
    try:
        first.wait_for(timeout=10_000)
    except Exception:  # folded: the parent's Run Name cell has the expand button
        page.locator(f'[row-id="{runs.parent_run_id}"] [col-id="{RUN_NAME_COLUMN}"] button').first.click()
        first.wait_for()
    close_assistant = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close_assistant.count() and close_assistant.first.is_visible():
        close_assistant.first.click()  # the assistant panel covers the right part of the table
    return page


def test_trial_runs_are_named_and_carry_method_density_em_f1(store):
    runs, children = store
    names = sorted(run.info.run_name for run in children)
    assert names == [
        "fine-pruning topK final_threshold=0.2 #2",
        "fine-pruning topK final_threshold=0.5 #0",
        "splopa topK final_threshold=0.5 #1",
    ]
    for run in children:
        params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
        assert params["method"] == tags["method"] and params["density"] == tags["density"]
        # the density label starts with the method, which the run name shows once
        assert run.info.run_name.startswith(f"{params['method']} topK {params['density'].removeprefix(params['method'] + ' ')} #")
        assert {"em", "f1", "remaining_pct", "learned_pct"} <= set(metrics)


def test_runs_page_shows_every_trial_with_its_f1(ui_server, browser, store, screenshots, capsys):
    runs, children = store
    page = open_runs_page(browser, ui_server, runs, children)
    header = page.locator(".ag-header")
    for column in ("params.`method`", "params.`density`", "metrics.`em`", "metrics.`f1`"):
        expect(header.locator(f'[col-id="{column}"]').first).to_be_visible()
    for run in children:
        link = page.get_by_role("link", name=run.info.run_name, exact=True)
        expect(link).to_be_visible()
        assert link.get_attribute("href").endswith(f"/runs/{run.info.run_id}")
        row = page.locator(f'.ag-center-cols-container [row-id="{run.info.run_id}"]')
        expected = {
            "params.`method`": run.data.params["method"],
            "params.`density`": run.data.params["density"],
            "metrics.`em`": page.evaluate(JS_STRING, run.data.metrics["em"]),
            "metrics.`f1`": page.evaluate(JS_STRING, run.data.metrics["f1"]),
        }
        for column, text in expected.items():
            cell = row.locator(f'[col-id="{column}"]')
            expect(cell).to_be_visible()
            expect(cell).to_have_text(text)
    # sorted by F1, best first (the parent run has no F1 and comes last)
    order = page.locator('.ag-center-cols-container [role="row"] [col-id="metrics.`f1`"]').all_inner_texts()
    best_first = sorted(children, key=lambda run: -run.data.metrics["f1"])
    assert order[: len(children)] == [page.evaluate(JS_STRING, run.data.metrics["f1"]) for run in best_first]
    save_screenshot(page, screenshots / "mlflow-runs.png", capsys)
    page.close()
    assert not browser.blocked, f"the page asked for addresses outside 127.0.0.1: {browser.blocked}"


def test_compare_view_shows_method_density_em_and_f1(ui_server, browser, store, screenshots, capsys):
    runs, children = store
    page = open_runs_page(browser, ui_server, runs, children)
    for run in children:
        page.locator(f'.ag-pinned-left-cols-container [row-id="{run.info.run_id}"] input.ag-checkbox-input').check()
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_url("**/compare-runs?**")
    expect(page.get_by_text(f"Comparing {len(children)} Runs", exact=False)).to_be_visible()

    def section(title: str):
        return page.locator(f'[class*="collapse-item"]:has([aria-label="collapse {title}"])')

    details = section("Run details")
    run_ids = [href.rsplit("/", 1)[-1] for href in details.locator('a[href*="/runs/"]').evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")]
    by_id = {run.info.run_id: run for run in children}
    assert sorted(run_ids) == sorted(by_id)
    ordered = [by_id[run_id] for run_id in run_ids]
    names = details.locator('tr:has(> th:text-is("Run Name:")) > td').all_inner_texts()
    assert [name.strip() for name in names] == [run.info.run_name for run in ordered]

    params = section("Parameters")
    for key in ("method", "density"):
        cells = params.locator(f'tr:has(> th:text-is("{key}")) > td')
        expect(cells.first).to_be_visible()
        assert [text.strip() for text in cells.all_inner_texts()] == [run.data.params[key] for run in ordered]
    metrics = section("Metrics")
    table = metrics.element_handle().evaluate(READ_METRICS_GRID)
    for key in ("em", "f1"):
        assert table[key] == [page.evaluate(JS_FORMAT_METRIC, run.data.metrics[key]) for run in ordered], table

    page.get_by_role("switch", name="Parameters - Show diff only").click()  # the params that differ
    params.locator('tr:has(> th:text-is("density"))').scroll_into_view_if_needed()
    page.set_viewport_size({"width": 1920, "height": 1400})  # run details, differing params, em and f1
    details.scroll_into_view_if_needed()
    save_screenshot(page, screenshots / "mlflow-compare.png", capsys)
    page.close()
    assert not browser.blocked, f"the page asked for addresses outside 127.0.0.1: {browser.blocked}"


def test_ui_server_stops_with_its_process_group(ui_server):
    assert group_members(ui_server.pgid), "the UI server is not running"
    left = ui_server.stop()
    assert not left, f"processes of the UI server outlived SIGTERM: {left}"
    assert ui_server.process.poll() is not None
    assert not group_members(ui_server.pgid)
