"""Load a trained trial from its checkpoint (found by ``spa_tune.trial.locate``: trial folder, checkpoint folder
or MLflow run id)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..config import TrialConfig, validate_trial_config
from ..errors import SpaTuneError
from ..model.inject import prepare_model
from ..pruning.control import set_masks
from ..trial.checkpoint import STATE_FILE, read_state, restore_model
from ..trial.locate import RUN_ID, find_checkpoint, newest_checkpoint, trial_dir_of_run
from ..trial.records import CONFIG_FILE, logged_threshold, read_trial_config
from ..trial.teacher import load_trained_qa_model

__all__ = [
    "RUN_ID", "TrainedTrial", "checkpoint_threshold", "find_checkpoint", "load_trained", "newest_checkpoint",
    "trial_dir_of_run",
]


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


def checkpoint_threshold(checkpoint: Path, state: dict, cfg: TrialConfig) -> float:
    """The mask threshold at the checkpoint's step (stored with it, or in its copy of the metrics log).

    Dense and L0 trials do not use one (1.0 is returned).
    """
    if "threshold" in state.get("extra", {}):
        return float(state["extra"]["threshold"])
    if not cfg.masked or cfg.pruning_method == "l0":
        return 1.0
    logged = logged_threshold(checkpoint, state["step"])
    if logged is not None:
        return logged
    raise SpaTuneError(f"{checkpoint}: the checkpoint does not record its mask threshold")


def load_trained(checkpoint: Path) -> TrainedTrial:
    """Rebuild the trial's model from ``checkpoint`` and set its masks to the checkpoint's threshold."""
    values = read_trial_config(checkpoint)
    cfg = validate_trial_config(values, str(checkpoint / CONFIG_FILE))
    model = prepare_model(load_trained_qa_model(cfg.model), cfg)  # a dense trial as model: its weights
    state = read_state(checkpoint)  # spa-tune's own checkpoint format (learned tensors, optimiser, RNG states)
    try:
        restore_model(model, state, checkpoint / STATE_FILE)
    except SpaTuneError:
        raise
    except Exception as err:  # another model's weights, ...
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SpaTuneError(f"{checkpoint / STATE_FILE}: cannot load the trial's model ({first_line})") from None
    threshold = checkpoint_threshold(checkpoint, state, cfg)
    set_masks(model, cfg, threshold)
    extra = state.get("extra", {})
    return TrainedTrial(model.eval(), cfg, state["step"], threshold, checkpoint, extra.get("em"), extra.get("f1"))
