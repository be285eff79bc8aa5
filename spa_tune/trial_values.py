"""A trial's values: the experiment's fixed trial keys, its sheet row, its sampled keys, and the defaults.

The one place where they are merged. ``trial_config`` validates the merge into the ``TrialConfig``
that the trainable runs and the results page scores the untrained model with; the scheduler and the
results table place a trial in its density stratum from ``trial_values``, the same merge as the
values were written (a validated ``final_lambda: 50`` reads ``50.0``, and stratum labels, MLflow tags
and a resumed experiment's recorded strata keep the written form). A trial of a sheet row carries
``sheet_row`` in its Ray config; that row's values already hold the fixed keys the row leaves empty
(``sheet/rows.py``), so they replace the fixed keys rather than add to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import TrialConfig, validate_trial_config

SHEET_ROW = "sheet_row"  # the Ray config key of a sheet trial: its row number
TRIAL_DEFAULTS: dict[str, Any] = {key: field.default for key, field in TrialConfig.model_fields.items()}


def default_of(key: str) -> Any:
    """The default value of trial key ``key``."""
    return TRIAL_DEFAULTS[key]


def trial_values(
    fixed: Mapping[str, Any], sampled: Mapping[str, Any], sheet_rows: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A trial's explicit values: its sheet row's (or the fixed keys), then its sampled keys over them.

    ``sampled`` is the trial's Ray config; its ``sheet_row``, when it names one of ``sheet_rows``,
    selects that row's values as the base and is not a trial key itself.
    """
    sampled = dict(sampled)
    row = sampled.pop(SHEET_ROW, None)
    base = (sheet_rows or {}).get(row, fixed) if row is not None else fixed
    return {**base, **sampled}


def with_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every trial key: ``values`` over the defaults (not validated)."""
    return {**TRIAL_DEFAULTS, **values}


def trial_config(
    fixed: Mapping[str, Any], sampled: Mapping[str, Any], sheet_rows: Mapping[int, Mapping[str, Any]] | None = None,
    *, source: str = "config", **overrides: Any,
) -> TrialConfig:
    """The validated ``TrialConfig`` of a trial: ``trial_values`` with ``overrides`` on top.

    A problem raises ``SpaTuneError`` naming ``source`` and the key.
    """
    return validate_trial_config({**trial_values(fixed, sampled, sheet_rows), **overrides}, source)
