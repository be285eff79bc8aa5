"""Cubic threshold schedule and the scheduled regularization weight (seed-notes)."""

from __future__ import annotations


def threshold_at(
    step: int,
    total_steps: int,
    warmup_steps: int,
    initial_threshold: float,
    final_threshold: float,
    initial_warmup: float,
    final_warmup: float,
) -> float:
    """Threshold at optimisation step ``step`` of ``total_steps``.

    Constant ``initial_threshold`` for the first ``initial_warmup * warmup_steps`` steps,
    constant ``final_threshold`` for the last ``final_warmup * warmup_steps`` steps, and a cubic
    decay from one to the other in between.
    """
    t_initial = initial_warmup * warmup_steps
    t_final = final_warmup * warmup_steps
    if step <= t_initial:
        return initial_threshold
    if step > total_steps - t_final:
        return final_threshold
    remaining = 1.0 - (step - t_initial) / (total_steps - t_initial - t_final)
    return final_threshold + (initial_threshold - final_threshold) * remaining**3


def lambda_at(threshold: float, final_threshold: float, final_lambda: float) -> float:
    """Regularization weight ``final_lambda * threshold / final_threshold``."""
    if final_threshold == 0:
        return final_lambda
    return final_lambda * threshold / final_threshold
