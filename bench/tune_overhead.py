"""Ray Tune overhead: N short trials under spa-tune's Tuner against the same trials run directly.

The same N trial configurations (a tiny BERT on the generated data, tens of seconds each) are run
(1) directly with ``run_trial`` in a plain process pool of ``--concurrency`` processes (one torch
thread each, no Ray), each trial timed where it runs, and (2) as a spa-tune experiment on a local
Ray runtime with ``--concurrency`` trials at a time, one CPU each. Reported:

    overhead = wall time of the Tune experiment / (sum of direct trial times / concurrency)

The direct trials run at the same concurrency as under Tune because on a small machine two trials
side by side are each slower than one alone (shared cores, caches and memory bandwidth); that cost
belongs to the hardware, not to Tune. ``--sequential`` times them one after another instead.

The Tune wall time counts everything from building the Tuner to the results table (trial actors,
MLflow runs, checkpoints copied into the experiment folder, the Pareto plot); Ray's own start-up
happens once per session and is printed separately. Target: overhead <= 1.10.

Run: ``python bench/tune_overhead.py [--trials 6] [--epochs 140] [--concurrency 2]`` (about 7 minutes).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import torch
import yaml
from transformers import BertConfig, BertForQuestionAnswering

from spa_tune.experiment.run import run_experiment
from spa_tune.model.loading import load_tokenizer
from spa_tune.spec.load import load_space
from spa_tune.trial import run_trial

TARGET = 1.10
TRIAL = dict(
    dataset="generated", generated_train_questions=320, generated_eval_questions=60, max_seq_length=64,
    doc_stride=16, max_query_length=32, per_gpu_train_batch_size=32, learning_rate=3e-3,
    pruning_method="topK", initial_threshold=1.0, warmup_steps=4, initial_warmup=1, final_warmup=2,
    device="cpu",
)


def tiny_model(folder: Path) -> str:
    """A randomly initialised 2-layer BERT for QA with the bert-base-uncased vocabulary."""
    torch.manual_seed(0)
    config = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    BertForQuestionAnswering(config).save_pretrained(folder)
    load_tokenizer("minilm").save_pretrained(folder)
    return str(folder)


def timed_trial(config: dict) -> float:
    """Run one trial directly (one torch thread) and return its wall time in seconds."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    run_trial(config)
    return time.perf_counter() - started


def run_direct(configs: list[dict], concurrency: int) -> list[float]:
    """Time every trial run directly, ``concurrency`` at a time in plain worker processes."""
    if concurrency <= 1:
        return [timed_trial(config) for config in configs]
    with multiprocessing.get_context("spawn").Pool(concurrency, maxtasksperchild=None) as pool:
        return pool.map(timed_trial, configs, chunksize=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=140)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--sequential", action="store_true", help="time the direct trials one at a time")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="spa-tune-bench-"))
    model = tiny_model(work / "model")
    thresholds = [round(0.2 + 0.6 * i / max(1, args.trials - 1), 3) for i in range(args.trials)]
    trial = dict(TRIAL, model=model, num_train_epochs=args.epochs, eval_every=10 * max(1, args.epochs // 5))

    configs = [dict(trial, final_threshold=t, output_dir=str(work / f"direct-{i}")) for i, t in enumerate(thresholds)]
    started = time.perf_counter()
    direct = run_direct(configs, 1 if args.sequential else args.concurrency)
    direct_wall = time.perf_counter() - started
    for i, seconds in enumerate(direct):
        print(f"direct trial {i}: {seconds:.1f} s", flush=True)

    import ray

    started = time.perf_counter()
    ray.init(num_cpus=args.concurrency, include_dashboard=False, logging_level="WARNING")
    ray_start = time.perf_counter() - started
    space = dict(
        name="overhead", trial=trial, search={"final_threshold": {"type": "grid", "values": thresholds}},
        scheduler={"type": "none"}, resources={"cpu": 1}, max_concurrent_trials=args.concurrency,
        storage_path=str(work / "runs"),
    )
    path = work / "overhead.yaml"
    path.write_text(yaml.safe_dump(space))
    try:
        started = time.perf_counter()
        outcome = run_experiment(load_space(path), str(path))
        tuned = time.perf_counter() - started
    finally:
        ray.shutdown()
    assert all(row["status"] == "completed" for row in outcome.rows)
    ideal = sum(direct) / args.concurrency
    ratio = tuned / ideal
    print(f"\nRay start-up (once per session): {ray_start:.1f} s")
    how = "one at a time" if args.sequential else f"{args.concurrency} at a time"
    print(f"direct ({how}): {args.trials} trials, sum {sum(direct):.1f} s; / concurrency {args.concurrency}"
          f" = {ideal:.1f} s (pool wall {direct_wall:.1f} s)")
    print(f"under Tune: {tuned:.1f} s")
    print(f"Tune overhead ratio: {ratio:.3f} (target <= {TARGET}) {'OK' if ratio <= TARGET else 'ABOVE TARGET'}")
    if not args.sequential:
        print(f"against the direct pool's wall time (worker imports included): {tuned / direct_wall:.3f}")


if __name__ == "__main__":
    main()
