"""Where a trained trial's checkpoint is: a checkpoint folder, a trial folder (its newest checkpoint),
an experiment folder (its best completed dense trial) or the MLflow run id of a trial.

Used by ``spa-tune export`` (which names one trial) and by ``model`` / ``teacher_name_or_path``,
which may name a finished dense trial as the model to start from or to distil from. Nothing here
loads weights: only folder names, ``results.csv``, ``trial_config.json`` and, for a run id, MLflow.
"""

from __future__ import annotations

import csv
import functools
import math
import re
from collections import Counter
from pathlib import Path

from ..config import TrialConfig, validate_trial_config
from ..errors import SpaTuneError
from ..layout import RESULTS_FILE, trial_folder_name
from ..layout import STATE_FILE as EXPERIMENT_FILE
from ..model.loading import OFFLINE_MODEL_NAME, expanded, model_name_problem
from .checkpoint import STATE_FILE, is_checkpoint
from .records import CHECKPOINT_PREFIX, CONFIG_FILE, checkpoint_folders, has_checkpoint_entries, read_trial_config

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
DENSE = "dense"
RUN_ID_HINT = "set MLFLOW_TRACKING_URI, or name the trial folder"


def experiment_trial(experiment: Path, trial_id: str) -> Path:
    """Folder of trial ``trial_id`` of the experiment folder ``experiment``; a one-line error if it has none."""
    if not is_experiment_dir(experiment):
        raise SpaTuneError(f"--trial: {experiment} is not an experiment folder (no {EXPERIMENT_FILE} or {RESULTS_FILE})")
    folder = experiment / trial_folder_name(str(trial_id).removeprefix("trial_"))
    if not folder.is_dir():
        known = sorted(p.name.removeprefix("trial_") for p in experiment.glob("trial_*") if p.is_dir())
        raise SpaTuneError(f"--trial: {experiment} has no trial {trial_id!r} (its trials: {', '.join(known) or 'none'})")
    return folder


def newest_checkpoint(trial_dir: Path) -> Path:
    """The checkpoint of the highest step in a trial folder."""
    found = [p for p in checkpoint_folders(trial_dir) if is_checkpoint(p)]
    if not found:
        raise SpaTuneError(f"{trial_dir}: no trial checkpoint in this folder ({CHECKPOINT_PREFIX}*/{STATE_FILE})")
    return found[-1]


def trial_dir_of_run(run_id: str, tracking_uri: str, hint: str = "give --tracking-uri") -> Path:
    """The trial folder of a spa-tune trial's MLflow run, found through its parent (experiment) run.

    ``hint`` says how to name another store when ``tracking_uri`` holds none. Trials kept at a URI
    other than ``file://`` (``s3://...``) are refused: see ``trial_location_of_run``.
    """
    location = trial_location_of_run(run_id, tracking_uri, hint)
    if "://" in location and not location.startswith("file://"):
        trial = location.rsplit("/", 1)[-1]
        raise SpaTuneError(f"{run_id}: its trials are in {location.rsplit('/', 1)[0]}; copy {trial} from there and pass the folder")
    return Path(location.removeprefix("file://"))


def trial_location_of_run(run_id: str, tracking_uri: str, hint: str = "give --tracking-uri") -> str:
    """Where the trial of a spa-tune trial's MLflow run is: its folder, or a URI (``s3://.../trial_<id>``)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ..tracking.mlflow_runs import (
        TUNE_PATH_TAG,
        check_tracking_server,
        quiet_mlflow_logs,
        sqlite_file,
        store_exists,
    )

    if not store_exists(tracking_uri):
        raise SpaTuneError(f"{run_id}: no MLflow store at {tracking_uri} ({hint})")
    unreachable = check_tracking_server(tracking_uri)
    if unreachable:
        raise SpaTuneError(f"{run_id}: MLflow server {tracking_uri} does not answer ({unreachable})")
    quiet_mlflow_logs()
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        run = client.get_run(run_id)
        parent_id = run.data.tags.get("mlflow.parentRunId")
        parent = client.get_run(parent_id) if parent_id else None
    except MlflowException as err:
        raise SpaTuneError(f"{run_id}: no such MLflow run in {tracking_uri} ({str(err).splitlines()[0]})") from None
    trial_id = run.data.tags.get("trial_id")
    if parent is None or not trial_id:
        raise SpaTuneError(f"{run_id}: not the run of a spa-tune trial (no trial_id tag or parent run)")
    tune_path = parent.data.tags.get(TUNE_PATH_TAG)
    if tune_path is None and sqlite_file(tracking_uri) is not None:
        tune_path = str(sqlite_file(tracking_uri).parent)  # an experiment's default store lives in its folder
    if tune_path is None:
        raise SpaTuneError(f"{run_id}: its experiment does not say where its trials are; pass the trial folder instead")
    return f"{str(tune_path).rstrip('/')}/{trial_folder_name(trial_id)}"


def find_checkpoint(run: str, tracking_uri: str | None = None, hint: str = "give --tracking-uri") -> Path:
    """Checkpoint folder of RUN: a checkpoint folder, a trial folder (newest checkpoint) or a run id."""
    from ..tracking.mlflow_runs import given_or_default_tracking_uri

    path = Path(run).expanduser()
    if is_checkpoint(path):
        return path
    if path.is_dir() and is_experiment_dir(path):
        raise SpaTuneError(f"{run}: an experiment folder; name one of its trials with --trial ID "
                           "(the trial_id of `spa-tune report`)")
    if path.is_dir():
        return newest_checkpoint(path)
    if RUN_ID.match(run):
        return newest_checkpoint(run_trial_dir(run, given_or_default_tracking_uri(tracking_uri), hint))
    raise SpaTuneError(f"{run}: not a trial folder, a checkpoint folder or an MLflow run id")


@functools.lru_cache(maxsize=32)
def run_trial_dir(run_id: str, tracking_uri: str, hint: str = "give --tracking-uri") -> Path:
    """``trial_dir_of_run``, which must exist; looked up once per process (a run's trial folder stays)."""
    trial_dir = trial_dir_of_run(run_id, tracking_uri, hint)
    if not trial_dir.is_dir():
        raise SpaTuneError(f"{run_id}: its trial folder {trial_dir} does not exist")
    return trial_dir


def is_experiment_dir(path: Path) -> bool:
    """Whether a folder is a spa-tune experiment folder (its state file or its results table is there)."""
    return (path / EXPERIMENT_FILE).is_file() or (path / RESULTS_FILE).is_file()


def _f1(row: dict) -> float | None:
    try:
        value = float(row.get("f1") or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def best_dense_trial(experiment: Path) -> Path:
    """Trial folder of the experiment's completed dense trial of highest F1 (from its ``results.csv``)."""
    results = experiment / RESULTS_FILE
    if not results.is_file():
        raise SpaTuneError(f"{experiment}: experiment has no {RESULTS_FILE} yet (still running or interrupted); "
                           "name a trial folder instead")
    try:
        with open(results, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise SpaTuneError(f"{results}: unreadable results table ({err})") from None
    dense = [r for r in rows if r.get("method") == DENSE and r.get("status") == "completed" and _f1(r) is not None]
    if not dense:
        kinds = Counter(f"{r.get('method') or '?'} {r.get('status') or '?'}" for r in rows)
        trials = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "none"
        raise SpaTuneError(f"{experiment}: experiment has no completed dense trial (its trials: {trials})")
    best = max(dense, key=_f1)
    folder = experiment / trial_folder_name(best.get("trial_id"))
    if not folder.is_dir():
        raise SpaTuneError(f"{experiment}: its best dense trial's folder {folder.name} is not here "
                           "(trials kept in storage_path elsewhere?); copy it and name the trial folder")
    return folder


def trained_checkpoint(name: str, tracking_uri: str | None = None) -> Path | None:
    """The spa-tune checkpoint a ``model`` or ``teacher_name_or_path`` names, or None for a Hugging Face model.

    A checkpoint folder, a trial folder (newest checkpoint), an experiment folder (the newest
    checkpoint of its best completed dense trial) or a run id (through ``tracking_uri``, else
    ``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working folder) name a checkpoint;
    ``minilm``, a folder with ``config.json`` and anything else (hub ids, missing paths) give None.
    A folder that is none of these raises.
    """
    if name == OFFLINE_MODEL_NAME:
        return None
    path = expanded(name)
    if path.is_dir():
        if (path / "config.json").is_file():
            return None
        if is_checkpoint(path):
            return path
        if is_experiment_dir(path):
            return newest_checkpoint(best_dense_trial(path))
        if has_checkpoint_entries(path):
            return newest_checkpoint(path)
        raise SpaTuneError(f"model folder {name!r} has no config.json and is no spa-tune trial, checkpoint "
                           "or experiment folder")
    trial_dir = run_id_trial_dir(name, tracking_uri)
    return None if trial_dir is None else newest_checkpoint(trial_dir)


def run_id_trial_dir(name: str, tracking_uri: str | None = None) -> Path | None:
    """The trial folder of a model name that is a trial's MLflow run id (and no existing path), else None.

    Looked up in ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working folder.
    """
    if not RUN_ID.match(name) or expanded(name).exists():
        return None
    from ..tracking.mlflow_runs import given_or_default_tracking_uri

    return run_trial_dir(name, given_or_default_tracking_uri(tracking_uri), RUN_ID_HINT)


def dense_trial_config(checkpoint: Path, name: str) -> TrialConfig:
    """The trial config stored with ``checkpoint``; the trial must be dense (a plain fine-tuned QA model)."""
    cfg = validate_trial_config(read_trial_config(checkpoint), str(checkpoint / CONFIG_FILE))
    if cfg.method != DENSE:
        raise SpaTuneError(f"{name}: trial is method {cfg.method}, not a dense QA model")
    return cfg


def trained_model_problem(name: str) -> str | None:
    """Why ``name`` cannot be a ``model`` or teacher (a Hugging Face model or a finished dense trial), or None.

    Reads folder names, ``results.csv`` and ``trial_config.json`` (and MLflow for a run id), no weights.
    """
    try:
        checkpoint = trained_checkpoint(name)
        if checkpoint is None:
            return model_name_problem(name)
        dense_trial_config(checkpoint, name)
    except SpaTuneError as err:
        return str(err)
    return None


def base_model_name(name: str) -> str:
    """The Hugging Face model (hub id, folder or ``minilm``) at the bottom of a model name, for its tokenizer.

    A finished trial's own ``tokenizer`` wins, else its ``model``, followed down if that is a trial too.
    """
    checkpoint = trained_checkpoint(name)
    if checkpoint is None:
        return name
    cfg = dense_trial_config(checkpoint, name)
    return cfg.tokenizer or base_model_name(cfg.model)
