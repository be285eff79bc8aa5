"""Trial checkpoints sized to what a trial learns, for exact resumption.

A checkpoint stores the tensors that learn (``requires_grad``) and the model's buffers, the
optimiser, scheduler and gradient-scaler states, the step, every RNG state, and a fingerprint of
the frozen base weights it leaves out. Loading rebuilds the model from its base, checks the
fingerprint, and puts the learned tensors back: a SPLoPA checkpoint is a few percent of the model.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..config import NO_RESULT_KEYS
from ..errors import SpaTuneError
from ..model.fingerprint import frozen_parameter_names, weights_fingerprint
from .records import CONFIG_FILE, STATE_FILE, checkpoint_folders, read_trial_config, write_trial_config

__all__ = [  # CONFIG_FILE, STATE_FILE: the checkpoint's files, defined with the trial's other files in records
    "CONFIG_FILE", "RESUMABLE_CHANGES", "STATE_FILE", "base_fingerprint", "base_record", "check_resumable",
    "is_checkpoint", "learned_state", "load_checkpoint", "prune_old_checkpoints", "read_state", "restore_model",
    "rng_states", "save_checkpoint", "set_rng_states",
]

def rng_states() -> dict:
    """Current Python, NumPy and torch (CPU and CUDA) random states."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore the states returned by ``rng_states``."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def base_fingerprint(model, keys: list[str] | None = None) -> str:
    """Fingerprint of the weights a checkpoint leaves out: the frozen parameters (none for fine-pruning)."""
    return weights_fingerprint(model.state_dict(), frozen_parameter_names(model) if keys is None else keys)


def learned_state(model) -> dict:
    """The model's state without its frozen parameters: what a checkpoint stores."""
    frozen = set(frozen_parameter_names(model))
    return {key: value for key, value in model.state_dict().items() if key not in frozen}


def restore_model(model, state: dict, where: Path) -> None:
    """Put a checkpoint's learned tensors into ``model``, rebuilt from the checkpoint's base.

    The base must be the one the trial was trained from: the fingerprint of the weights the
    checkpoint left out is compared with the stored one. Checkpoints written before fingerprints
    held the whole model.
    """
    base = state.get("base")
    if base is None:
        model.load_state_dict(state["model"])
        return
    frozen = base["frozen"]
    current = model.state_dict()
    found = weights_fingerprint(current, frozen) if all(key in current for key in frozen) else "none"
    if found != base["fingerprint"]:
        raise SpaTuneError(
            f"{where}: written for base model {base['model']!r} with frozen weights {base['fingerprint'][:12]}, "
            f"but this base has {found[:12]}; resume and export need the base the trial was trained from"
        )
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if unexpected or set(missing) != set(frozen):
        raise SpaTuneError(
            f"{where}: the checkpoint's tensors do not fit this model "
            f"(missing {sorted(set(missing) - set(frozen))[:3]}, unexpected {unexpected[:3]})"
        )


def base_record(model, name: str | None, fingerprint: str | None = None) -> dict:
    """What a checkpoint says about its base: the model's name, the frozen keys and their fingerprint."""
    frozen = frozen_parameter_names(model)
    return {"model": name, "frozen": frozen, "fingerprint": fingerprint or base_fingerprint(model, frozen)}


def save_checkpoint(
    directory: str | Path, model, optimizer, scheduler, step: int, config: dict, extra: dict | None = None,
    files: tuple[Path, ...] = (), scaler: dict | None = None, fingerprint: str | None = None,
) -> Path:
    """Write a checkpoint folder; written to a temporary name first so a crash leaves no half folder.

    ``files`` (such as the metrics log) are copied in, so a resumed run gets its history back.
    ``scaler`` is the fp16 gradient scaler's state; ``fingerprint`` the base's, when already known.
    """
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        state = {
            "model": learned_state(model),
            "base": base_record(model, config.get("model"), fingerprint),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler or {},
            "step": step,
            "rng": rng_states(),
            "extra": extra or {},
        }
        _write_checkpoint(tmp, state, config, files)
    except BaseException:  # a full disk or a kill: the half-written folder goes, older checkpoints stay
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return directory


def _write_checkpoint(tmp: Path, state: dict, config: dict, files) -> None:
    torch.save(state, tmp / STATE_FILE)
    write_trial_config(tmp, config)
    for file in files:
        if Path(file).is_file():
            shutil.copy2(file, tmp / Path(file).name)


# Keys that may change when a run is resumed: they do not affect what is trained.
RESUMABLE_CHANGES = NO_RESULT_KEYS


def check_resumable(directory: str | Path, config: dict) -> None:
    """Fail with one line naming the first key where ``config`` differs from the checkpoint's."""
    stored = read_trial_config(directory)
    for key in sorted(set(stored) | set(config)):
        if key not in RESUMABLE_CHANGES and stored.get(key) != config.get(key):
            raise SpaTuneError(
                f"--resume: {directory} was written with {key}={stored.get(key)!r}, not {config.get(key)!r}; "
                "a resumed run must keep the trial configuration"
            )


def read_state(directory: str | Path) -> dict:
    """The stored state of a checkpoint folder; an unreadable file is one line naming it."""
    path = Path(directory) / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated file, not a checkpoint, ...
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SpaTuneError(f"{path}: cannot load the trial's model ({first_line})") from None


def load_checkpoint(directory: str | Path, model, optimizer, scheduler) -> dict:
    """Load a checkpoint folder into model, optimiser and scheduler; restore RNG states.

    Returns the stored ``step``, ``extra`` mapping and ``scaler`` state.
    """
    state = read_state(directory)
    restore_model(model, state, Path(directory) / STATE_FILE)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_states(state["rng"])
    return {"step": state["step"], "extra": state["extra"], "scaler": state.get("scaler", {})}


def is_checkpoint(directory: str | Path) -> bool:
    """Whether a folder holds a trial checkpoint."""
    return (Path(directory) / STATE_FILE).is_file()


def prune_old_checkpoints(parent: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` ``checkpoint_<step>`` folders under ``parent``."""
    for old in checkpoint_folders(parent)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
