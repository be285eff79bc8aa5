"""``run_trial``: train one prune-and-adapt configuration and report after every evaluation.

The function is free of Ray: a caller passes ``report(metrics, checkpoint_dir)``; the Ray Tune
trainable wraps exactly this. Resuming from a checkpoint continues the run as if never stopped.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import TrialConfig, validate_trial_config
from ..errors import TrainingDiverged
from ..data.features import LABEL_COLUMNS, MODEL_COLUMNS
from ..model.counting import count_weights, encoder_weight_count
from ..pruning.control import all_mask_scores, eval_block_masks, set_masks
from ..pruning.regularization import regularization
from ..pruning.target import PruningSchedule, masked_weight_count, pruning_schedule
from .checkpoint import base_fingerprint, check_resumable, load_checkpoint, prune_old_checkpoints, save_checkpoint
from .evaluate import evaluate
from .losses import combine_losses, distillation_loss
from .optim import build_optimizer
from .precision import backward_and_step
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


BLOCK_MASKS_FILE = "block_masks.npz"
METRICS_LOG = "metrics.jsonl"


def _write_log(output_dir: Path, metrics: dict, model: torch.nn.Module) -> None:
    flat = {k: v for k, v in metrics.items() if k != "layers"}
    with open(output_dir / METRICS_LOG, "a") as fh:
        fh.write(json.dumps(flat) + "\n")
    (output_dir / "accounting.json").write_text(json.dumps(metrics["layers"], indent=2))
    masks = {name: mask.cpu().numpy() > 0 for name, mask in eval_block_masks(model).items()}
    np.savez_compressed(output_dir / BLOCK_MASKS_FILE, **masks)


def restore_metrics_log(checkpoint: Path, output_dir: Path) -> None:
    """A resumed run in a fresh folder starts its log from the checkpoint's copy of the history."""
    saved, log = checkpoint / METRICS_LOG, output_dir / METRICS_LOG
    if saved.is_file() and not log.exists():
        shutil.copy2(saved, log)


def read_block_masks(output_dir: str | Path) -> dict[str, np.ndarray]:
    """Block masks (layer name to kept-block array) of a trial's last evaluation; empty if none."""
    path = Path(output_dir) / BLOCK_MASKS_FILE
    if not path.is_file():
        return {}
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


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
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = Path(checkpoint_root) if checkpoint_root is not None else output_dir
    setup = build_trial(cfg)
    model = setup.model
    schedule = trial_schedule(setup)
    optimizer, scheduler = build_optimizer(model, cfg, setup.total_steps)
    step = 0
    if resume_from is not None:
        restored = load_checkpoint(resume_from, model, optimizer, scheduler)
        setup.precision.load_state_dict(restored["scaler"])
        step = restored["step"]
        restore_metrics_log(Path(resume_from), output_dir)
    fingerprint = base_fingerprint(model)  # the frozen base never changes: computed once per run
    trainable = [p for p in model.parameters() if p.requires_grad]
    features = setup.train_features  # torch tensors of TRAIN_INPUTS (build_train_dataset)
    bar = tqdm(total=setup.total_steps, initial=step, disable=not progress, file=sys.stderr, desc="train", unit="step")
    metrics: dict[str, Any] = {}
    loss_sum, loss_count, started = 0.0, 0, time.time()

    def evaluate_and_report() -> None:
        nonlocal metrics, loss_sum, loss_count
        threshold = schedule.at(step)
        mean_loss = loss_sum / loss_count if loss_count else float("nan")
        metrics = evaluation_metrics(setup, step, threshold, mean_loss)
        metrics["time_total_s"] = time.time() - started
        _write_log(output_dir, metrics, model)
        checkpoint = save_checkpoint(
            checkpoints / f"checkpoint_{step:06d}", model, optimizer, scheduler, step, cfg.model_dump(),
            extra={"threshold": threshold, "em": metrics["em"], "f1": metrics["f1"]}, files=(output_dir / METRICS_LOG,),
            scaler=setup.precision.state_dict(), fingerprint=fingerprint,
        )
        prune_old_checkpoints(checkpoints, cfg.keep_checkpoints)
        bar.set_postfix(f1=f"{metrics['f1']:.1f}", remaining=f"{metrics['remaining_pct']:.1f}%")
        loss_sum, loss_count = 0.0, 0
        if report is not None:
            report(metrics, str(checkpoint))

    model.train()
    while step < setup.total_steps:
        epoch, offset = divmod(step, setup.steps_per_epoch)
        order = epoch_order(len(features), cfg.seed, epoch)
        for begin in range(offset * cfg.per_gpu_train_batch_size, len(order), cfg.per_gpu_train_batch_size):
            if step >= setup.total_steps:
                break
            indices = order[begin : begin + cfg.per_gpu_train_batch_size].tolist()
            batch = {k: v.to(setup.device) for k, v in features[indices].items()}
            # update number step + 1 uses the schedule's value at step + 1, so an evaluation after
            # ``step`` updates sees the masks of the last update
            threshold = schedule.at(step + 1)
            set_masks(model, cfg, threshold)
            loss = training_loss(setup, batch, schedule.regularization_weight(threshold))
            check_finite(loss, step + 1)
            backward_and_step(setup.precision, loss, optimizer, trainable, cfg.max_grad_norm)
            scheduler.step()
            step += 1
            loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", threshold=f"{threshold:.3f}")
            if cfg.eval_every and step % cfg.eval_every == 0 and step < setup.total_steps:
                evaluate_and_report()
    if not metrics or metrics["step"] != step:
        evaluate_and_report()
    bar.close()
    return metrics
