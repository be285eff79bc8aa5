"""The Ray Tune trainable: one sampled configuration, trained by ``run_trial``, reported to Tune.

It only trains and reports: the experiment's fixed trial keys plus the sampled ones make the
trial config; the trial writes into its Ray working folder (synced to the experiment folder),
logs to its own MLflow child run, and hands each evaluation's checkpoint to Tune. A restarted
trial continues from Tune's latest checkpoint and its own MLflow run. A trial whose loss diverged
is final: it reports the reason and ends instead of raising, so Tune does not retry it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ray import tune

from ..config import TrialConfig
from ..errors import TrainingDiverged
from ..search.diverged import divergence_result
from ..spec.space import METRICS
from ..strata import stratum_label, stratum_of
from ..tracking.buffered import BufferedLogger, use_short_http_retries
from ..tracking.mlflow_runs import ExperimentRuns, TrialRun
from ..trial.precision import resolve_precision
from ..trial.records import read_block_masks
from ..trial.runner import run_trial
from ..trial.setup import hardware_label
from ..trial_values import SHEET_ROW, trial_config, trial_values

log = logging.getLogger("spa_tune.trial")
# Metrics Tune sees: scalars only (the per-layer table goes to MLflow and the trial folder).
NOT_FOR_TUNE = ("layers", "predictions_file", "output_dir")
FIRST_COLUMNS = ("f1", "remaining_pct", "learned_pct", "epoch")
# How long a finished trial waits for evaluations still queued for MLflow (the server may be away).
MLFLOW_DRAIN_SECONDS = 120.0


@dataclass(frozen=True)
class TrialContext:
    """What every trial of an experiment shares; picklable, travels to the worker node."""

    fixed: dict[str, Any]
    runs: ExperimentRuns
    cpus: float
    gpus: float
    stratum_keys: tuple[str, ...] = ()
    # Sheet rows run as trials: row number -> trial values, and -> origin tags.
    sheet_rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    sheet_origins: dict[int, dict[str, str]] = field(default_factory=dict)

    def trial_values(self, config: dict[str, Any]) -> dict[str, Any]:
        """A trial's explicit values: the fixed keys (or its sheet row's), then the sampled ones."""
        return trial_values(self.fixed, config, self.sheet_rows)

    def trial_config(self, config: dict[str, Any], **overrides: Any) -> TrialConfig:
        """A trial's validated ``TrialConfig``: its values with ``overrides`` on top."""
        return trial_config(self.fixed, config, self.sheet_rows, **overrides)


def trial_device(requested: str, gpus: float) -> str:
    """``cuda`` when Ray gave the trial a GPU and torch sees one; otherwise ``cpu``, with a warning."""
    if requested == "cpu":
        return "cpu"
    if gpus > 0 and torch.cuda.is_available():
        print(f"spa-tune: trial uses CUDA device {torch.cuda.get_device_name(0)} (Ray GPU ids {_ray_gpu_ids()})", flush=True)
        return "cuda"
    if gpus > 0:
        log.warning("Ray gave this trial GPU %s but torch sees no CUDA device; running on CPU", _ray_gpu_ids())
    else:
        log.warning("no GPU requested for this trial (resources.gpu: 0); running on CPU")
    return "cpu"


def _ray_gpu_ids() -> list:
    import ray

    return list(ray.get_gpu_ids()) if ray.is_initialized() else []  # never start Ray just to ask


def ray_node_id() -> str:
    """Id of the Ray node this trial runs on (several nodes may share one host and address)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""


def tune_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar metrics reported to Tune (schedulers and searchers read these).

    The first four are the columns of Ray's trial table, so they come first.
    """
    first = {k: metrics[k] for k in FIRST_COLUMNS if k in metrics}
    return {**first, **{k: v for k, v in metrics.items() if k not in NOT_FOR_TUNE and k not in first}}


def trial_tags(cfg: TrialConfig, trial_id: str, stratum: str) -> dict[str, str]:
    """Tags of a trial's MLflow run."""
    tags = {"method": cfg.method, "trial_id": trial_id, "density": stratum}
    if cfg.masked:
        tags["pruning_method"] = cfg.pruning_method
    return tags


def trial_run_name(cfg: TrialConfig, trial_id: str, density: str) -> str:
    """Name of a trial's run in the MLflow UI, e.g. ``splopa topK target=50% #1``.

    Method, pruning method, density (the stratum label without the method it starts with) and the
    trial's number (the end of its Ray trial id).
    """
    number = trial_id.rsplit("_", 1)[-1]
    density = density.removeprefix(cfg.method).strip() if density.startswith(f"{cfg.method} ") else density
    parts = [cfg.method, *([cfg.pruning_method] if cfg.masked else []), *([density] if density != cfg.method else [])]
    return f"{' '.join(parts)} #{int(number) if number.isdigit() else number}"


def evaluation_record(metrics: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """What MLflow gets for one evaluation: its metrics, time and mask picture, taken now."""
    record = {"metrics": metrics, "timestamp_ms": int(time.time() * 1000), "masks": None}
    masks = read_block_masks(output_dir)
    if masks:
        from ..report.figures import mask_image

        record["masks"] = mask_image(masks, f"kept blocks at step {metrics['step']}")
    return record


def log_evaluation(run: TrialRun, record: dict[str, Any]) -> None:
    """Step metrics, then the per-layer table and the mask picture of one evaluation record."""
    metrics = record["metrics"]
    if not run.log_evaluation(metrics, record["timestamp_ms"]):
        return
    if metrics.get("layers"):
        run.log_layer_table(metrics["layers"])
    if record["masks"] is not None:
        run.log_image(record["masks"], "masks.png")


def run_tuned_trial(context: TrialContext, config: dict[str, Any]) -> None:
    """Train one sampled configuration under Ray Tune."""
    tune_context = tune.get_context()
    trial_id = tune_context.get_trial_id()
    use_short_http_retries()  # the trial's MLflow queue resends by itself
    values = context.trial_values(config)
    asked = context.trial_config(config)
    device = trial_device(asked.device, context.gpus)
    # as run: the device and precision logged are the ones used
    cfg = context.trial_config(config, output_dir=os.getcwd(), device=device,
                               precision=resolve_precision(asked.precision, device))
    torch.set_num_threads(max(1, int(context.cpus)))
    stratum = stratum_label(stratum_of(values, list(context.stratum_keys) or None))
    tags = {**trial_tags(cfg, trial_id, stratum), **context.sheet_origins.get(config.get(SHEET_ROW), {})}
    tags["hardware"] = hardware_label(cfg.device)
    params = {**cfg.model_dump(), "density": stratum}  # logged once: a restarted trial keeps its params
    run = TrialRun.open(context.runs, trial_id, trial_run_name(cfg, trial_id, stratum), params, tags)
    node_id = ray_node_id()
    run.set_tag("ray_node_id", node_id)  # where this (re)start of the trial runs
    staging = Path(tempfile.mkdtemp(prefix=f"spa-tune-{trial_id}-"))
    # MLflow is written from a background thread: an unreachable server never holds training up
    tracking = BufferedLogger(lambda record: log_evaluation(run, record), Path(cfg.output_dir))

    last: dict[str, Any] = {}  # what this attempt last reported to Tune

    def report(metrics: dict[str, Any], checkpoint_dir: str) -> None:
        tracking.submit(evaluation_record(metrics, Path(cfg.output_dir)))
        try:
            reported = {**tune_metrics(metrics), "node_id": node_id}
            last.clear()
            last.update(reported)
            tune.report(reported, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))
        finally:  # Tune has copied the checkpoint into the experiment folder (or is stopping us)
            shutil.rmtree(checkpoint_dir, ignore_errors=True)

    diverged = None
    try:
        checkpoint = tune.get_checkpoint()
        with checkpoint.as_directory() if checkpoint else contextlib.nullcontext(None) as resume_from:
            run_trial(cfg, report=report, resume_from=resume_from, checkpoint_root=staging)
    except TrainingDiverged as err:
        diverged = str(err)
    finally:
        tracking.close(timeout=MLFLOW_DRAIN_SECONDS)
        shutil.rmtree(staging, ignore_errors=True)
    if diverged is not None:  # final: reported, not raised, so Tune does not retry it (search/diverged.py)
        log.warning("trial %s: %s; it ends as failed and is not retried", trial_id, diverged)
        tune.report(divergence_result(diverged, {**last, "node_id": node_id}, METRICS))


def make_trainable(context: TrialContext) -> Callable[[dict[str, Any]], None]:
    """A Tune function trainable bound to the experiment's shared context."""

    def spa_tune_trial(config: dict[str, Any]) -> None:
        run_tuned_trial(context, config)

    return spa_tune_trial
