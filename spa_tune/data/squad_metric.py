"""The official SQuAD v1.1 metric: answer normalisation, exact match and token F1 (percent)."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from pathlib import Path

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, gold: str) -> bool:
    """Whether the normalised strings are equal."""
    return normalize_answer(prediction) == normalize_answer(gold)


def f1_score(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall after normalisation (0 without overlap)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """EM and F1 in percent over every reference question; a missing prediction scores 0."""
    if not references:
        return {"em": 0.0, "f1": 0.0}
    em = f1 = 0.0
    for qid, golds in references.items():
        if qid not in predictions:
            continue
        pred = predictions[qid]
        em += max(float(exact_match_score(pred, g)) for g in golds)
        f1 += max(f1_score(pred, g) for g in golds)
    return {"em": 100.0 * em / len(references), "f1": 100.0 * f1 / len(references)}


def write_predictions(predictions: dict[str, str], path: str | Path) -> Path:
    """Write ``{question id: answer text}``, the official prediction file format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(predictions, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
