"""Cell values read back from text (``results.csv`` cells, MLflow params): numbers become numbers."""

from __future__ import annotations

import math
import re
from typing import Any

# Plain decimal numbers only: int() and float() also take "1_000", " 7 " or "infinity".
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


def parse_value(text: Any) -> Any:
    """``"0.5"`` -> 0.5, ``"12"`` -> 12, ``""``/``"None"`` -> None, ``"nan"`` -> NaN, other text as it is."""
    if not isinstance(text, str):
        return text
    if text in ("", "None"):
        return None
    if text.lower() in ("nan", "inf", "-inf"):
        return float(text)
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        return float(text)
    return text


def number(value: Any) -> float | None:
    """A finite float, or None (missing, text, NaN, infinite)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: NaN and infinities become None (inside mappings too)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value
