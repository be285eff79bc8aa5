"""``run_trial``: train one prune-and-adapt configuration and report after every evaluation.

The function is free of Ray: a caller passes ``report(metrics, checkpoint_dir)``; the Ray Tune
trainable wraps exactly this. Resuming from a checkpoint continues the run as if never stopped.
The loop's fixed parts are a ``TrainingRun``, what changes from step to step a ``LoopState``;
``train_step``, ``evaluate_now`` and ``checkpoint_now`` are its three actions. The files it
writes are defined in ``spa_tune.trial.records``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..config import TrialConfig, validate_trial_config
from ..data.features import LABEL_COLUMNS, MODEL_COLUMNS
from ..errors import TrainingDiverged
from ..model.counting import count_weights, encoder_weight_count
from ..pruning.control import all_mask_scores, eval_block_masks, set_masks
from ..pruning.regularization import regularization
from ..pruning.target import PruningSchedule, masked_weight_count, pruning_schedule
from .checkpoint import base_fingerprint, check_resumable, load_checkpoint, prune_old_checkpoints, save_checkpoint
from .evaluate import evaluate
from .losses import combine_losses, distillation_loss
from .optim import build_optimizer
from .precision import backward_and_step
from .records import (
    LAYERS,
    METRICS_LOG,
    append_metrics,
    checkpoint_name,
    restore_metrics_log,
    write_accounting,
    write_block_masks,
)
from .setup import TrialSetup, build_trial

Report = Callable[[dict, str], None]
TRAIN_INPUTS = (*MODEL_COLUMNS, *LABEL_COLUMNS)


def trial_schedule(setup: TrialSetup) -> PruningSchedule:
    """The trial's pruning schedule; a ``target_remaining_pct`` is turned into its final kept fraction."""
    cfg = setup.cfg
    if cfg.masked and cfg.target_remaining_pct is not None:
        return pruning_schedule(cfg, setup.total_steps, encoder_weight_count(setup.model), masked_weight_count(setup.model))
    return pruning_schedule(cfg, setup.total_steps)


def epoch_order(num_features: int, seed: int, epoch: int) -> torch.Tensor:
    """Shuffled feature order of an epoch; depends only on seed and epoch, so resuming can replay it."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    return torch.randperm(num_features, generator=generator)


def training_loss(setup: TrialSetup, batch: dict, regularization_weight: float) -> torch.Tensor:
    """QA loss of one batch, with distillation and the regularization (at this weight) where configured.

    Forward passes run at the trial's precision; the losses are computed in fp32.
    """
    cfg = setup.cfg
    with setup.precision.autocast():
        out = setup.model(**batch)
    distil = None
    if setup.teacher is not None:
        with torch.no_grad(), setup.precision.autocast():
            inputs = {k: v for k, v in batch.items() if k not in ("start_positions", "end_positions")}
            teacher_out = setup.teacher(**inputs)
        distil = distillation_loss(
            out.start_logits.float(), out.end_logits.float(),
            teacher_out.start_logits.float(), teacher_out.end_logits.float(), cfg.temperature,
        )
    reg, lam = None, 0.0
    if cfg.masked and cfg.regularization:
        reg = regularization(all_mask_scores(setup.model), cfg.regularization)
        lam = regularization_weight
    return combine_losses(out.loss.float(), distil, cfg.alpha_ce, cfg.alpha_distil, reg, lam)


def check_finite(loss: torch.Tensor, step: int) -> None:
    """Stop a trial whose loss is NaN or infinite, before the update spoils its weights."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"loss is {value} at step {step}: training diverged (try a lower learning_rate or final_lambda)"
        )


def evaluation_metrics(setup: TrialSetup, step: int, threshold: float, loss: float) -> dict[str, Any]:
    """EM/F1 and weight accounting at ``step``, with the schedule value (threshold or kept fraction) the masks use."""
    cfg = setup.cfg
    set_masks(setup.model, cfg, threshold)
    scores = evaluate(
        setup.model, setup.eval_examples, setup.eval_features, cfg, setup.device, cfg.output_dir, setup.precision.autocast
    )
    counts = count_weights(setup.model, cfg.method).as_metrics()
    target = {} if cfg.target_remaining_pct is None else {"target_remaining_pct": cfg.target_remaining_pct}
    return {
        "step": step,
        "epoch": step / setup.steps_per_epoch,
        "loss": loss,
        "threshold": threshold,
        "total_steps": setup.total_steps,
        **scores,
        **counts,
        **target,
        "output_dir": str(Path(cfg.output_dir).resolve()),
    }


@dataclass
class TrainingRun:
    """The fixed parts of one run: the built trial, its schedule, optimiser and scheduler, where checkpoints go."""

    setup: TrialSetup
    schedule: PruningSchedule
    optimizer: torch.optim.Optimizer
    scheduler: Any
    checkpoints: Path
    fingerprint: str  # of the frozen base, which never changes: computed once per run
    trainable: list[torch.nn.Parameter]  # the parameters whose gradients are clipped and stepped
    started: float = field(default_factory=time.time)


@dataclass
class LoopState:
    """What the loop carries from step to step: updates done, loss since the last evaluation, last metrics."""

    step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)

    def mean_loss(self) -> float:
        """Mean training loss since the last evaluation (NaN if no update since)."""
        return self.loss_sum / self.loss_count if self.loss_count else float("nan")


def start_run(
    cfg: TrialConfig, checkpoint_root: str | Path | None, resume_from: str | Path | None
) -> tuple[TrainingRun, LoopState]:
    """Build the trial, its schedule and optimiser; resumed from ``resume_from`` where given."""
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    setup = build_trial(cfg)
    optimizer, scheduler = build_optimizer(setup.model, cfg, setup.total_steps)
    state = LoopState()
    if resume_from is not None:
        restored = load_checkpoint(resume_from, setup.model, optimizer, scheduler)
        setup.precision.load_state_dict(restored["scaler"])
        state.step = restored["step"]
        restore_metrics_log(resume_from, output_dir)
    run = TrainingRun(
        setup, trial_schedule(setup), optimizer, scheduler,
        checkpoints=Path(checkpoint_root) if checkpoint_root is not None else output_dir,
        fingerprint=base_fingerprint(setup.model),
        trainable=[p for p in setup.model.parameters() if p.requires_grad],
    )
    return run, state


def epoch_batches(run: TrainingRun, step: int) -> Iterator[list[int]]:
    """Feature indices of the batches left in the epoch that ``step`` falls in."""
    epoch, offset = divmod(step, run.setup.steps_per_epoch)
    batch_size = run.setup.cfg.per_gpu_train_batch_size
    order = epoch_order(len(run.setup.train_features), run.setup.cfg.seed, epoch)
    for begin in range(offset * batch_size, len(order), batch_size):
        yield order[begin : begin + batch_size].tolist()


def train_step(run: TrainingRun, state: LoopState, indices: list[int]) -> tuple[float, float]:
    """One update on the features at ``indices``; returns its loss and the schedule value its masks used."""
    setup = run.setup
    batch = {k: v.to(setup.device) for k, v in setup.train_features[indices].items()}
    # update number step + 1 uses the schedule's value at step + 1, so an evaluation after
    # ``step`` updates sees the masks of the last update
    threshold = run.schedule.at(state.step + 1)
    set_masks(setup.model, setup.cfg, threshold)
    loss = training_loss(setup, batch, run.schedule.regularization_weight(threshold))
    check_finite(loss, state.step + 1)
    backward_and_step(setup.precision, loss, run.optimizer, run.trainable, setup.cfg.max_grad_norm)
    run.scheduler.step()
    value = loss.item()
    state.step += 1
    state.loss_sum, state.loss_count = state.loss_sum + value, state.loss_count + 1
    return value, threshold


def evaluation_due(cfg: TrialConfig, step: int, total_steps: int) -> bool:
    """Whether to evaluate after ``step`` updates: every ``eval_every`` (the last step is evaluated after the loop)."""
    return bool(cfg.eval_every) and step % cfg.eval_every == 0 and step < total_steps


def evaluate_now(run: TrainingRun, state: LoopState) -> dict[str, Any]:
    """Evaluate after ``state.step`` updates, write the trial's records, start a new loss average."""
    setup = run.setup
    metrics = evaluation_metrics(setup, state.step, run.schedule.at(state.step), state.mean_loss())
    metrics["time_total_s"] = time.time() - run.started
    output_dir = Path(setup.cfg.output_dir)
    append_metrics(output_dir, metrics)
    write_accounting(output_dir, metrics[LAYERS])
    write_block_masks(output_dir, eval_block_masks(setup.model))
    state.metrics, state.loss_sum, state.loss_count = metrics, 0.0, 0
    return metrics


def checkpoint_now(run: TrainingRun, state: LoopState) -> Path:
    """Write the checkpoint of ``state.step`` (with a copy of the metrics log); keep the newest ``keep_checkpoints``."""
    cfg, metrics = run.setup.cfg, state.metrics
    checkpoint = save_checkpoint(
        run.checkpoints / checkpoint_name(state.step), run.setup.model, run.optimizer, run.scheduler, state.step,
        cfg.model_dump(), extra={"threshold": metrics["threshold"], "em": metrics["em"], "f1": metrics["f1"]},
        files=(Path(cfg.output_dir) / METRICS_LOG,), scaler=run.setup.precision.state_dict(),
        fingerprint=run.fingerprint,
    )
    prune_old_checkpoints(run.checkpoints, cfg.keep_checkpoints)
    return checkpoint


def evaluate_and_report(run: TrainingRun, state: LoopState, report: Report | None, bar: tqdm) -> None:
    """Evaluate, checkpoint, show the scores on the progress bar and pass them to ``report``."""
    metrics = evaluate_now(run, state)
    checkpoint = checkpoint_now(run, state)
    bar.set_postfix(f1=f"{metrics['f1']:.1f}", remaining=f"{metrics['remaining_pct']:.1f}%")
    if report is not None:
        report(metrics, str(checkpoint))


def run_trial(
    config: dict | TrialConfig,
    report: Report | None = None,
    resume_from: str | Path | None = None,
    progress: bool = False,
    checkpoint_root: str | Path | None = None,
) -> dict[str, Any]:
    """Run one trial from a plain config dict; return the metrics of the final evaluation.

    ``report(metrics, checkpoint_dir)`` is called after every evaluation (every ``eval_every``
    steps and at the end). ``resume_from`` is a checkpoint folder written by an earlier call.
    Checkpoints go to ``checkpoint_root`` (default: ``output_dir``); the newest
    ``keep_checkpoints`` are kept there.
    """
    cfg = config if isinstance(config, TrialConfig) else validate_trial_config(dict(config))
    if resume_from is not None:
        check_resumable(resume_from, cfg.model_dump())
    run, state = start_run(cfg, checkpoint_root, resume_from)
    total = run.setup.total_steps
    bar = tqdm(total=total, initial=state.step, disable=not progress, file=sys.stderr, desc="train", unit="step")
    run.setup.model.train()
    while state.step < total:
        for indices in epoch_batches(run, state.step):
            if state.step >= total:
                break
            loss, threshold = train_step(run, state, indices)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", threshold=f"{threshold:.3f}")
            if evaluation_due(cfg, state.step, total):
                evaluate_and_report(run, state, report, bar)
    if not state.metrics or state.metrics["step"] != state.step:
        evaluate_and_report(run, state, report, bar)
    bar.close()
    return state.metrics
