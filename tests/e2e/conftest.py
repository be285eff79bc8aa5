"""Browser checks of the MLflow UI: a finished tiny experiment, `spa-tune ui` serving it, headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright; nothing is downloaded and the
browser may only reach the UI server on 127.0.0.1. Without Chromium (or Playwright) the tests are
skipped, unless ``SPA_TUNE_E2E=1`` (set by ``make e2e``): there a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.servers import Server, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REQUIRED = os.environ.get("SPA_TUNE_E2E") == "1"
INSTALL_HINT = "install Debian's chromium package: apt-get install -y --no-install-recommends chromium"
E2E_NAME = "e2e-ui"
# Three trials: fine-pruning and SPLoPA at one density, fine-pruning at a sparser one.
POINTS = [
    {"method": "fine-pruning", "final_threshold": 0.5},
    {"method": "splopa", "final_threshold": 0.5},
    {"method": "fine-pruning", "final_threshold": 0.2},
]


def unavailable(reason: str):
    """Skip the browser tests, or fail them where they must run (``SPA_TUNE_E2E=1``)."""
    if REQUIRED:
        pytest.fail(f"SPA_TUNE_E2E=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, and Playwright to drive it (or skip/fail with the reason)."""
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"{CHROMIUM} is missing: {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is missing: pip install -e '.[dev,e2e]'")
    return CHROMIUM


@pytest.fixture(scope="session")
def e2e_experiment(chromium_path, ray_runtime, tmp_path_factory, tiny_model_dir) -> Path:
    """Folder of a finished experiment of three tiny trials, run with ``spa-tune --space``."""
    import spa_tune.cli

    from ..experiment.conftest import write_space

    base = tmp_path_factory.mktemp("e2e")
    path = write_space(
        base, tiny_model_dir, E2E_NAME,
        trial={"num_train_epochs": 2},
        search={
            "method": {"type": "choice", "values": ["fine-pruning", "splopa"]},
            "final_threshold": {"type": "choice", "values": [0.5, 0.2]},
        },
        searcher={"type": "random", "points_to_evaluate": POINTS},
        num_samples=len(POINTS),
        scheduler={"type": "none"},
        resources={"cpu": 1, "gpu": 0},
        max_concurrent_trials=2,
    )
    assert spa_tune.cli.main(["--space", str(path)]) == 0
    return base / "runs" / E2E_NAME


class UIServer(Server):
    """`spa-tune ui EXPERIMENT --port PORT` in its own process group, stopped by that group's id."""

    def __init__(self, folder: Path, log_path: Path):
        port = free_port()
        super().__init__([sys.executable, "-m", "spa_tune.cli", "ui", str(folder), "--port", str(port)], port, log_path)


@pytest.fixture(scope="module")
def ui_server(e2e_experiment):
    """The experiment's MLflow UI on a free port of 127.0.0.1; stopped by its process group afterwards."""
    server = UIServer(e2e_experiment, e2e_experiment / "mlflow-ui.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path):
    """A headless Chromium with a fresh profile that may only reach 127.0.0.1.

    ``browser.context`` opens pages; ``browser.blocked`` lists every request sent elsewhere (aborted).
    """
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="spa-tune-chromium-")
    blocked: list[str] = []

    def local_only(route):
        url = route.request.url
        host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        if url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1920, "height": 1000}, service_workers="block",
            )
            context.route("**/*", local_only)
            context.set_default_timeout(60_000)
            try:
                yield SimpleNamespace(context=context, blocked=blocked)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
