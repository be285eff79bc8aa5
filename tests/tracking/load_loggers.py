"""Many trial loggers at once: ``python -m tests.tracking.load_loggers --out DIR ...``.

The launcher imports spa-tune once and forks one process per logger (32 imports of torch and MLflow
would take the two cores a minute). Each logger does what a trial does with MLflow: it opens its
child run with ``TrialRun.open`` and sends its evaluations through a ``BufferedLogger`` with the
trainable's ``log_evaluation`` (step metrics and the per-layer table), at a steady pace. It writes
its stderr to ``DIR/logger_NN.err`` and a summary to ``DIR/logger_NN.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

LAYERS = [f"bert.encoder.layer.{i}.{part}" for i in range(12)
          for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                       "attention.output.dense", "intermediate.dense", "output.dense")]


def trial_id(logger: int) -> str:
    """The Ray-style trial id of logger ``logger``."""
    return f"load_{logger:05d}"


def evaluation(logger: int, index: int, eval_every: int) -> dict[str, float]:
    """The metrics logger ``logger`` sends at its ``index``-th evaluation (a pure function: the test recomputes them)."""
    step = (index + 1) * eval_every
    progress = index + 1
    return {
        "step": step,
        "epoch": step / 1000.0,
        "f1": 40.0 + 30.0 * (1.0 - math.exp(-progress / 20.0)) + logger / 97.0,
        "em": 30.0 + 25.0 * (1.0 - math.exp(-progress / 20.0)) + logger / 89.0,
        "remaining_pct": 100.0 * math.exp(-progress / 40.0) + logger / 1000.0,
        "learned_pct": 5.0 + logger / 31.0,
        "learned_params": float(300_000 + 17 * logger),
        "remaining_params": float(85_000_000 - 1_000 * progress - logger),
        "loss": 3.0 * math.exp(-progress / 30.0) + logger / 1013.0,
        "threshold": 1.0 - 0.9 * progress / 1000.0,
    }


def layer_table(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per-layer rows as a bert-base trial logs them (72 masked Linears)."""
    return {name: {"remaining_pct": metrics["remaining_pct"], "learned_params": 4096, "learned_pct": 0.55} for name in LAYERS}


def run_logger(logger: int, args: argparse.Namespace) -> dict:
    """One trial's MLflow logging, from opening its run to draining its queue; its counts."""
    from spa_tune.experiment.trainable import MLFLOW_DRAIN_SECONDS, log_evaluation
    from spa_tune.tracking.buffered import BufferedLogger, use_short_http_retries
    from spa_tune.tracking.mlflow_runs import ExperimentRuns, TrialRun

    use_short_http_retries()  # as run_tuned_trial does before a trial opens its run
    runs = ExperimentRuns(args.tracking_uri, args.experiment_id, args.parent_run_id)
    folder = Path(args.out) / trial_id(logger)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    params = {"method": "splopa", "learning_rate": 1e-4 * (1 + logger), "final_lambda": 10 * logger, "seed": logger}
    run = TrialRun.open(runs, trial_id(logger), f"splopa load #{logger}", params, {"method": "splopa"})
    failures, seconds = [], []

    def send(record: dict) -> None:
        began = time.time()
        try:
            log_evaluation(run, record)
        except Exception as err:
            failures.append(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            raise
        finally:
            seconds.append(time.time() - began)

    queue = BufferedLogger(send, folder, retry_seconds=2.0)
    (folder / "ready").touch()
    while not Path(args.go).exists() and time.time() - started < 120:  # all loggers start together
        time.sleep(0.05)
    first = time.time()
    for index in range(args.evaluations):
        metrics = evaluation(logger, index, args.eval_every)
        metrics["layers"] = layer_table(metrics)
        queue.submit({"metrics": metrics, "timestamp_ms": int(time.time() * 1000), "masks": None})
        time.sleep(max(0.0, first + (index + 1) * args.interval - time.time()))
    unsent = queue.close(timeout=MLFLOW_DRAIN_SECONDS)
    return {"logger": logger, "run_id": run.run_id, "submitted": args.evaluations, "sent": queue.sent,
            "unsent": unsent, "send_failures": failures, "seconds": round(time.time() - first, 1),
            "send_seconds_median": sorted(seconds)[len(seconds) // 2] if seconds else None,
            "send_seconds_max": max(seconds, default=None)}


def child(logger: int, args: argparse.Namespace) -> int:
    """Body of a forked logger: its own stderr file, its summary file, exit status 0 when it ran through."""
    err = os.open(Path(args.out) / f"logger_{logger:02d}.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(err, 2)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        summary = run_logger(logger, args)
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    (Path(args.out) / f"logger_{logger:02d}.json").write_text(json.dumps(summary))
    return 0


def main() -> int:
    """Fork ``--loggers`` loggers, wait for all; 0 when every one ran through."""
    parser = argparse.ArgumentParser()
    for name in ("--tracking-uri", "--experiment-id", "--parent-run-id", "--out", "--go"):
        parser.add_argument(name, required=True)
    parser.add_argument("--loggers", type=int, default=32)
    parser.add_argument("--evaluations", type=int, default=50)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--eval-every", type=int, default=100)
    args = parser.parse_args()
    import spa_tune.experiment.trainable  # noqa: F401  imported once, before the fork

    pids = []
    for logger in range(args.loggers):
        pid = os.fork()
        if pid == 0:
            os._exit(child(logger, args))
        pids.append(pid)
    failed = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    print(json.dumps({"loggers": len(pids), "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
