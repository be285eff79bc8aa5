"""Trial checkpoints: model, optimiser, scheduler, step and every RNG state, for exact resumption."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..config import NO_RESULT_KEYS
from ..errors import SpaTuneError

STATE_FILE = "trial_state.pt"
CONFIG_FILE = "trial_config.json"


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


def save_checkpoint(
    directory: str | Path, model, optimizer, scheduler, step: int, config: dict, extra: dict | None = None,
    files: tuple[Path, ...] = (),
) -> Path:
    """Write a checkpoint folder; written to a temporary name first so a crash leaves no half folder.

    ``files`` (such as the metrics log) are copied in, so a resumed run gets its history back.
    """
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_checkpoint(tmp, model, optimizer, scheduler, step, config, extra, files)
    except BaseException:  # a full disk or a kill: the half-written folder goes, older checkpoints stay
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return directory


def _write_checkpoint(tmp: Path, model, optimizer, scheduler, step: int, config: dict, extra: dict | None, files) -> None:
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "rng": rng_states(),
            "extra": extra or {},
        },
        tmp / STATE_FILE,
    )
    (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
    for file in files:
        if Path(file).is_file():
            shutil.copy2(file, tmp / Path(file).name)


# Keys that may change when a run is resumed: they do not affect what is trained.
RESUMABLE_CHANGES = NO_RESULT_KEYS


def check_resumable(directory: str | Path, config: dict) -> None:
    """Fail with one line naming the first key where ``config`` differs from the checkpoint's."""
    stored = json.loads((Path(directory) / CONFIG_FILE).read_text())
    for key in sorted(set(stored) | set(config)):
        if key not in RESUMABLE_CHANGES and stored.get(key) != config.get(key):
            raise SpaTuneError(
                f"--resume: {directory} was written with {key}={stored.get(key)!r}, not {config.get(key)!r}; "
                "a resumed run must keep the trial configuration"
            )


def load_checkpoint(directory: str | Path, model, optimizer, scheduler) -> dict:
    """Load a checkpoint folder into model, optimiser and scheduler; restore RNG states.

    Returns the stored ``step`` and ``extra`` mapping.
    """
    state = torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_states(state["rng"])
    return {"step": state["step"], "extra": state["extra"]}


def is_checkpoint(directory: str | Path) -> bool:
    """Whether a folder holds a trial checkpoint."""
    return (Path(directory) / STATE_FILE).is_file()


def prune_old_checkpoints(parent: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` ``checkpoint_<step>`` folders under ``parent``."""
    folders = sorted(
        (p for p in Path(parent).glob("checkpoint_*") if p.is_dir() and p.name.split("_")[-1].isdigit()),
        key=lambda p: int(p.name.split("_")[-1]),
    )
    for old in folders[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
