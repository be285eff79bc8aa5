"""Turn start/end logits over windows into one answer text per example (n-best search).

Features follow the convention of :mod:`spa_tune.data.features`: ``offset_mapping`` holds a
``(char_start, char_end)`` pair for context tokens and ``None`` for every other token.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np


def _top_indices(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first (ties keep the lower index first)."""
    return np.argsort(-logits, kind="stable")[:k]


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, offsets: list, n_best_size: int,
              max_answer_length: int) -> tuple[float, int, int] | None:
    """Best (score, char_start, char_end) in one window, or None when no pair is valid.

    Pairs come from the ``n_best_size`` largest start and end logits; both tokens must lie in the
    context (their offsets are not None), end >= start and the span is at most
    ``max_answer_length`` tokens long. The score is start logit + end logit.
    """
    length = min(len(offsets), len(start_logits), len(end_logits))
    start_logits = np.asarray(start_logits[:length], dtype=np.float64)
    end_logits = np.asarray(end_logits[:length], dtype=np.float64)
    in_context = np.array([offsets[i] is not None for i in range(length)], dtype=bool)
    starts = _top_indices(start_logits, n_best_size)
    ends = _top_indices(end_logits, n_best_size)
    span = ends[None, :] - starts[:, None]
    valid = (span >= 0) & (span < max_answer_length) & in_context[starts][:, None] & in_context[ends][None, :]
    if not valid.any():
        return None
    scores = np.where(valid, start_logits[starts][:, None] + end_logits[ends][None, :], -np.inf)
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return float(scores[i, j]), int(offsets[starts[i]][0]), int(offsets[ends[j]][1])


def _windows_by_example(example_ids: Iterable[str]) -> dict[str, list[int]]:
    """Feature indices of each example id, in feature order."""
    windows: dict[str, list[int]] = defaultdict(list)
    for index, example_id in enumerate(example_ids):
        windows[example_id].append(index)
    return windows


def postprocess_predictions(examples: Any, features: Any, start_logits: np.ndarray, end_logits: np.ndarray,
                            n_best_size: int = 20, max_answer_length: int = 30) -> dict[str, str]:
    """``{example id: answer text}``: the best valid span over all windows of every example.

    ``examples`` yields rows with ``id`` and ``context``; ``features`` has the columns
    ``example_id`` and ``offset_mapping``, one row per row of ``start_logits``/``end_logits``.
    An example without any valid span gets the empty string.
    """
    windows = _windows_by_example(list(features["example_id"]))
    all_offsets = list(features["offset_mapping"])
    predictions: dict[str, str] = {}
    for example in examples:
        best = None
        for index in windows.get(example["id"], []):
            found = best_span(start_logits[index], end_logits[index], all_offsets[index], n_best_size, max_answer_length)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        predictions[example["id"]] = example["context"][best[1] : best[2]] if best else ""
    return predictions
