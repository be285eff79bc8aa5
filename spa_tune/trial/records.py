"""The files a trial writes into its folder and checkpoints, each with its writer and reader.

Trial folder (``output_dir``), rewritten or extended after every evaluation:

- ``metrics.jsonl``: one JSON object of metrics per evaluation (without the per-layer table);
- ``accounting.json``: the per-layer table of that evaluation (remaining % and learned parameters);
- ``block_masks.npz``: the evaluation-mode block mask of every masked layer, boolean, by layer name;
- ``predictions.json``: the last evaluation's answers (written by ``spa_tune.data.squad_metric``);
- ``feature_cache.json``: which feature-cache entries the trial used and whether it built them;
- ``generated-data/``: the generated SQuAD-format set of a trial with ``dataset: generated``;
- ``checkpoint_<step>/``: a checkpoint (step zero-padded to six digits), the newest ``keep_checkpoints``
  kept. Under Ray Tune the trainable hands each one to Tune, which keeps it in the experiment folder.

Checkpoint folder: ``trial_config.json`` (the validated trial configuration) and a copy of
``metrics.jsonl``, next to ``trial_state.pt`` (model, optimizer, scheduler and random states,
written and read by ``spa_tune.trial.checkpoint``).

The MLflow queue (``spa_tune.tracking.buffered``, a layer below) writes ``mlflow_unsent.jsonl``
into the trial folder when evaluations are still unsent as the trial ends.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpaTuneError

METRICS_LOG = "metrics.jsonl"
ACCOUNTING_FILE = "accounting.json"
BLOCK_MASKS_FILE = "block_masks.npz"
PREDICTIONS_FILE = "predictions.json"
FEATURE_CACHE_RECORD = "feature_cache.json"
CONFIG_FILE = "trial_config.json"
STATE_FILE = "trial_state.pt"
GENERATED_DATA = "generated-data"
CHECKPOINT_PREFIX = "checkpoint_"

LAYERS = "layers"  # the metrics key holding the per-layer table, which goes to ACCOUNTING_FILE


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint after ``step`` steps: ``checkpoint_000120``."""
    return f"{CHECKPOINT_PREFIX}{step:06d}"


def checkpoint_step(path: str | Path) -> int | None:
    """The step of a ``checkpoint_<step>`` folder name; None for any other name."""
    digits = Path(path).name.removeprefix(CHECKPOINT_PREFIX)
    return int(digits) if Path(path).name.startswith(CHECKPOINT_PREFIX) and digits.isdigit() else None


def checkpoint_folders(parent: str | Path) -> list[Path]:
    """The ``checkpoint_<step>`` folders directly under ``parent``, oldest step first."""
    found = [p for p in Path(parent).glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def has_checkpoint_entries(parent: str | Path) -> bool:
    """Whether ``parent`` holds any ``checkpoint_*`` entry, an unfinished one (``.tmp``) included: a trial folder."""
    return any(Path(parent).glob(f"{CHECKPOINT_PREFIX}*"))


def append_metrics(folder: str | Path, metrics: Mapping[str, Any]) -> None:
    """Add one evaluation's metrics, without its per-layer table, as a line of the metrics log."""
    flat = {key: value for key, value in metrics.items() if key != LAYERS}
    with open(Path(folder) / METRICS_LOG, "a") as fh:
        fh.write(json.dumps(flat) + "\n")


def read_metrics_log(folder: str | Path) -> list[dict[str, Any]]:
    """Every evaluation of a metrics log, oldest first; none if there is no log.

    A line that is not a JSON object is one error naming the file and the line number.
    """
    path = Path(folder) / METRICS_LOG
    if not path.is_file():
        return []
    return [_log_entry(path, number, line) for number, line in enumerate(path.read_text().splitlines(), 1)]


def _log_entry(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        raise SpaTuneError(f"{path}: line {number} is not JSON")
    return entry


def logged_threshold(folder: str | Path, step: int) -> float | None:
    """The schedule value (``threshold``) the metrics log records for ``step``; None if it has none.

    Read from the newest line backwards: lines older than the match are not parsed.
    """
    path = Path(folder) / METRICS_LOG
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()
    for number in range(len(lines), 0, -1):
        entry = _log_entry(path, number, lines[number - 1])
        if entry.get("step") == step and "threshold" in entry:
            return float(entry["threshold"])
    return None


def restore_metrics_log(checkpoint: str | Path, folder: str | Path) -> None:
    """A resumed run in a fresh folder starts its log from the checkpoint's copy of the history."""
    saved, log = Path(checkpoint) / METRICS_LOG, Path(folder) / METRICS_LOG
    if saved.is_file() and not log.exists():
        shutil.copy2(saved, log)


def write_accounting(folder: str | Path, layers: Mapping[str, Any]) -> None:
    """Write the per-layer table of an evaluation (it replaces the previous one)."""
    (Path(folder) / ACCOUNTING_FILE).write_text(json.dumps(layers, indent=2))


def read_accounting(folder: str | Path) -> dict[str, Any]:
    """The per-layer table of a trial's last evaluation; empty if none was written."""
    path = Path(folder) / ACCOUNTING_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def write_block_masks(folder: str | Path, masks: Mapping[str, Any]) -> None:
    """Write block masks (layer name to mask tensor or array) as booleans: kept where the mask is positive."""
    kept = {name: np.asarray(_to_numpy(mask)) > 0 for name, mask in masks.items()}
    np.savez_compressed(Path(folder) / BLOCK_MASKS_FILE, **kept)


def _to_numpy(mask: Any) -> Any:
    return mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask


def read_block_masks(folder: str | Path) -> dict[str, np.ndarray]:
    """Block masks (layer name to kept-block array) of a trial's last evaluation; empty if none."""
    path = Path(folder) / BLOCK_MASKS_FILE
    if not path.is_file():
        return {}
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def write_feature_cache_record(folder: str | Path, record: Mapping[str, Any]) -> None:
    """Write which feature-cache entries the trial used (``location``, and per split ``entry``, ``built``, ``rows``)."""
    (Path(folder) / FEATURE_CACHE_RECORD).write_text(json.dumps(record, indent=1) + "\n")


def read_feature_cache_record(folder: str | Path) -> dict[str, Any] | None:
    """The feature-cache record of a trial folder; None for a trial without a feature cache."""
    path = Path(folder) / FEATURE_CACHE_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def write_trial_config(folder: str | Path, config: Mapping[str, Any]) -> None:
    """Write a checkpoint's trial configuration (keys sorted, so equal configs give equal files)."""
    (Path(folder) / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))


def read_trial_config(folder: str | Path) -> dict[str, Any]:
    """The trial configuration stored in a checkpoint folder, not yet validated; unreadable is one line."""
    source = Path(folder) / CONFIG_FILE
    try:
        values = json.loads(source.read_text())
    except (OSError, ValueError) as err:
        raise SpaTuneError(f"{source}: unreadable trial config ({err})") from None
    if not isinstance(values, dict):
        raise SpaTuneError(f"{source}: unreadable trial config (not a JSON object)")
    return values
