"""The GPU check's measurements: the environment, one timed ``spa-tune train`` run, the side-by-side table.

``bench/gpu_check.sh`` calls this three ways:

* ``env MODEL_DIR``: versions of the packages the trial imports, the GPU, and the dtype the trial's
  model folder loads in (spa-tune trains fp32 weights; the packed MiniLM stores fp16 ones).
* ``trial --label L --results FILE -- ARGS``: ``spa-tune train ARGS`` in this process, so that the
  step times and torch's CUDA memory counters can be read; one JSON line is appended to FILE.
* ``summary FILE``: the runs of FILE side by side, and bf16's ratios to fp32.

Step time is the wall time from the start of one training step to the start of the next (the last
step ends where the evaluation starts), so evaluation, set-up and tokenisation are left out; the
first steps (CUDA and allocator warm-up) are dropped, and the median and mean of the rest are shown.
The trial calls ``loss.item()`` every step, so each step's GPU work has finished when the next starts.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "huggingface_hub", "datasets", "pyarrow",
            "fsspec", "pydantic", "pydantic_core", "typing_extensions", "numpy", "pyyaml", "tqdm")
MIB = 2**20


def package_versions() -> dict[str, str]:
    """Installed version of each package the trial needs ('missing' where absent)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def device_description() -> str:
    """The CUDA device torch sees (name, capability, memory, bf16), or that there is none."""
    import torch

    if not torch.cuda.is_available():
        return f"no CUDA device (torch {torch.__version__}); CPU threads: {torch.get_num_threads()}"
    props = torch.cuda.get_device_properties(0)
    return (f"{props.name}, compute capability {props.major}.{props.minor}, {props.total_memory / MIB:,.0f} MiB, "
            f"bf16: {torch.cuda.is_bf16_supported(including_emulation=False)}, CUDA {torch.version.cuda}")


def loaded_dtype(model_dir: str) -> str:
    """The dtype of the weights spa-tune's model loader gives for ``model_dir``."""
    from transformers.utils import logging as hf_logging

    from spa_tune.model.loading import load_qa_model

    hf_logging.disable_progress_bar()
    return str(next(load_qa_model(model_dir).parameters()).dtype)


def cmd_env(args: argparse.Namespace) -> int:
    """Print the environment of the check; exit 1 if a package is missing or the weights are not fp32."""
    versions = package_versions()
    print(f"python {platform.python_version()}; " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"device: {device_description()}")
    missing = [name for name, version in versions.items() if version == "missing"]
    if missing:
        print(f"gpu_check: missing packages: {', '.join(missing)}", file=sys.stderr)
        return 1
    dtype = loaded_dtype(args.model_dir)
    print(f"model {args.model_dir}: weights load as {dtype}")
    if dtype != "torch.float32":
        print(f"gpu_check: {args.model_dir} loads as {dtype}, not torch.float32: the fp32 figures would be wrong",
              file=sys.stderr)
        return 1
    return 0


@dataclass
class Timings:
    """What the instrumented training loop recorded."""

    step_starts: list[float] = field(default_factory=list)
    eval_starts: list[float] = field(default_factory=list)
    eval_s: float = 0.0
    train_peak_bytes: int | None = None


def gpu_peak_bytes() -> int | None:
    """``torch.cuda.max_memory_allocated()`` since the last reset, or None without CUDA."""
    import torch

    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None


def instrument(timings: Timings) -> None:
    """Record when each training step and each evaluation of ``spa_tune.trial.runner`` starts.

    The runner's own functions still do all the work; they are wrapped, by name, in its module.
    """
    from spa_tune.trial import runner

    for name in ("training_loss", "evaluation_metrics"):
        if not callable(getattr(runner, name, None)):
            raise SystemExit(f"gpu_check: spa_tune.trial.runner has no {name}(); update bench/gpu_check.py")
    training_loss, evaluation_metrics = runner.training_loss, runner.evaluation_metrics

    def timed_training_loss(*args, **kwargs):
        timings.step_starts.append(time.perf_counter())
        return training_loss(*args, **kwargs)

    def timed_evaluation_metrics(*args, **kwargs):
        started = time.perf_counter()
        timings.eval_starts.append(started)
        if timings.train_peak_bytes is None:
            timings.train_peak_bytes = gpu_peak_bytes()
        try:
            return evaluation_metrics(*args, **kwargs)
        finally:
            timings.eval_s += time.perf_counter() - started

    runner.training_loss = timed_training_loss
    runner.evaluation_metrics = timed_evaluation_metrics


def step_durations(step_starts: list[float], eval_starts: list[float]) -> list[float]:
    """Seconds of each training step: to the next step's start, or to the evaluation that follows it."""
    durations = []
    for i, start in enumerate(step_starts):
        following = [t for t in (*step_starts[i + 1 : i + 2], *eval_starts) if t > start]
        if following:
            durations.append(min(following) - start)
    return durations


def step_statistics(durations: list[float], warmup: int) -> dict[str, float | int]:
    """Median and mean step time (ms) and steps per second, leaving out the first ``warmup`` steps."""
    kept = durations[warmup:] if len(durations) > warmup else durations
    if not kept:
        return {"steps_timed": 0}
    mean = statistics.fmean(kept)
    return {
        "steps_timed": len(kept),
        "step_ms_median": 1000 * statistics.median(kept),
        "step_ms_mean": 1000 * mean,
        "steps_per_s": 1 / mean,
        "first_step_ms": 1000 * durations[0],
    }


def run_train(train_args: list[str]) -> tuple[int, dict | None]:
    """``spa-tune train --quiet ARGS`` in this process: its exit code and the metrics it printed."""
    from spa_tune.cli import main

    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = main(["train", "--quiet", *train_args])
    lines = captured.getvalue().strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 and lines else None)


def cmd_trial(args: argparse.Namespace) -> int:
    """One timed trial; its figures are printed and appended to ``--results`` as a JSON line."""
    import torch

    timings = Timings()
    instrument(timings)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    code, metrics = run_train(args.train_args)
    if metrics is None:
        print(f"gpu_check: spa-tune train failed for {args.label} (exit code {code})", file=sys.stderr)
        return code or 1
    peak = gpu_peak_bytes()
    row = {
        "label": args.label,
        "device": "cuda" if peak else "cpu",
        "steps": metrics["step"],
        **step_statistics(step_durations(timings.step_starts, timings.eval_starts), args.warmup),
        "eval_s": timings.eval_s,
        "wall_s": time.perf_counter() - started,
        "peak_gpu_mib_train": None if timings.train_peak_bytes is None else timings.train_peak_bytes / MIB,
        "peak_gpu_mib": None if peak is None else peak / MIB,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **{k: metrics[k] for k in ("em", "f1", "remaining_pct", "loss")},
    }
    print(json.dumps(row))
    with open(args.results, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    return 0


def fmt(value, spec: str) -> str:
    """``value`` formatted with ``spec``, or '-' when it is missing."""
    return "-" if value is None else format(value, spec)


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the runs of a results file side by side and the ratios of the second to the first."""
    rows = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    header = ("run", "device", "steps", "ms/step med", "ms/step mean", "steps/s", "peak GPU MiB (train)",
              "peak GPU MiB (all)", "peak RSS MiB", "eval s", "EM", "F1")
    print(" | ".join(header))
    for r in rows:
        print(" | ".join((
            r["label"], r["device"], str(r["steps"]), fmt(r.get("step_ms_median"), ".1f"), fmt(r.get("step_ms_mean"), ".1f"),
            fmt(r.get("steps_per_s"), ".2f"), fmt(r["peak_gpu_mib_train"], ",.0f"), fmt(r["peak_gpu_mib"], ",.0f"),
            fmt(r["peak_rss_mib"], ",.0f"), fmt(r["eval_s"], ".1f"), fmt(r["em"], ".1f"), fmt(r["f1"], ".1f"),
        )))
    if len(rows) >= 2 and rows[0].get("step_ms_median") and rows[1].get("step_ms_median"):
        base, other = rows[0], rows[1]
        ratios = [f"step time {other['step_ms_median'] / base['step_ms_median']:.3f}"]
        if base["peak_gpu_mib"] and other["peak_gpu_mib"]:
            ratios.append(f"peak GPU memory {other['peak_gpu_mib'] / base['peak_gpu_mib']:.3f}")
        ratios.append(f"F1 {other['f1'] - base['f1']:+.1f} points")
        print(f"{other['label']} / {base['label']}: " + ", ".join(ratios))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Command line of the three steps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("env", help="versions, GPU and the dtype the model loads in")
    env.add_argument("model_dir")
    env.set_defaults(func=cmd_env)
    trial = sub.add_parser("trial", help="one timed spa-tune train run")
    trial.add_argument("--label", required=True)
    trial.add_argument("--results", required=True, help="JSON-lines file the run's figures are appended to")
    trial.add_argument("--warmup", type=int, default=10, help="first steps left out of the step time")
    trial.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the arguments of spa-tune train")
    trial.set_defaults(func=cmd_trial)
    summary = sub.add_parser("summary", help="the runs side by side")
    summary.add_argument("results")
    summary.set_defaults(func=cmd_summary)
    return parser


def main() -> int:
    """Entry point."""
    args = build_parser().parse_args()
    if getattr(args, "train_args", None) and args.train_args[0] == "--":
        args.train_args = args.train_args[1:]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
