"""Trials whose training diverged: final and failed, never retried.

Ray Tune retries every trial that raises, up to ``max_failures``; a loss that became NaN would
only become NaN again from the same checkpoint. So the trainable does not raise: it reports one
last result carrying ``diverged`` (the reason) and ends. Tune then records the trial as finished
without a retry (and ``spa-tune resume`` does not run it again), and spa-tune reads the reason
back: the trial is ``failed`` in ``results.csv`` and in its MLflow run, schedulers do not count the
result at a rung, and a searcher is told the trial failed instead of being given values.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.search import Searcher

DIVERGED = "diverged"  # result key: why training stopped being finite


def diverged_reason(result: dict[str, Any] | None) -> str | None:
    """The reason a result says its trial diverged, or None for any other result."""
    reason = (result or {}).get(DIVERGED)
    return str(reason) if reason else None


def divergence_result(reason: str, last: dict[str, Any], metrics: tuple[str, ...]) -> dict[str, Any]:
    """The last result of a diverged trial: its last evaluation (NaN for ``metrics`` it never had) and the reason.

    Ray Tune checks that every result names the metrics its scheduler and searcher read, so those
    are present even when the trial diverged before its first evaluation.
    """
    return {**{metric: math.nan for metric in metrics}, **last, DIVERGED: reason}


class DivergedTrialsFail(Searcher):
    """Wraps a searcher so that a diverged trial is told to it as failed, never with values.

    Its last result repeats the last evaluation (or holds NaN), which a study would otherwise
    record as the outcome of that configuration (and Optuna refuses NaN as a value).
    """

    def __init__(self, searcher: Searcher):
        self.searcher = searcher
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        """Passed on to the wrapped searcher."""
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Passed on to the wrapped searcher."""
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | None:
        """The wrapped searcher's proposal."""
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Intermediate results, except the one that says the trial diverged."""
        if diverged_reason(result) is None:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Passed on; a diverged trial as an error without values."""
        if diverged_reason(result) is not None:
            result, error = None, True
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def get_state(self) -> dict:
        """Nothing of its own to keep (Tune saves the wrapped searcher itself beside it)."""
        return {}

    def set_state(self, state: dict) -> None:
        """Nothing of its own to restore."""

    def save(self, checkpoint_path: str) -> None:
        """Passed on to the wrapped searcher."""
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        """Passed on to the wrapped searcher."""
        self.searcher.restore(checkpoint_path)
