"""Files and folders a trial will read, checked on the driver before any cluster work.

A trial loads its data and model only when it runs on a Ray worker, so a missing SQuAD file or
model folder would otherwise fail after the cluster started. These checks look at the local disk
only: ``train_file`` / ``eval_file`` must be SQuAD JSON that ``read_squad_json`` reads without
error (every answer inside its context), and ``model`` / ``teacher_name_or_path`` / ``tokenizer``
must be ``minilm``, an existing model folder, or a hub id (hub ids are not looked up).
"""

from __future__ import annotations

import functools
from typing import Any

from ..data.squad_json import read_squad_json
from ..errors import SpaTuneError
from ..model.loading import expanded, model_name_problem

DATA_KEYS = ("train_file", "eval_file")
MODEL_KEYS = ("model", "teacher_name_or_path", "tokenizer")
INPUT_KEYS = DATA_KEYS + MODEL_KEYS
UNSET = (None, "", "null", "None")  # what the trial schema reads as "not set"


@functools.lru_cache(maxsize=64)
def _data_file_problem(path: str, stamp: tuple[int, int]) -> str | None:
    """``read_squad_json``'s one-line error for a file (cached while its mtime and size stay)."""
    try:
        read_squad_json(path)
    except SpaTuneError as err:
        return str(err)
    return None


def input_problem(key: str, value: Any) -> str | None:
    """Why the data file or model a trial key names cannot be used, or None (other keys: None)."""
    if key not in INPUT_KEYS or not isinstance(value, str) or value in UNSET:
        return None  # wrong types are the trial schema's to report
    if key in DATA_KEYS:
        path = expanded(value)
        if not path.is_file():
            return f"{value}: no such data file"
        st = path.stat()
        return _data_file_problem(str(path.resolve()), (st.st_mtime_ns, st.st_size))
    return model_name_problem(value, needs_config=key != "tokenizer")


def trial_input_problem(values: dict[str, Any]) -> tuple[str, str] | None:
    """``(key, problem)`` for the first unusable data file or model in trial ``values``, or None."""
    for key in INPUT_KEYS:
        problem = input_problem(key, values.get(key))
        if problem is not None:
            return key, problem
    return None


def check_trial_inputs(values: dict[str, Any], where: str) -> None:
    """Raise ``where.key: problem`` for the first unusable data file or model in trial ``values``."""
    problem = trial_input_problem(values)
    if problem is not None:
        raise SpaTuneError(f"{where}.{problem[0]}: {problem[1]}")


def check_space_inputs(spec) -> None:
    """The files and models of a checked space: its trial section, searched values and start points.

    Rows of a sheet are checked where they are read (``sheet.rows.row_trial``), naming their cell.
    """
    check_trial_inputs(spec.trial, "trial")
    for key, domain in spec.search.items():
        for i, value in enumerate(getattr(domain, "values", None) or []):
            problem = input_problem(key, value)
            if problem is not None:
                raise SpaTuneError(f"search.{key}.values[{i}]: {problem}")
    for i, point in enumerate(spec.searcher.points_to_evaluate):
        check_trial_inputs(point, f"searcher.points_to_evaluate[{i}]")


def absolute_input(key: str, value: Any) -> Any:
    """A relative data file or local model folder as an absolute path (trials run in their own folder)."""
    if key not in INPUT_KEYS or not isinstance(value, str) or value in UNSET:
        return value
    path = expanded(value)
    if path.is_absolute() or not (path.is_file() if key in DATA_KEYS else path.is_dir()):
        return value  # absolute already, or a hub id
    return str(path.resolve())


def make_inputs_absolute(spec) -> None:
    """Resolve relative data files and model folders of a checked space against the working folder."""
    for key in INPUT_KEYS:
        if key in spec.trial:
            spec.trial[key] = absolute_input(key, spec.trial[key])
    for key, domain in spec.search.items():
        if getattr(domain, "values", None):
            domain.values = [absolute_input(key, value) for value in domain.values]
    for point in spec.searcher.points_to_evaluate:
        for key in list(point):
            point[key] = absolute_input(key, point[key])
