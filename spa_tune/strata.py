"""Density strata: which trials are compared with each other.

A trial's stratum is its method and the density it aims for (``target_remaining_pct`` when set,
else the density keys ``final_threshold`` and, for regularised methods, ``final_lambda``), or the
values of the keys a space file names in ``stratify_by``. The stratified ASHA scheduler compares
trials only within a stratum; the trainable tags each MLflow run with its stratum's label and the
results table shows it.
"""

from __future__ import annotations

from typing import Any

from .trial_values import default_of

TARGET = "target_remaining_pct"
UNSET = (None, "null", "None", "")


def auto_stratum(config: dict[str, Any]) -> tuple:
    """The stratum of a trial config: its method and the density it aims for.

    ``(method, ("target_remaining_pct", pct))`` for a trial given a target density; otherwise
    ``(method, ("final_threshold", t))`` (the kept fraction, or the score threshold), with
    ``("final_lambda", l)`` added for regularised methods, whose penalty (scaled by the threshold
    schedule) sets the density. ``("dense",)`` for dense trials, which prune nothing.
    """
    method = config.get("method", default_of("method"))
    if method == "dense":
        return ("dense",)
    if config.get(TARGET) not in UNSET:
        return (method, (TARGET, config[TARGET]))
    threshold = ("final_threshold", config.get("final_threshold", default_of("final_threshold")))
    if config.get("regularization") not in UNSET:
        return (method, threshold, ("final_lambda", config.get("final_lambda", default_of("final_lambda"))))
    return (method, threshold)


def stratum_of(config: dict[str, Any], stratify_by: list[str] | None) -> tuple:
    """Stratum key of a trial: ``auto_stratum`` or the values of the ``stratify_by`` keys."""
    if stratify_by is None:
        return auto_stratum(config)
    return tuple((key, config.get(key)) for key in stratify_by)


def _pairs(pairs) -> str:
    return ",".join(f"{key}={value}" for key, value in pairs)


def stratum_label(stratum: tuple) -> str:
    """Readable stratum name for logs, tags and tables.

    ``splopa target=50%``, ``fine-pruning final_threshold=0.1,final_lambda=50`` and ``dense`` for
    automatic strata; ``method=splopa,final_threshold=0.1`` for keys named by ``stratify_by``.
    """
    if all(isinstance(part, tuple) for part in stratum):  # stratify_by keys
        return _pairs(stratum)
    method, density = stratum[0], stratum[1:]
    if not all(isinstance(part, tuple) for part in density):  # ("final_threshold", 0.1) of older experiments
        return _pairs([stratum])
    if density and density[0][0] == TARGET:
        value = density[0][1]
        return f"{method} target={value:g}%" if isinstance(value, (int, float)) else f"{method} target={value}%"
    return f"{method} {_pairs(density)}" if density else str(method)
