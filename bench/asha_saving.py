"""What stratified ASHA saves on the quickstart space, measured side by side in one run.

The quickstart space runs twice on one local Ray runtime: as shipped (density-stratified ASHA) and
with ``scheduler.type: none``. Reported: the training steps all trials used with ASHA / without,
the wall times, and the best F1 of each (ASHA may only lose F1 where it stopped a trial that
would have ended best).

Run: ``python bench/asha_saving.py [--space search_spaces/quickstart.yaml] [--set key=value ...]``
(about twice the quickstart's time).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from spa_tune.experiment.run import run_experiment
from spa_tune.spec.load import load_space


def measure(space: str, overrides: list[str]) -> dict:
    """Run one experiment; return its trial-steps, best F1 and wall time."""
    started = time.perf_counter()
    outcome = run_experiment(load_space(space, overrides), space)
    wall = time.perf_counter() - started
    return {
        "steps": sum(int(row["step"] or 0) for row in outcome.rows),
        "best_f1": max(float(row["f1"]) for row in outcome.rows if row["f1"] is not None),
        "stopped": sum(row["status"] == "stopped_early" for row in outcome.rows),
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="search_spaces/quickstart.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    args = parser.parse_args()
    import ray

    root = tempfile.mkdtemp(prefix="spa-tune-asha-")
    ray.init(include_dashboard=False, logging_level="WARNING")
    try:
        asha = measure(args.space, [*args.set, f"storage_path={root}", "name=with-asha"])
        plain = measure(args.space, [*args.set, f"storage_path={root}", "name=without-asha", "scheduler.type=none"])
    finally:
        ray.shutdown()
    print("\n                 trial-steps  stopped  best F1   wall (s)")
    for label, m in (("stratified ASHA", asha), ("no scheduler", plain)):
        print(f"{label:<16} {m['steps']:>11}  {m['stopped']:>7}  {m['best_f1']:>7.2f}  {m['wall']:>8.0f}")
    print(f"\nASHA trial-steps / without: {asha['steps'] / plain['steps']:.3f}")
    print(f"best-F1 difference (ASHA - without): {asha['best_f1'] - plain['best_f1']:+.2f}")
    print(f"wall time ratio: {asha['wall'] / plain['wall']:.3f}")


if __name__ == "__main__":
    main()
