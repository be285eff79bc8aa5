"""A target density checked on the driver: can the trial's model reach ``target_remaining_pct``?"""

from __future__ import annotations

import functools
from typing import Any

from ..errors import SpaTuneError
from ..model.counting import encoder_shape_counts
from ..model.loading import OFFLINE_MODEL_NAME, expanded, offline_model_path
from ..pruning.target import keep_fraction_for


def target_problem(values: dict[str, Any]) -> str | None:
    """Why trial ``values``' ``target_remaining_pct`` cannot be reached by its model, or None.

    Only models on the local disk (``minilm`` or a model folder) are measured; a hub id is checked
    when the trial loads it.
    """
    target, model = values.get("target_remaining_pct"), values.get("model", OFFLINE_MODEL_NAME)
    if not isinstance(target, (int, float)) or isinstance(target, bool) or not isinstance(model, str):
        return None  # unset, or a wrong type the trial schema reports
    try:
        folder = offline_model_path() if model == OFFLINE_MODEL_NAME else expanded(model)
        if not (folder / "config.json").is_file():
            return None
        encoder_params, masked = _shape_counts(str(folder))
        keep_fraction_for(float(target), encoder_params, masked)
    except SpaTuneError as err:
        return str(err).removeprefix("target_remaining_pct: ")
    except (OSError, ValueError):
        return None  # an unreadable model folder is the model check's to report
    return None


@functools.lru_cache(maxsize=16)
def _shape_counts(folder: str) -> tuple[int, int]:
    return encoder_shape_counts(folder)
