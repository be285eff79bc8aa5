"""Find a trained trial's checkpoint (trial folder, checkpoint folder or MLflow run id) and load it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import TrialConfig, validate_trial_config
from ..errors import SpaTuneError
from ..model.inject import prepare_model
from ..model.loading import load_qa_model
from ..pruning.control import set_masks
from ..tracking.mlflow_runs import (
    TUNE_PATH_TAG, check_tracking_server, given_or_default_tracking_uri, quiet_mlflow_logs, sqlite_file, store_exists,
)
from ..trial.checkpoint import CONFIG_FILE, STATE_FILE, is_checkpoint

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class TrainedTrial:
    """A trial's model rebuilt from a checkpoint, with the masks it had when the checkpoint was written."""

    model: nn.Module
    cfg: TrialConfig
    step: int
    threshold: float
    checkpoint: Path
    em: float | None = None
    f1: float | None = None


def newest_checkpoint(trial_dir: Path) -> Path:
    """The checkpoint of the highest step in a trial folder."""
    found = [p for p in trial_dir.glob("checkpoint_*") if is_checkpoint(p) and p.name.split("_")[-1].isdigit()]
    if not found:
        raise SpaTuneError(f"{trial_dir}: no trial checkpoint in this folder (checkpoint_*/{STATE_FILE})")
    return max(found, key=lambda p: int(p.name.split("_")[-1]))


def trial_dir_of_run(run_id: str, tracking_uri: str) -> Path:
    """The trial folder of a spa-tune trial's MLflow run, found through its parent (experiment) run."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not store_exists(tracking_uri):
        raise SpaTuneError(f"{run_id}: no MLflow store at {tracking_uri} (give --tracking-uri)")
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
    if "://" in tune_path and not tune_path.startswith("file://"):
        raise SpaTuneError(f"{run_id}: its trials are in {tune_path}; copy trial_{trial_id} from there and pass the folder")
    return Path(tune_path.removeprefix("file://")) / f"trial_{trial_id}"


def find_checkpoint(run: str, tracking_uri: str | None = None) -> Path:
    """Checkpoint folder of RUN: a checkpoint folder, a trial folder (newest checkpoint) or a run id."""
    path = Path(run).expanduser()
    if is_checkpoint(path):
        return path
    if path.is_dir():
        return newest_checkpoint(path)
    if RUN_ID.match(run):
        trial_dir = trial_dir_of_run(run, given_or_default_tracking_uri(tracking_uri))
        if not trial_dir.is_dir():
            raise SpaTuneError(f"{run}: its trial folder {trial_dir} does not exist")
        return newest_checkpoint(trial_dir)
    raise SpaTuneError(f"{run}: not a trial folder, a checkpoint folder or an MLflow run id")


def checkpoint_threshold(checkpoint: Path, state: dict, cfg: TrialConfig) -> float:
    """The mask threshold at the checkpoint's step (stored with it, or in its copy of the metrics log).

    Dense and L0 trials do not use one (1.0 is returned).
    """
    if "threshold" in state.get("extra", {}):
        return float(state["extra"]["threshold"])
    if not cfg.masked or cfg.pruning_method == "l0":
        return 1.0
    log = checkpoint / "metrics.jsonl"
    if log.is_file():
        for number, line in reversed(list(enumerate(log.read_text().splitlines(), 1))):
            try:
                entry = json.loads(line)
            except ValueError:
                raise SpaTuneError(f"{log}: line {number} is not JSON") from None
            if entry.get("step") == state["step"] and "threshold" in entry:
                return float(entry["threshold"])
    raise SpaTuneError(f"{checkpoint}: the checkpoint does not record its mask threshold")


def load_trained(checkpoint: Path) -> TrainedTrial:
    """Rebuild the trial's model from ``checkpoint`` and set its masks to the checkpoint's threshold."""
    try:
        values = json.loads((checkpoint / CONFIG_FILE).read_text())
    except (OSError, ValueError) as err:
        raise SpaTuneError(f"{checkpoint / CONFIG_FILE}: unreadable trial config ({err})") from None
    cfg = validate_trial_config(values, str(checkpoint / CONFIG_FILE))
    model = prepare_model(load_qa_model(cfg.model), cfg)
    try:  # spa-tune's own checkpoint format (model, optimiser and RNG states)
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
    except Exception as err:  # a truncated file, another model's weights, ...
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SpaTuneError(f"{checkpoint / STATE_FILE}: cannot load the trial's model ({first_line})") from None
    threshold = checkpoint_threshold(checkpoint, state, cfg)
    set_masks(model, cfg, threshold)
    extra = state.get("extra", {})
    return TrainedTrial(model.eval(), cfg, state["step"], threshold, checkpoint, extra.get("em"), extra.get("f1"))
