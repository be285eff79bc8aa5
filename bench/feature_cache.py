"""Time to a trial's first training step with the experiment's feature cache filled and empty, side by side.

Time to first training step: from the call of ``run_trial`` in a fresh Python process (its
imports done, BERT's modules too, which transformers would import on first use) to the end of
the trial's first optimizer step, as a global optimizer step hook
sees it; the process then ends. Printed beside it: the time the trial's data took (the real
``trial_data`` of ``build_trial``, timed: features read or built, evaluation examples loaded)
and the whole process's time (interpreter start and imports included). "Empty" is a new cache folder, so that trial loads, tokenizes
and stores the features (what an experiment's first trial does); "filled" reads them from a
cache an earlier run filled (what every later trial does). The two kinds alternate over
``--reps`` repetitions, each run in its own process, so nothing is warm in memory but the OS
file cache. Default trial: MiniLM, the whole shared SQuAD train subset (11,877 questions) and
the dev subset, max_seq_length 384, batch 16, CPU. Target: filled / empty <= 0.2 (medians).

Run: ``python bench/feature_cache.py [--reps 3] [--set key=value ...]`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad-v1.1"
TRIAL = dict(
    model="minilm", method="fine-pruning", train_file=str(SHARED / "train-subset.json"),
    eval_file=str(SHARED / "dev-subset.json"), max_seq_length=384, doc_stride=128, max_query_length=64,
    per_gpu_train_batch_size=16, num_train_epochs=1, device="cpu", precision="fp32",
)
TARGET = 0.2
MEASURES = {"data_s": "features", "trial_s": "run_trial", "process_s": "process"}


def child(config: dict) -> None:
    """Run the trial until its first optimizer step ends; print the timing and the cache record as JSON."""
    import transformers.models.bert.modeling_bert  # noqa: F401  transformers imports these lazily, on first use:
    import transformers.models.bert.tokenization_bert  # noqa: F401  done before the clock starts, as in a reused worker
    from torch.optim.optimizer import register_optimizer_step_post_hook

    import spa_tune.trial.setup as setup
    from spa_tune.trial.data import RECORD_FILE
    from spa_tune.trial.runner import run_trial

    data_s = []
    real_trial_data = setup.trial_data

    def timed_trial_data(*args, **kwargs):  # the real function, timed: how long the trial's data took
        begin = time.perf_counter()
        try:
            return real_trial_data(*args, **kwargs)
        finally:
            data_s.append(time.perf_counter() - begin)

    setup.trial_data = timed_trial_data
    started = time.perf_counter()

    def first_step_done(optimizer, args, kwargs) -> None:
        record = json.loads((Path(config["output_dir"]) / RECORD_FILE).read_text())
        result = {"trial_s": time.perf_counter() - started, "data_s": data_s[0], "end": time.time(), "record": record}
        print(json.dumps(result), flush=True)
        os._exit(0)  # the measurement ends here; nothing else of the trial is wanted

    register_optimizer_step_post_hook(first_step_done)
    run_trial(config)
    raise SystemExit("the trial ended without an optimizer step")


def timed_run(config: dict) -> dict:
    """One trial in a fresh process: its timing, process time included."""
    begun = time.time()
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)], capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"benchmark trial failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1])
    return {**result, "process_s": result["end"] - begun}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each kind (they alternate)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a trial key")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from spa_tune.config import parse_overrides

    trial = {**TRIAL, **parse_overrides(args.set)}
    for key in ("train_file", "eval_file"):
        if not Path(trial[key]).is_file():
            raise SystemExit(f"{key}: {trial[key]} is missing (the shared SQuAD subsets); pass --set {key}=...")
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    times: dict[str, list[dict]] = {"empty": [], "filled": []}
    with tempfile.TemporaryDirectory(prefix="spa-tune-bench-cache-") as tmp:
        filled = Path(tmp) / "filled-cache"
        order = []
        for rep in range(args.reps):  # the first run fills the shared cache; later reps swap the order
            order += ["empty", "filled"] if rep % 2 == 0 else ["filled", "empty"]
        for i, kind in enumerate(order):
            cache = filled if kind == "filled" or not filled.exists() else Path(tmp) / f"empty-cache-{i}"
            config = {**trial, "feature_cache": str(cache), "output_dir": str(Path(tmp) / f"run-{i}")}
            result = timed_run(config)
            built = [result["record"][split]["built"] for split in ("train", "eval")]
            assert built == [kind == "empty"] * 2, (kind, result["record"])
            times[kind].append(result)
            print(f"{kind:>6} cache: features after {result['data_s']:5.1f} s; first step after "
                  f"{result['trial_s']:5.1f} s in run_trial, {result['process_s']:5.1f} s after process start", flush=True)
        rows = {split: result["record"][split]["rows"] for split in ("train", "eval")}
        cache_mb = folder_bytes(filled) / 1e6
    median = {kind: {measure: statistics.median(r[measure] for r in runs) for measure in MEASURES}
              for kind, runs in times.items()}
    print(f"\n{rows['train']} training and {rows['eval']} evaluation windows (max_seq_length "
          f"{trial['max_seq_length']}); the cache holds {cache_mb:.1f} MB")
    print(f"{'median of ' + str(args.reps):<16}{'empty s':>10}{'filled s':>10}{'ratio':>8}")
    for measure, label in MEASURES.items():
        ratio = median["filled"][measure] / median["empty"][measure]
        print(f"{label:<16}{median['empty'][measure]:>10.1f}{median['filled'][measure]:>10.1f}{ratio:>8.3f}")
    ratio = median["filled"]["trial_s"] / median["empty"]["trial_s"]
    print(f"target filled / empty <= {TARGET} (run_trial): {'met' if ratio <= TARGET else 'missed'} ({ratio:.3f})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
