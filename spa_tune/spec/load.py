"""Read a space file, apply ``--set`` overrides, and check everything before any cluster work.

Every problem becomes one ``SpaTuneError`` line naming the file (or ``--set``) and the field path,
e.g. ``splopa.yaml: search.final_lambda.low: Input should be a valid number (got 'x')``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import TRIAL_KEYS, did_you_mean, parse_overrides, read_yaml_mapping, trial_config_problem
from ..errors import SpaTuneError
from ..trial_values import default_of, trial_config, trial_values
from .inputs import check_space_inputs, make_inputs_absolute
from .space import DOMAIN_TYPES, RESERVED_TRIAL_KEYS, IntDomain, RangeDomain, SpaceSpec, ValuesDomain

SECTIONS = tuple(SpaceSpec.model_fields)
UNION_LABELS = {"str", "int", "float", "bool"}


def field_path(loc: tuple) -> str:
    """Dotted field path of a pydantic location, without union labels (``search.x.low``)."""
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif (loc[0] == "search" and i == 2 and part in DOMAIN_TYPES) or part in UNION_LABELS or "[" in part:
            continue  # labels pydantic adds for the members of a union
        else:
            text += f".{part}" if text else part
    return text


def describe_validation_error(err: ValidationError) -> str:
    """``path: message (got value)`` for the first problem pydantic found."""
    first = err.errors()[0]
    path = field_path(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "value_error" and ": " in message:
        inner, rest = message.split(": ", 1)
        return f"{path}.{inner}: {rest}" if path else message
    got = first.get("input")
    suffix = f" (got {got!r})" if not isinstance(got, dict) and first["type"] != "missing" else ""
    if first["type"] == "union_tag_invalid":
        message = f"type must be one of {', '.join(DOMAIN_TYPES)}"
        suffix = f" (got {got.get('type')!r})" if isinstance(got, dict) else ""
    elif first["type"] == "union_tag_not_found":
        message = f"needs a type ({', '.join(DOMAIN_TYPES)})"
    return f"{path or 'file'}: {message}{suffix}"


def apply_overrides(data: dict[str, Any], pairs: list[str] | None) -> tuple[dict[str, Any], set[str]]:
    """Apply ``--set path=value`` (``num_samples=8``, ``scheduler.grace_period=2``, ``trial.seed=1``).

    A bare trial key (``learning_rate=1e-4``) sets it in the ``trial`` section. Returns the new
    data and the dotted paths that were set, so errors about them can name ``--set``.
    """
    data = copy.deepcopy(data)
    paths: set[str] = set()
    for key, value in parse_overrides(pairs).items():
        parts = key.split(".")
        if parts[0] not in SECTIONS:
            if parts[0] in TRIAL_KEYS and len(parts) == 1:
                parts = ["trial", parts[0]]
            else:
                raise SpaTuneError(f"--set {key}: unknown field{did_you_mean(parts[0], SECTIONS + TRIAL_KEYS)}")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SpaTuneError(f"--set {key}: {part} is not a section")
            node = child
        node[parts[-1]] = value
        paths.add(".".join(parts))
    return data, paths


def domain_candidates(domain: ValuesDomain | RangeDomain | IntDomain) -> list[tuple[str, Any]]:
    """Values worth checking against the trial schema, with the field that holds each."""
    if isinstance(domain, ValuesDomain):
        return [(f"values[{i}]", v) for i, v in enumerate(domain.values)]
    if isinstance(domain, IntDomain):
        return [("low", domain.low), ("high", domain.high - 1)]
    return [("low", domain.low), ("high", domain.high)]


def check_trial_values(values: dict[str, Any], where: str) -> None:
    """Raise ``where.key: message`` if ``values`` is not a valid trial config."""
    problem = trial_config_problem(values)
    if problem is not None:
        key, message = problem
        if message.startswith("unknown key"):
            raise SpaTuneError(f"{where}: {message}")
        raise SpaTuneError(f"{where}.{message}")


def check_space(spec: SpaceSpec) -> None:
    """Checks across sections: trial keys, searched keys and values, searcher compatibility."""
    for key in RESERVED_TRIAL_KEYS:
        if key in spec.trial:
            raise SpaTuneError(f"trial.{key}: set by spa-tune for every trial (under storage_path/name)")
    check_trial_values(spec.trial, "trial")
    check_sheet_search(spec)
    for key, domain in spec.search.items():
        if key not in TRIAL_KEYS:
            raise SpaTuneError(f"search: unknown trial key {key!r}{did_you_mean(key)}")
        if key in RESERVED_TRIAL_KEYS:
            raise SpaTuneError(f"search.{key}: set by spa-tune, cannot be searched")
        for field, value in domain_candidates(domain):
            problem = trial_config_problem(trial_values(spec.trial, {key: value}))
            if problem is not None:
                raise SpaTuneError(f"search.{key}.{field}: {problem[1].removeprefix(key + ': ')}")
        if spec.searcher.type == "grid" and domain.type != "grid":
            raise SpaTuneError(
                f"search.{key}.type: searcher grid enumerates grid domains only, not {domain.type} (use searcher random)"
            )
        if spec.searcher.type == "optuna" and domain.type == "grid":
            raise SpaTuneError(f"search.{key}.type: the optuna searcher samples; use choice instead of grid")
        if spec.searcher.type == "optuna" and domain.type in ("quniform", "qloguniform"):
            raise SpaTuneError(f"search.{key}.type: {domain.type} is not passed to optuna exactly (its q is dropped); use uniform/loguniform or choice")
    for i, point in enumerate(spec.searcher.points_to_evaluate):
        where = f"searcher.points_to_evaluate[{i}]"
        for key in point:
            if key not in spec.search:
                raise SpaTuneError(f"{where}.{key}: not a searched key (searched: {', '.join(spec.search) or 'none'})")
        if spec.searcher.type == "optuna":
            missing = [k for k in spec.search if k not in point]
            if missing:
                raise SpaTuneError(f"{where}: optuna needs every searched key, missing {', '.join(missing)}")
        check_trial_values(trial_values(spec.trial, point), where)
    check_scheduler(spec)
    check_reports_during_training(spec)
    if spec.searcher.type == "grid" and spec.searcher.points_to_evaluate:
        raise SpaTuneError("searcher.points_to_evaluate: use searcher random or optuna (grid enumerates its grid)")


def check_sheet_search(spec: SpaceSpec) -> None:
    """Sheet rows are exactly the trials of a grid, or the first points of an Optuna search."""
    if spec.grid_from_sheet is None:
        return
    if spec.searcher.type == "random":
        raise SpaTuneError("searcher.type: sheet rows run with searcher grid (the rows) or optuna (rows first), not random")
    if spec.searcher.type == "grid":
        if spec.search:
            raise SpaTuneError(
                f"search: with grid_from_sheet and searcher grid the sheet's rows are the trials; "
                f"remove search ({', '.join(spec.search)}) or use searcher optuna"
            )
        if spec.num_samples != 1:
            raise SpaTuneError("num_samples: with grid_from_sheet and searcher grid each row runs once (num_samples: 1)")
    elif spec.searcher.points_to_evaluate:
        raise SpaTuneError("searcher.points_to_evaluate: the sheet's rows are the points to evaluate; remove them")


def check_scheduler(spec: SpaceSpec) -> None:
    """ASHA's time budget must be known and reachable: ``max_t`` >= ``grace_period``."""
    sched = spec.scheduler
    if sched.type == "none" or sched.max_t is not None:
        return
    if sched.time_attr != "epoch" or "num_train_epochs" in spec.search:
        raise SpaTuneError(f"scheduler.max_t: required with time_attr {sched.time_attr} or searched num_train_epochs")
    epochs = float(spec.trial.get("num_train_epochs", default_of("num_train_epochs")))
    if epochs < sched.grace_period:
        raise SpaTuneError(f"scheduler.grace_period: {sched.grace_period} epochs is longer than the trial ({epochs} epochs)")


# why ASHA needs evaluations during training, after "eval_every: 0"
REPORTS_ONCE = (
    "reports each trial once, at its end, so scheduler asha could stop nothing; "
    "evaluate every N steps (eval_every: N) or set scheduler.type: none"
)


def eval_every_of(values: dict[str, Any]) -> int:
    """How often trials of ``values`` evaluate (their ``eval_every``, the default where unset)."""
    return trial_config(values, {}).eval_every


def check_reports_during_training(spec: SpaceSpec) -> None:
    """ASHA compares trials between evaluations: refuse ``eval_every: 0`` (one report, at the end).

    Checked where the value comes from: the trial section (its default is 0), every searched value
    and every point to evaluate. Sheet rows are checked once the sheet is read (``check_rows_report``);
    with ``searcher: grid`` they are the trials, so the trial section alone decides nothing.
    """
    if spec.scheduler.type != "asha":
        return
    if "eval_every" in spec.search:
        for field, value in domain_candidates(spec.search["eval_every"]):
            if eval_every_of(trial_values(spec.trial, {"eval_every": value})) == 0:
                raise SpaTuneError(f"search.eval_every.{field}: 0 {REPORTS_ONCE}")
        for i, point in enumerate(spec.searcher.points_to_evaluate):
            if "eval_every" in point and eval_every_of(trial_values(spec.trial, point)) == 0:
                raise SpaTuneError(f"searcher.points_to_evaluate[{i}].eval_every: 0 {REPORTS_ONCE}")
        return
    if spec.grid_from_sheet is not None and spec.searcher.type == "grid":
        return
    if eval_every_of(spec.trial) == 0:
        default = "" if "eval_every" in spec.trial else " (the default)"
        raise SpaTuneError(f"trial.eval_every: 0{default} {REPORTS_ONCE}")


def validate_space(data: dict[str, Any], source: str, set_paths: set[str] | None = None) -> SpaceSpec:
    """A checked ``SpaceSpec`` from plain data; errors name ``source`` (or ``--set`` for set paths)."""
    set_paths = set_paths or set()
    try:
        spec = SpaceSpec(**data)
        check_space(spec)
    except ValidationError as err:
        message = describe_validation_error(err)
        raise SpaTuneError(f"{_source_of(message, source, set_paths)}: {message}") from None
    except SpaTuneError as err:
        message = str(err)
        raise SpaTuneError(f"{_source_of(message, source, set_paths)}: {message}") from None
    return spec


def _source_of(message: str, source: str, set_paths: set[str]) -> str:
    path = message.split(":", 1)[0].split("[", 1)[0]
    for set_path in set_paths:
        if path == set_path or path.startswith(set_path + ".") or set_path.startswith(path + "."):
            return "--set"
    return source


def load_space(path: str | Path, overrides: list[str] | None = None) -> SpaceSpec:
    """Read, override and check a space file, its data files and model folders included.

    A relative ``grid_from_sheet.path`` in the file is relative to the file's folder; one given by
    ``--set`` or ``--sheet`` is relative to the current folder.
    """
    data = read_yaml_mapping(path, what="space sections")
    sheet = data.get("grid_from_sheet")
    if isinstance(sheet, dict) and isinstance(sheet.get("path"), str):
        sheet["path"] = str((Path(path).parent / Path(sheet["path"]).expanduser()).resolve())
    data, set_paths = apply_overrides(data, overrides)
    if "grid_from_sheet.path" in set_paths and isinstance(data["grid_from_sheet"]["path"], str):
        data["grid_from_sheet"]["path"] = str(Path(data["grid_from_sheet"]["path"]).expanduser().resolve())
    spec = validate_space(data, str(path), set_paths)
    try:
        check_space_inputs(spec)  # data files and model folders, before any cluster work
    except SpaTuneError as err:
        raise SpaTuneError(f"{_source_of(str(err), str(path), set_paths)}: {err}") from None
    make_inputs_absolute(spec)  # trials run in their own folders, on any node
    return spec


def planned_trials(spec: SpaceSpec, sheet_rows: int | None = None) -> str:
    """How many trials a space asks for, in words (``sheet_rows``: rows selected from its sheet)."""
    if sheet_rows is not None and spec.searcher.type == "grid":
        return f"{sheet_rows} trials, one per selected sheet row"
    if sheet_rows is not None:
        return f"{spec.num_samples} trials proposed by optuna ({spec.searcher.sampler}), the {sheet_rows} sheet rows first"
    grid = 1
    for domain in spec.search.values():
        if domain.type == "grid":
            grid *= len(domain.values)
    count = grid * spec.num_samples  # each point to evaluate replaces one sample
    if spec.searcher.type == "optuna":
        return f"{spec.num_samples} trials proposed by optuna ({spec.searcher.sampler})"
    return f"{count} trials ({spec.searcher.type} searcher, {grid} grid point(s) x {spec.num_samples} sample(s))"
