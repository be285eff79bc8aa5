"""Build what a trial needs from its config: device, seeds, tokenizer, data, model and teacher."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrialConfig
from ..data.generate import write_generated_squad
from ..errors import SpaTuneError
from ..model.inject import prepare_model
from ..model.loading import load_tokenizer
from .data import trial_data
from .precision import Precision, build_precision, precision_problem, resolve_precision
from .records import GENERATED_DATA
from .teacher import load_teacher, load_trained_qa_model, tokenizer_name

log = logging.getLogger(__name__)

GENERATED_DATASET = "generated"


@dataclass
class TrialSetup:
    """Everything the training loop works on."""

    cfg: TrialConfig
    device: torch.device
    precision: Precision
    tokenizer: Any
    model: torch.nn.Module
    teacher: torch.nn.Module | None
    train_features: Any
    eval_examples: Any
    eval_features: Any
    steps_per_epoch: int
    total_steps: int


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(requested: str) -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else CPU; ``cuda`` without a GPU falls back with a warning."""
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "cuda":
        log.warning("device: cuda requested but torch sees no GPU; running on CPU")
    return torch.device("cpu")


def trial_precision(cfg: TrialConfig, device: torch.device) -> Precision:
    """The trial's precision on ``device`` (``auto`` resolved); fp16 on a CPU is one line naming the key."""
    name = resolve_precision(cfg.precision, device.type)
    problem = precision_problem(name, device.type, torch.cuda.is_available())
    if problem is not None:
        raise SpaTuneError(f"precision: {problem}")
    return build_precision(name, device)


def hardware_label(device: str) -> str:
    """What a trial runs on, for results tables: the GPU's name, or the CPU's model and torch threads."""
    if device == "cuda" and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    model = ""
    try:
        model = next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")),
            "",
        )
    except OSError:  # not Linux
        pass
    import platform

    threads = torch.get_num_threads()
    return f"CPU {model or platform.processor() or platform.machine()}, {threads} thread{'s' if threads != 1 else ''}"


def data_files(cfg: TrialConfig) -> tuple[str | None, str | None]:
    """Train and eval files; ``dataset: generated`` writes the generated set under ``output_dir``."""
    if cfg.dataset != GENERATED_DATASET or (cfg.train_file and cfg.eval_file):
        return cfg.train_file, cfg.eval_file
    train, dev = write_generated_squad(
        Path(cfg.output_dir) / GENERATED_DATA,
        cfg.generated_train_questions,
        cfg.generated_eval_questions,
        seed=0,
    )
    return cfg.train_file or str(train), cfg.eval_file or str(dev)


def total_steps_of(cfg: TrialConfig, steps_per_epoch: int) -> int:
    """``max_steps`` if set, else ``num_train_epochs`` worth of batches (at least one step)."""
    if cfg.max_steps:
        return cfg.max_steps
    return max(1, math.ceil(steps_per_epoch * cfg.num_train_epochs))


def check_sequence_length(cfg: TrialConfig, model: torch.nn.Module) -> None:
    """``max_seq_length`` must fit the model's position embeddings."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and cfg.max_seq_length > limit:
        raise SpaTuneError(f"max_seq_length: {cfg.max_seq_length} exceeds the {limit} positions of model {cfg.model!r}")


def quiet_library_progress_bars() -> None:
    """The trial shows one progress bar of its own; silence those of datasets and transformers."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def build_trial(cfg: TrialConfig) -> TrialSetup:
    """Load tokenizer, data and model for ``cfg``, inject the method's layers, move to the device."""
    quiet_library_progress_bars()
    device = resolve_device(cfg.device)
    precision = trial_precision(cfg, device)
    seed_everything(cfg.seed)
    tokenizer = load_tokenizer(tokenizer_name(cfg.model, cfg.tokenizer))  # a trial as model: its base model's
    model = prepare_model(load_trained_qa_model(cfg.model), cfg).to(device)
    check_sequence_length(cfg, model)
    train_file, eval_file = data_files(cfg)
    data = trial_data(cfg, tokenizer, train_file, eval_file)  # through the feature cache when one is set
    train_features, eval_examples, eval_features = data.train_features, data.eval_examples, data.eval_features
    teacher = None
    if cfg.distillation:
        teacher = load_teacher(cfg.teacher_name_or_path, device)  # shared, eval mode, no gradients
    steps_per_epoch = math.ceil(len(train_features) / cfg.per_gpu_train_batch_size)
    return TrialSetup(
        cfg=cfg,
        device=device,
        precision=precision,
        tokenizer=tokenizer,
        model=model,
        teacher=teacher,
        train_features=train_features,
        eval_examples=eval_examples,
        eval_features=eval_features,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps_of(cfg, steps_per_epoch),
    )
