"""Files and folders a trial will read, checked on the driver before any cluster work.

A trial loads its data and model only when it runs on a Ray worker, so a missing SQuAD file or
model folder would otherwise fail after the cluster started. These checks look at the local disk
only: ``train_file`` / ``eval_file`` must be SQuAD JSON that ``read_squad_json`` reads without
error (every answer inside its context), ``tokenizer`` must be ``minilm``, an existing folder or a
hub id (hub ids are not looked up), and ``model`` / ``teacher_name_or_path`` may also name a
finished dense spa-tune trial: a trial, checkpoint or experiment folder (its best completed dense
trial), read without loading weights, or a trial's MLflow run id, looked up here in
``$MLFLOW_TRACKING_URI`` (else ``mlflow.db`` in the working folder) and replaced by its trial folder.
"""

from __future__ import annotations

import functools
from typing import Any

from ..data.squad_json import read_squad_json
from ..errors import SpaTuneError
from ..model.loading import expanded, model_name_problem
from ..trial_values import trial_values

DATA_KEYS = ("train_file", "eval_file")
MODEL_KEYS = ("model", "teacher_name_or_path", "tokenizer")
CACHE_KEYS = ("feature_cache",)  # a folder or URI; a missing folder is fine (the first trial makes it)
TRAINED_KEYS = ("model", "teacher_name_or_path")  # may name a finished dense trial (spa_tune.trial.locate)
INPUT_KEYS = DATA_KEYS + MODEL_KEYS + CACHE_KEYS
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
    if key in CACHE_KEYS:
        from ..data.feature_cache import location_problem

        problem = location_problem(value)
        return None if problem is None else f"{value}: {problem}"
    if key in DATA_KEYS:
        path = expanded(value)
        if not path.is_file():
            return f"{value}: no such data file"
        st = path.stat()
        return _data_file_problem(str(path.resolve()), (st.st_mtime_ns, st.st_size))
    if key in TRAINED_KEYS and _may_name_trial(value):
        from ..trial.locate import trained_model_problem  # imports torch: only for names that need it

        return trained_model_problem(value)
    return model_name_problem(value, needs_config=key != "tokenizer")


def _may_name_trial(value: str) -> bool:
    """A folder without ``config.json``, or 32 characters that are no path (an MLflow run id?)."""
    path = expanded(value)
    if path.is_dir():
        return not (path / "config.json").is_file()
    return len(value) == 32 and not path.exists()


def trial_input_problem(values: dict[str, Any]) -> tuple[str, str] | None:
    """``(key, problem)`` for the first unusable data file or model in trial ``values``, or a
    ``target_remaining_pct`` its model cannot reach; None when there is none."""
    for key in INPUT_KEYS:
        problem = input_problem(key, values.get(key))
        if problem is not None:
            return key, problem
    problem = _target_problem(values)
    return None if problem is None else ("target_remaining_pct", problem)


def _target_problem(values: dict[str, Any]) -> str | None:
    if values.get("target_remaining_pct") in UNSET:
        return None
    from .targets import target_problem  # imports torch and transformers: only when a target is set

    return target_problem(values)


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
    check_space_precision(spec)
    for key, domain in spec.search.items():
        for i, value in enumerate(getattr(domain, "values", None) or []):
            problem = input_problem(key, value)
            if problem is None and key == "target_remaining_pct":
                problem = _target_problem(trial_values(spec.trial, {key: value}))
            if problem is not None:
                raise SpaTuneError(f"search.{key}.values[{i}]: {problem}")
    for i, point in enumerate(spec.searcher.points_to_evaluate):
        check_trial_inputs(point, f"searcher.points_to_evaluate[{i}]")
        problem = _target_problem(trial_values(spec.trial, point))
        if problem is not None:
            raise SpaTuneError(f"searcher.points_to_evaluate[{i}].target_remaining_pct: {problem}")


def check_space_precision(spec) -> None:
    """fp16 in a space whose trials get no GPU (``resources.gpu: 0``) is refused, naming where it is set."""
    if spec.resources.gpu > 0:
        return
    places = [("trial.precision", spec.trial.get("precision"))]
    domain = spec.search.get("precision")
    places += [(f"search.precision.values[{i}]", v) for i, v in enumerate(getattr(domain, "values", None) or [])]
    places += [(f"searcher.points_to_evaluate[{i}].precision", point.get("precision"))
               for i, point in enumerate(spec.searcher.points_to_evaluate)]
    for where, value in places:
        if value == "fp16":
            raise SpaTuneError(
                f"{where}: fp16 needs a CUDA GPU and this space gives its trials none (resources.gpu: 0); "
                "use bf16 or fp32, or give trials a GPU"
            )


def absolute_input(key: str, value: Any) -> Any:
    """A relative data file or local model folder as an absolute path (trials run in their own folder).

    An MLflow run id naming a trial as ``model`` or teacher becomes that trial's folder, so trials on
    any node find it without the driver's tracking store.
    """
    if key not in INPUT_KEYS or not isinstance(value, str) or value in UNSET:
        return value
    if key in CACHE_KEYS:
        return value if "://" in value else str(expanded(value).resolve())
    if key in TRAINED_KEYS and _may_name_trial(value) and not expanded(value).is_dir():
        from ..trial.locate import run_id_trial_dir

        trial_dir = run_id_trial_dir(value)  # looked up (once) when the value was checked
        return value if trial_dir is None else str(trial_dir.resolve())
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
