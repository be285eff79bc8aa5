"""Where a report's trials come from: an experiment folder or an MLflow experiment name.

A folder gives its ``results.csv`` (the finished table) or, while no table exists yet (running or
interrupted), the trial runs of its parent MLflow run. A name is looked up in a tracking store and
gives the trial runs of that MLflow experiment.
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import SpaTuneError
from ..layout import RESULTS_FILE, SPACE_FILE, STATE_FILE, is_uri, trial_folder_name
from ..tracking.mlflow_runs import (
    TRIAL_ID_TAG,
    TUNE_PATH_TAG,
    check_tracking_server,
    quiet_mlflow_logs,
    sqlite_file,
    store_exists,
)
from .results import RESULT_METRICS, SHEET_COLUMNS
from .runs import MLFLOW_PARENT_RUN_ID, child_runs, rows_from_runs
from .seeds import with_config
from .values import parse_value

# results.csv columns that are not searched params; the remaining columns are.
RESULT_COLUMNS = ("trial_id", "method", "pruning_method", "density", *RESULT_METRICS, "status", "error", "node_id",
                  *SHEET_COLUMNS)
TEXT_COLUMNS = ("trial_id", "node_id", "exp_id")  # never read as numbers ("12345_00001" is an int to Python)


@dataclass
class Source:
    """The trials of one experiment: a label for the ``experiment`` column, rows, key params.

    ``origin`` says what the label names: ``folder`` (its name) or ``mlflow`` (an experiment name).
    """

    label: str
    rows: list[dict]
    key_params: list[str]
    origin: str = "folder"


def collect(argument: str, tracking_uri: str) -> Source:
    """The trials of ``argument``: an experiment folder (with experiment.json), the URI of an experiment
    (``<storage_path>/<name>``) or an MLflow experiment name."""
    if is_uri(argument):
        return uri_source(argument)
    folder = Path(argument).expanduser()
    if (folder / STATE_FILE).is_file():
        return folder_source(folder.resolve())
    source = name_source(argument, tracking_uri)
    if source is None:
        raise SpaTuneError(
            f"{argument}: neither an experiment folder (no {folder / STATE_FILE}) "
            f"nor an MLflow experiment in {tracking_uri}"
        )
    return source


def uri_source(uri: str) -> Source:
    """The trials of the experiment at ``uri``, from the files spa-tune copied there (read into a temporary
    folder); their ``trial_folder`` is under ``uri``, where the trials stay."""
    from ..storage import fetch_experiment_files

    with tempfile.TemporaryDirectory(prefix="spa-tune-report-") as tmp:
        return folder_source(fetch_experiment_files(uri, Path(tmp)), location=uri)


def folder_source(folder: Path, location: str | None = None) -> Source:
    """An experiment folder's trials: ``results.csv`` if written, else its parent run's trial runs.

    ``location`` is where the experiment lives when ``folder`` is a copy of its files (a URI)."""
    results = folder / RESULTS_FILE
    if results.exists():
        rows, searched = read_results_csv(results)
        rows = with_links(folder, with_config(rows, fixed_trial(folder), searched), location or str(folder))
        return Source(folder.name, rows, searched)
    state = read_state(folder / STATE_FILE)
    client = tracking_client(state["tracking_uri"], str(folder))
    runs = mlflow_query(lambda: child_runs(client, state["experiment_id"], state["parent_run_id"]), str(folder))
    rows, keys = rows_from_runs(runs, searched_keys(folder / SPACE_FILE))
    return Source(folder.name, rows, keys)


def trial_run_ids(folder: Path) -> dict[str, str]:
    """Trial id -> MLflow run id of an experiment folder's trials; empty (with a note on stderr) when its
    store cannot be read, so a report from ``results.csv`` never depends on the tracking server."""
    try:
        state = read_state(folder / STATE_FILE)
        client = tracking_client(state["tracking_uri"], str(folder))
        runs = mlflow_query(lambda: child_runs(client, state["experiment_id"], state["parent_run_id"]), str(folder))
    except (SpaTuneError, KeyError, TypeError) as err:
        print(f"spa-tune report: {folder}: no MLflow run ids ({err})", file=sys.stderr)
        return {}
    return {run.data.tags[TRIAL_ID_TAG]: run.info.run_id for run in runs if TRIAL_ID_TAG in run.data.tags}


def with_links(folder: Path, rows: list[dict], location: str) -> list[dict]:
    """Rows with ``trial_folder`` (under ``location``: what ``spa-tune export`` takes) and ``run_id``
    (their MLflow run, from ``folder``'s experiment state)."""
    run_ids = trial_run_ids(folder)
    return [{**row, "trial_folder": f"{location.rstrip('/')}/{trial_folder_name(str(row['trial_id']))}",
             "run_id": run_ids.get(str(row["trial_id"]), "")} for row in rows]


def read_results_csv(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of a ``results.csv`` (cells as numbers where they are) and its searched columns."""
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            table = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise SpaTuneError(f"{path}: unreadable results table ({err})") from None
    missing = [c for c in ("trial_id", "method", "f1", "status") if c not in columns]
    if missing:
        raise SpaTuneError(f"{path}: unreadable results table (no {', '.join(missing)} column)")
    if any(None in line for line in table):
        raise SpaTuneError(f"{path}: unreadable results table (a line has more cells than the header)")
    rows = [{k: v if k in TEXT_COLUMNS else parse_value(v) for k, v in line.items()} for line in table]
    return rows, [c for c in columns if c not in RESULT_COLUMNS]


def read_state(path: Path) -> dict:
    """``experiment.json``: tracking URI, experiment id and parent run id."""
    try:
        state = json.loads(path.read_text())
        if all(state.get(key) for key in ("tracking_uri", "experiment_id", "parent_run_id")):
            return state
    except (OSError, ValueError, AttributeError):
        pass
    raise SpaTuneError(f"{path}: unreadable experiment state (tracking_uri, experiment_id, parent_run_id)")


def searched_keys(space_file: Path) -> list[str]:
    """The keys of the ``search`` section of a saved space file (none when unreadable)."""
    try:
        space = yaml.safe_load(space_file.read_text())
        return [str(key) for key in (space.get("search") or {})]
    except (OSError, yaml.YAMLError, AttributeError):
        return []


def fixed_trial(folder: Path) -> dict:
    """The ``trial`` section (fixed trial values) of a folder's saved space file; empty when unreadable."""
    try:
        trial = yaml.safe_load((folder / SPACE_FILE).read_text()).get("trial")
        return dict(trial) if isinstance(trial, dict) else {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}


def name_source(name: str, tracking_uri: str) -> Source | None:
    """The trial runs of the MLflow experiment ``name``, or None when the store has no such experiment."""
    if not store_exists(tracking_uri):
        return None
    client = tracking_client(tracking_uri, name)
    experiment = mlflow_query(lambda: client.get_experiment_by_name(name), name)
    if experiment is None:
        return None
    runs = mlflow_query(lambda: child_runs(client, experiment.experiment_id), name)
    if not runs:
        raise SpaTuneError(f"{name}: MLflow experiment in {tracking_uri} has no trial runs (runs with a parent run)")
    rows, keys = rows_from_runs(runs)
    folders = trial_folders(client, runs, tracking_uri, name)
    rows = [{**row, "trial_folder": folders.get(row["run_id"], "")} for row in rows]
    return Source(name, rows, keys, origin="mlflow")


def trial_folders(client, runs, tracking_uri: str, name: str) -> dict[str, str]:
    """Run id -> where its trial is (``<Ray Tune experiment path>/trial_<id>``, a folder or a URI), from the
    parent run's record of the experiment path (else, for an experiment's own SQLite store, its folder)."""
    paths: dict[str, str | None] = {}
    found = {}
    for run in runs:
        parent = run.data.tags.get(MLFLOW_PARENT_RUN_ID)
        trial_id = run.data.tags.get(TRIAL_ID_TAG)
        if parent not in paths:
            tags = mlflow_query(lambda parent=parent: client.get_run(parent).data.tags, name)
            local = sqlite_file(tracking_uri)
            paths[parent] = tags.get(TUNE_PATH_TAG) or (str(local.parent) if local is not None else None)
        if paths[parent] and trial_id:
            found[run.info.run_id] = f"{paths[parent].rstrip('/')}/{trial_folder_name(trial_id)}"
    return found


def tracking_client(tracking_uri: str, argument: str):
    """An ``MlflowClient`` for ``tracking_uri``; an unreachable server is a one-line error naming ``argument``."""
    from mlflow.tracking import MlflowClient

    quiet_mlflow_logs()
    problem = check_tracking_server(tracking_uri)
    if problem:
        raise SpaTuneError(f"{argument}: MLflow tracking server {tracking_uri} unreachable: {problem}")
    return MlflowClient(tracking_uri=tracking_uri)


def mlflow_query(call, argument: str):
    """Run an MLflow query; its failure becomes a one-line error naming ``argument``."""
    try:
        return call()
    except SpaTuneError:
        raise
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SpaTuneError(f"{argument}: MLflow query failed: {first_line}") from None
