"""Density-stratified ASHA: successive halving that compares a trial only with trials of its own kind.

Plain ASHA compares every trial at a rung with every other. In a pruning sweep that is the wrong
question: a trial heading for 10 % remaining weights scores lower at any step than one heading for
50 %, and SPLoPA, which learns a small adapter, scores differently over training than fine-pruning,
which learns every weight. Plain ASHA would stop sparse settings for being sparse and one method
for being another. Here every trial belongs to a *stratum* (``spa_tune/strata.py``): its method and the density it aims
for (``target_remaining_pct`` when set, else the density keys ``final_threshold`` and, for
regularised methods, ``final_lambda``), or the keys named by ``stratify_by``, and each stratum
has its own ASHA bracket. A trial is stopped when it is weak *among settings of its method at its
density*.

Built from Ray's public scheduler API only (one ``AsyncHyperBandScheduler`` per stratum behind a
router), so any Ray 2 release with that API runs it. Ray's ASHA stops a trial at a rung only when its metric is below the cutoff of what other
trials already recorded at that rung; the first trial to reach a rung has nothing to be compared
with and continues. So a stratum with a single trial never stops it (``max_t``, the budget of
every trial, still ends it), and neither is the first of several to arrive at a rung.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from ..strata import stratum_label, stratum_of
from ..trial_values import trial_values
from .diverged import diverged_reason


class _Recorded:
    """A trial as a bracket sees it when results are replayed: only its id."""

    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def _as_tuple(value: Any) -> Any:
    """JSON lists back to the tuples strata are made of."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


class StratifiedASHA(FIFOScheduler):
    """One ``AsyncHyperBandScheduler`` per stratum; each trial only meets trials of its stratum.

    ``fixed_config`` holds the trial keys that are the same for every trial (the space file's
    ``trial`` section), so a stratum is known even when the density is not searched; a trial of a
    sheet row (``sheet_row`` in its config) takes its row's values from ``sheet_rows``. Every
    decision is appended to ``decisions_file`` (JSON lines) when one is given.
    """

    def __init__(
        self,
        metric: str,
        mode: str,
        time_attr: str,
        grace_period: float,
        max_t: float,
        reduction_factor: float,
        stratify_by: list[str] | None = None,
        fixed_config: dict[str, Any] | None = None,
        decisions_file: str | Path | None = None,
        sheet_rows: dict[int, dict[str, Any]] | None = None,
    ):
        super().__init__()
        self._settings = dict(
            metric=metric, mode=mode, time_attr=time_attr, grace_period=grace_period,
            max_t=max_t, reduction_factor=reduction_factor,
        )
        self._metric, self._mode = metric, mode
        self._time_attr = time_attr
        self._stratify_by = stratify_by
        self._fixed = dict(fixed_config or {})
        self._sheet_rows = dict(sheet_rows or {})
        self._decisions_file = str(decisions_file) if decisions_file else None
        self._strata: dict[tuple, AsyncHyperBandScheduler] = {}
        self._trial_stratum: dict[str, tuple] = {}
        self._members: set[str] = set()  # trials added to their stratum's scheduler and not yet gone from it
        self._stopped: dict[tuple, int] = {}
        self._replayed = False

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        """Metric and mode are fixed at construction; accept only matching (or absent) ones."""
        return (metric is None or metric == self._metric) and (mode is None or mode == self._mode)

    def _bracket_of(self, stratum: tuple) -> AsyncHyperBandScheduler:
        if stratum not in self._strata:
            self._strata[stratum] = AsyncHyperBandScheduler(**self._settings)
        return self._strata[stratum]

    def replay_decisions(self) -> None:
        """Refill the rungs from the decisions file (Tune restores schedulers empty on resume).

        Every recorded result goes back into its stratum's scheduler, so that a resumed trial is
        still compared with the trials that reached its rung before the interruption. Only the public
        scheduler API is used: each recorded result enters as a trial added and completed at that
        progress, which records it at every rung it reached (a trial's first value at a rung stays).
        """
        self._replayed = True
        if not self._decisions_file or not Path(self._decisions_file).is_file():
            return
        for line in Path(self._decisions_file).read_text().splitlines():
            try:
                entry = json.loads(line)
                stratum = _as_tuple(entry["stratum_key"])
                progress, value = entry[self._time_attr], entry[self._metric]
            except (ValueError, KeyError):
                continue  # a line cut short by the interruption
            self._trial_stratum.setdefault(entry["trial_id"], stratum)
            scheduler, recorded = self._bracket_of(stratum), _Recorded(entry["trial_id"])
            scheduler.on_trial_add(None, recorded)
            scheduler.on_trial_complete(None, recorded, {self._time_attr: progress, self._metric: value})

    def _scheduler_for(self, trial) -> AsyncHyperBandScheduler:
        if not self._replayed:
            self.replay_decisions()
        stratum = self._trial_stratum.get(trial.trial_id)
        if stratum is None:
            stratum = stratum_of(trial_values(self._fixed, trial.config, self._sheet_rows), self._stratify_by)
            self._trial_stratum[trial.trial_id] = stratum
        return self._bracket_of(stratum)

    def stratum(self, trial_id: str) -> tuple | None:
        """The stratum a trial was placed in."""
        return self._trial_stratum.get(trial_id)

    def on_trial_add(self, tune_controller, trial) -> None:
        """Place the trial in its stratum's scheduler."""
        self._scheduler_for(trial).on_trial_add(tune_controller, trial)
        self._members.add(trial.trial_id)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        """Let the stratum's bracket record the final result (a diverged trial's is no measurement)."""
        scheduler = self._scheduler_for(trial)
        if trial.trial_id not in self._members:
            return
        self._members.discard(trial.trial_id)
        if diverged_reason(result) is not None:
            scheduler.on_trial_remove(tune_controller, trial)
        else:
            scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        """Continue or stop, judged against the trial's own stratum only.

        The result that says a trial diverged is not counted at a rung: the trial ends by itself.
        """
        if diverged_reason(result) is not None:
            return TrialScheduler.CONTINUE
        action = self._scheduler_for(trial).on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP:
            stratum = self._trial_stratum[trial.trial_id]
            self._stopped[stratum] = self._stopped.get(stratum, 0) + 1
        self._record(trial, result, action)
        return action

    def on_trial_remove(self, tune_controller, trial) -> None:
        """Forget a trial that was removed without completing."""
        scheduler = self._scheduler_for(trial)
        if trial.trial_id in self._members:
            self._members.discard(trial.trial_id)
            scheduler.on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        """An errored trial leaves its bracket like a removed one."""
        self.on_trial_remove(tune_controller, trial)

    def _record(self, trial, result: dict, action: str) -> None:
        if not self._decisions_file or self._time_attr not in result or self._metric not in result:
            return
        entry = {
            "time": time.time(),
            "trial_id": trial.trial_id,
            "stratum": stratum_label(self._trial_stratum[trial.trial_id]),
            "stratum_key": self._trial_stratum[trial.trial_id],
            self._time_attr: result[self._time_attr],
            self._metric: result[self._metric],
            "decision": "stop" if action == TrialScheduler.STOP else "continue",
        }
        with open(self._decisions_file, "a") as fh:
            fh.write(json.dumps(entry) + "\n")

    def debug_string(self) -> str:
        """One line per stratum with the number of stopped trials."""
        lines = [f"StratifiedASHA: {len(self._strata)} strata"]
        lines += [f"  {stratum_label(s)}: stopped {self._stopped.get(s, 0)}" for s in self._strata]
        return "\n".join(lines)
