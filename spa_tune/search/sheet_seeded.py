"""A searcher seeded with sheet rows: the rows' points go first, each trial knows its row.

The wrapped searcher (Optuna) receives the rows' values of the searched keys as
``points_to_evaluate`` and proposes them first. This wrapper recognises each proposal that is a
row's point and adds ``sheet_row`` to its config, so the trial runs that row's full configuration
and its result can be written back to that row. Every other proposal is a new search point.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search import Searcher

from ..trial_values import SHEET_ROW


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)))
        except (TypeError, ValueError):
            return False
    return a == b


class SheetSeededSearch(Searcher):
    """Wraps a searcher whose first proposals are the points of sheet rows ``{row: point}``."""

    def __init__(self, searcher: Searcher, row_points: dict[int, dict[str, Any]]):
        self.searcher = searcher
        self.pending = {int(row): dict(point) for row, point in row_points.items()}
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        """Passed on to the wrapped searcher."""
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Passed on to the wrapped searcher."""
        return self.searcher.set_max_concurrency(max_concurrent)

    def match_row(self, config: dict[str, Any]) -> int | None:
        """The first pending row whose point equals ``config``; it is no longer pending."""
        for row, point in self.pending.items():
            if all(key in config and _same(config[key], value) for key, value in point.items()):
                del self.pending[row]
                return row
        return None

    def suggest(self, trial_id: str) -> dict | None:
        """The wrapped searcher's proposal, with ``sheet_row`` where it is a row's point."""
        config = self.searcher.suggest(trial_id)
        if not isinstance(config, dict):
            return config
        row = self.match_row(config)
        return {**config, SHEET_ROW: row} if row is not None else config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Passed on to the wrapped searcher."""
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Passed on to the wrapped searcher (stopped trials inform it too)."""
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def get_state(self) -> dict:
        """The rows still pending; Tune saves the wrapped searcher itself beside it."""
        return {"pending": {str(row): point for row, point in self.pending.items()}}

    def set_state(self, state: dict) -> None:
        """Restore the pending rows (Tune restores the wrapped searcher itself)."""
        self.pending = {int(row): point for row, point in state["pending"].items()}

    def save(self, checkpoint_path: str) -> None:
        """Passed on to the wrapped searcher."""
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        """Passed on to the wrapped searcher."""
        self.searcher.restore(checkpoint_path)
