"""Mixed precision: bf16 on a CPU learns and resumes exactly, masks and scores stay sound under autocast,
the fp16 gradient scaler's state travels with a checkpoint, and fp16 without a GPU is refused."""

import subprocess
import sys

import pytest
import torch

from spa_tune.config import validate_trial_config
from spa_tune.pruning.control import all_mask_scores, eval_block_masks, set_masks
from spa_tune.trial import run_trial
from spa_tune.trial.checkpoint import load_checkpoint, save_checkpoint
from spa_tune.trial.optim import build_optimizer
from spa_tune.trial.precision import (
    backward_and_step,
    build_precision,
    precision_problem,
    resolve_precision,
)
from spa_tune.trial.runner import training_loss
from spa_tune.trial.setup import build_trial

from .test_trial import FAST


def test_auto_precision_is_fp32_on_a_cpu_and_bf16_on_a_gpu_that_has_it():
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", "cuda", bf16_gpu=True) == "bf16"
    assert resolve_precision("auto", "cuda", bf16_gpu=False) == "fp32"
    assert resolve_precision("fp16", "cuda") == "fp16" and resolve_precision("bf16", "cpu") == "bf16"


def test_fp16_needs_a_gpu():
    assert "fp16 needs a CUDA GPU" in precision_problem("fp16", "cpu", cuda_available=True)
    assert "fp16 needs a CUDA GPU" in precision_problem("fp16", "auto", cuda_available=False)
    assert precision_problem("fp16", "cuda", cuda_available=True) is None
    assert precision_problem("bf16", "cpu", cuda_available=False) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_spa_tune_train_refuses_fp16_on_a_cpu_in_one_line(tmp_path):
    out = tmp_path / "trial"
    done = subprocess.run(
        [sys.executable, "-m", "spa_tune.cli", "train", "--set", "precision=fp16", "--set", f"output_dir={out}",
         "--set", "dataset=generated"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "spa-tune: error: --set: precision: fp16 needs a CUDA GPU (its gradient scaler guards GPU half-precision "
        "arithmetic); use bf16 or fp32 on a CPU"
    ]
    assert not out.exists()


def bf16_config(tiny_model_dir, tmp_path, **extra):
    base = dict(
        FAST, generated_train_questions=200, generated_eval_questions=40, model=tiny_model_dir, method="splopa",
        pruning_method="threshold", mask_init="constant", final_threshold=0.1, num_splopa_prototypes=4,
        splopa_prototype_rank=2, max_steps=9, eval_every=3, keep_checkpoints=5, per_gpu_train_batch_size=8,
        learning_rate=1e-3, precision="bf16", output_dir=str(tmp_path / "full"),
    )
    return {**base, **extra}


def test_a_resumed_bf16_trial_equals_an_uninterrupted_one(tiny_model_dir, tmp_path):
    config = bf16_config(tiny_model_dir, tmp_path, regularization="l1", final_lambda=1.0)
    full = []
    run_trial(config, report=lambda m, c: full.append((m, c)))
    resumed = []
    run_trial(dict(config, output_dir=str(tmp_path / "resumed")), report=lambda m, c: resumed.append(m),
              resume_from=full[0][1])
    assert [m["step"] for m in resumed] == [6, 9]
    for (expected, _), got in zip(full[1:], resumed):
        assert (got["loss"], got["em"], got["f1"], got["remaining_pct"]) == (
            expected["loss"], expected["em"], expected["f1"], expected["remaining_pct"])
    # and bf16 is not fp32 in disguise: the same trial in fp32 has another loss
    fp32 = run_trial(dict(config, precision="fp32", max_steps=3, output_dir=str(tmp_path / "fp32")))
    assert fp32["loss"] != full[0][0]["loss"]


def test_a_short_bf16_run_learns(tiny_model_dir, tmp_path):
    config = dict(
        FAST, model=tiny_model_dir, method="fine-pruning", pruning_method="topK", final_threshold=0.5,
        warmup_steps=10, num_train_epochs=6, learning_rate=2e-3, eval_every=25, precision="bf16",
        output_dir=str(tmp_path / "trial"),
    )
    reports = []
    final = run_trial(config, report=lambda m, c: reports.append(m))
    losses = [m["loss"] for m in reports]
    print("bf16 losses", losses, "F1", final["f1"])
    assert losses[-1] < 0.6 * losses[0] and final["f1"] > 20, (losses, final["f1"])


@pytest.mark.parametrize("method,pruning", [
    ("fine-pruning", "topK"), ("fine-pruning", "sigmoied_threshold"), ("fine-pruning", "l0"),
    ("splopa", "threshold"), ("splopa", "topK"), ("splopa", "l0"),
])
def test_mask_scores_learn_under_bf16_autocast(tiny_model_dir, tmp_path, method, pruning):
    """The straight-through and sigmoid/L0 paths give fp32, finite, non-zero score gradients and the same
    masks as in fp32."""
    regularization = "l0" if pruning == "l0" else "l1"
    cfg = validate_trial_config(bf16_config(
        tiny_model_dir, tmp_path, method=method, pruning_method=pruning, regularization=regularization,
        final_lambda=1.0, final_threshold=0.5, mask_init="uniform", mask_scale=0.5,
    ))
    setup = build_trial(cfg)
    threshold = 0.5
    set_masks(setup.model, cfg, threshold)
    batch = setup.train_features[list(range(8))]
    fp32_masks = {k: v.clone() for k, v in eval_block_masks(setup.model).items()}
    loss = training_loss(setup, batch, 1.0)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    for scores in all_mask_scores(setup.model):
        assert scores.grad is not None and scores.grad.dtype == torch.float32
        assert torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0
    with setup.precision.autocast():
        bf16_masks = eval_block_masks(setup.model)
    assert fp32_masks.keys() == bf16_masks.keys()
    for name, mask in fp32_masks.items():
        assert torch.equal(mask, bf16_masks[name]), name


def test_the_fp16_gradient_scaler_state_travels_with_a_checkpoint(tiny_model_dir, tmp_path):
    """fp16 is refused on a CPU for trials; its scaler logic is the same on any device, so it is checked here
    step by step with torch's CPU gradient scaler."""
    cfg = validate_trial_config(bf16_config(tiny_model_dir, tmp_path, precision="fp32"))
    batches = [None] * 4

    def train(setup, optimizer, scheduler, precision, steps):
        params = [p for p in setup.model.parameters() if p.requires_grad]
        for step in steps:
            with precision.autocast():
                out = setup.model(**batches[step])
            backward_and_step(precision, out.loss.float(), optimizer, params, 1.0)
            scheduler.step()

    def fresh():
        setup = build_trial(cfg)
        set_masks(setup.model, cfg, 1.0)
        optimizer, scheduler = build_optimizer(setup.model, cfg, 4)
        return setup, optimizer, scheduler, build_precision("fp16", torch.device("cpu"))

    setup, optimizer, scheduler, precision = fresh()
    for i in range(4):
        batches[i] = setup.train_features[list(range(8 * i, 8 * i + 8))]
    precision.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1)
    train(setup, optimizer, scheduler, precision, [0, 1])
    checkpoint = save_checkpoint(tmp_path / "ckpt", setup.model, optimizer, scheduler, 2, cfg.model_dump(),
                                 scaler=precision.state_dict())
    state_at_2 = precision.state_dict()
    train(setup, optimizer, scheduler, precision, [2, 3])
    expected = {k: v.clone() for k, v in setup.model.state_dict().items()}

    again, optimizer, scheduler, precision = fresh()
    precision.scaler = torch.amp.GradScaler("cpu")
    restored = load_checkpoint(checkpoint, again.model, optimizer, scheduler)
    precision.load_state_dict(restored["scaler"])
    assert precision.state_dict() == state_at_2 and state_at_2["scale"] == 2.0**12  # grew once per step
    train(again, optimizer, scheduler, precision, [2, 3])
    for key, value in again.model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_a_base_model_saved_in_half_precision_trains_fp32_weights(tmp_path):
    from spa_tune.model.loading import load_qa_model

    from ..conftest import tiny_bert

    tiny_bert().to(torch.bfloat16).save_pretrained(tmp_path / "half")
    model = load_qa_model(str(tmp_path / "half"))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
