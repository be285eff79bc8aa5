"""``spa-tune ui EXPERIMENT``: the MLflow UI for an experiment's tracking store."""

from __future__ import annotations

import subprocess
import sys

from ..errors import SpaTuneError
from ..tracking.mlflow_runs import experiment_page, is_local_store
from .folder import load_experiment


def ui_command(tracking_uri: str, host: str, port: int) -> list[str]:
    """The ``mlflow ui`` command line serving ``tracking_uri`` on ``host:port``."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri, "--host", host, "--port", str(port)]


def serve_ui(experiment: str, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Start ``mlflow ui`` on the experiment's local store and wait; print where it is."""
    folder, spec, runs = load_experiment(experiment)
    if not is_local_store(runs.tracking_uri):
        page = f"{runs.tracking_uri.rstrip('/')}/{experiment_page(runs.experiment_id)}"
        print(f"experiment {spec.name} logs to the tracking server {runs.tracking_uri}: open {page}")
        return 0
    url = f"http://{host}:{port}/{experiment_page(runs.experiment_id)}"
    print(f"MLflow UI for {folder} at {url} (Ctrl-C stops it)", flush=True)
    try:
        return subprocess.call(ui_command(runs.tracking_uri, host, port))
    except KeyboardInterrupt:
        return 0
    except OSError as err:
        raise SpaTuneError(f"mlflow ui: {err}") from None
