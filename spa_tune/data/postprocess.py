"""Turn start/end logits over windows into one answer text per example (n-best search)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, offsets: list, n_best_size: int,
              max_answer_length: int) -> tuple[float, int, int] | None:
    """Best (score, char_start, char_end) in one window, or None when no pair is valid.

    Pairs come from the ``n_best_size`` largest start and end logits; both tokens must lie in the
    context (their offsets are not None), end >= start and the span is at most
    ``max_answer_length`` tokens long. The score is start logit + end logit.
    """
    length = min(len(offsets), len(start_logits))
    in_context = np.array([offsets[i] is not None for i in range(length)], dtype=bool)
    starts = np.argsort(start_logits[:length])[::-1][:n_best_size]
    ends = np.argsort(end_logits[:length])[::-1][:n_best_size]
    scores = start_logits[starts][:, None] + end_logits[ends][None, :]
    span = ends[None, :] - starts[:, None]
    valid = (span >= 0) & (span + 1 <= max_answer_length) & in_context[starts][:, None] & in_context[ends][None, :]
    if not valid.any():
        return None
    scores = np.where(valid, scores, -np.inf)
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return float(scores[i, j]), offsets[starts[i]][0], offsets[ends[j]][1]


def postprocess_predictions(examples, features, start_logits: np.ndarray, end_logits: np.ndarray,
                            n_best_size: int = 20, max_answer_length: int = 30) -> dict[str, str]:
    """``{example id: answer text}``: the best valid span over all windows of every example."""
    windows = defaultdict(list)
    for index, example_id in enumerate(list(features["example_id"])):
        windows[example_id].append(index)
    all_offsets = list(features["offset_mapping"])
    predictions = {}
    for example in examples:
        best = None
        for index in windows.get(example["id"], []):
            found = best_span(start_logits[index], end_logits[index], all_offsets[index], n_best_size, max_answer_length)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        predictions[example["id"]] = example["context"][best[1] : best[2]] if best else ""
    return predictions
