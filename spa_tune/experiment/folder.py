"""The experiment folder: ``<storage_path>/<name>``, shared by Ray Tune, MLflow, Optuna and spa-tune.

spa-tune keeps two files of its own there: ``space.yaml`` (the checked space, ``--set`` applied)
and ``experiment.json`` (where the MLflow runs are), which is all ``spa-tune resume`` needs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from ..errors import SpaTuneError
from ..files import replace_atomically
from ..layout import SPACE_FILE, STATE_FILE, is_uri
from ..spec.load import validate_space
from ..spec.space import SpaceSpec
from ..storage import upload_files
from ..tracking.mlflow_runs import ExperimentRuns


def experiment_dir(spec: SpaceSpec) -> Path:
    """Absolute folder of spa-tune's own files: ``<storage_path>/<name>``, or ``<local_dir>/<name>``
    on the driver's machine when ``storage_path`` is a URI (Ray Tune then keeps its trials there)."""
    base = spec.local_dir if is_uri(spec.storage_path) else spec.storage_path
    return (Path(base).expanduser() / spec.name).resolve()


def tune_storage(spec: SpaceSpec, folder: Path) -> str:
    """Ray Tune's ``storage_path``: the URI itself, or the local folder's parent."""
    return spec.storage_path.rstrip("/") if is_uri(spec.storage_path) else str(folder.parent)


def tune_experiment_path(spec: SpaceSpec, folder: Path) -> str:
    """Where Ray Tune keeps the experiment (its state, trials, checkpoints): a URI or a folder."""
    return f"{spec.storage_path.rstrip('/')}/{spec.name}" if is_uri(spec.storage_path) else str(folder)


def feature_cache_location(spec: SpaceSpec, folder: Path) -> str:
    """Where the trials share tokenized features unless the trial section sets ``feature_cache``:
    ``feature_cache`` in Ray Tune's experiment path (a URI when ``storage_path`` is one), which
    every node reaches and a resumed experiment finds again."""
    return f"{tune_experiment_path(spec, folder).rstrip('/')}/feature_cache"


def _tune_state_exists(path: str) -> bool:
    from ray import tune

    try:
        return tune.Tuner.can_restore(path)
    except Exception:  # an unreachable bucket is reported by Ray when the experiment starts
        return False


def refuse_existing(spec: SpaceSpec) -> Path:
    """The folder of a new experiment; an existing experiment there is an error (never overwritten)."""
    folder = experiment_dir(spec)
    if is_uri(spec.storage_path) and _tune_state_exists(tune_experiment_path(spec, folder)):
        raise SpaTuneError(
            f"storage_path: {tune_experiment_path(spec, folder)} holds an experiment {spec.name!r} already; "
            "pick another name (--set name=...) so its trials are not mixed with the new ones"
        )
    if (folder / STATE_FILE).exists():
        raise SpaTuneError(
            f"{folder}: experiment {spec.name!r} exists; continue it with `spa-tune resume {folder}` "
            "or pick another name (--set name=...)"
        )
    return folder


def create_experiment_dir(spec: SpaceSpec) -> Path:
    """Create the folder for a new experiment and save its checked space."""
    folder = refuse_existing(spec)
    folder.mkdir(parents=True, exist_ok=True)
    replace_atomically(folder / SPACE_FILE, yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False).encode())
    return folder


def save_state(folder: Path, runs: ExperimentRuns, source: str) -> None:
    """Record where the experiment's MLflow runs are."""
    state = {
        "tracking_uri": runs.tracking_uri,
        "experiment_id": runs.experiment_id,
        "parent_run_id": runs.parent_run_id,
        "space_file": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    replace_atomically(folder / STATE_FILE, json.dumps(state, indent=2).encode())


def load_experiment(folder: str | Path) -> tuple[Path, SpaceSpec, ExperimentRuns]:
    """The checked space and MLflow runs of an existing experiment folder."""
    folder = Path(folder).expanduser().resolve()
    state_file, space_file = folder / STATE_FILE, folder / SPACE_FILE
    if not state_file.is_file() or not space_file.is_file():
        raise SpaTuneError(f"{folder}: not a spa-tune experiment folder (no {STATE_FILE} or {SPACE_FILE})")
    try:
        state = json.loads(state_file.read_text())
        runs = ExperimentRuns(state["tracking_uri"], state["experiment_id"], state["parent_run_id"])
    except (ValueError, KeyError) as err:
        raise SpaTuneError(f"{state_file}: unreadable experiment state ({err})") from None
    try:
        data = yaml.safe_load(space_file.read_text())
    except yaml.YAMLError as err:
        raise SpaTuneError(f"{space_file}: invalid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise SpaTuneError(f"{space_file}: expected a mapping of space sections")
    spec = validate_space(data, str(space_file))
    return folder, spec, runs


def save_beside_trials(spec: SpaceSpec, folder: Path, names: tuple[str, ...]) -> list[str]:
    """With a URI ``storage_path``, copy spa-tune's files ``names`` from ``folder`` to the experiment's URI."""
    if not is_uri(spec.storage_path):
        return []
    return upload_files(folder, tune_experiment_path(spec, folder), names)
