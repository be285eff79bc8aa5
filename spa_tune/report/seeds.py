"""Seed groups: completed trials whose configuration is identical except for ``seed``, with mean and spread.

A one-seed difference of a few F1 points can be noise; a setting run with several seeds shows how
large that noise is. A row's configuration is its ``config`` mapping when it has one (the report
attaches it: an experiment's fixed trial values and the row's searched values, or a trial run's
MLflow params), else the row's own trial keys; missing keys take ``TrialConfig``'s defaults.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import NO_RESULT_KEYS
from ..trial_values import TRIAL_DEFAULTS as DEFAULTS
from ..trial_values import trial_values, with_defaults
from .values import number, parse_value

SEED_KEY = "seed"
GROUP_METRICS = ("em", "f1", "remaining_pct", "learned_pct")
METHOD_ORDER = {"dense": 0, "fine-pruning": 1, "splopa": 2}


@dataclass(frozen=True)
class Spread:
    """One metric over a group's trials: how many had it, mean, sample standard deviation, min, max."""

    n: int
    mean: float | None
    sd: float | None
    min: float | None
    max: float | None


@dataclass
class SeedGroup:
    """Trials that differ only in ``seed``.

    ``setting``: ``method`` and the other keys whose values differ between the trials grouped (what
    tells this group from the others); ``config``: the configuration they share, without ``seed`` and
    the keys that never change a result; ``stats``: a ``Spread`` per metric of ``GROUP_METRICS``.
    """

    setting: dict[str, Any]
    config: dict[str, Any]
    seeds: list[Any]
    trial_ids: list[str]
    experiments: list[str]
    stats: dict[str, Spread]

    @property
    def n(self) -> int:
        """How many trials the group has."""
        return len(self.trial_ids)

    @property
    def repeated(self) -> bool:
        """Whether at least two different seeds ran: only then is its spread a seed spread."""
        return len(set(self.seeds)) >= 2


def canonical(value: Any) -> Any:
    """A trial value as one comparable form, whatever it was read from: YAML, a CSV cell, an MLflow param.

    Everything goes through its text (``True`` and ``"True"`` agree, so do ``None`` and ``"None"``),
    and whole floats become ints (``1.0`` from MLflow equals ``1`` from YAML).
    """
    value = parse_value(value if isinstance(value, str) else str(value))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def row_config(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's full trial configuration, in canonical values: ``TrialConfig``'s defaults, then its
    ``config`` mapping if it has one, else its own trial keys (empty cells count as unset)."""
    given = row.get("config") if isinstance(row.get("config"), Mapping) else row
    explicit = {key: value for key, value in given.items() if key in DEFAULTS and value not in (None, "")}
    return {key: canonical(value) for key, value in with_defaults(explicit).items()}


def with_config(rows: Iterable[dict], fixed: Mapping[str, Any], searched: Sequence[str]) -> list[dict]:
    """Rows of a results table with their ``config``: the experiment's fixed trial values, then the row's
    method, pruning method and searched values.

    An empty searched cell is an explicit null where the key's default is null (``regularization:
    null``), otherwise a value the trial did not set (the fixed one applies).
    """
    out = []
    for row in rows:
        given = {}
        for key in ("method", "pruning_method", *searched):
            value = row.get(key)
            if key in DEFAULTS and (value not in (None, "") or DEFAULTS[key] is None):
                given[key] = None if value == "" else value
        out.append({**row, "config": trial_values(fixed, given)})
    return out


def spread(values: Iterable[Any]) -> Spread:
    """Mean, sample standard deviation (n - 1), min and max of the finite numbers among ``values``."""
    found = [v for v in (number(value) for value in values) if v is not None]
    if not found:
        return Spread(0, None, None, None, None)
    sd = statistics.stdev(found) if len(found) >= 2 else None
    return Spread(len(found), statistics.fmean(found), sd, min(found), max(found))


def grouping_key(config: Mapping[str, Any]) -> tuple:
    """What trials of one group share: every key but ``seed`` and the keys that never change a result."""
    return tuple((key, repr(value)) for key, value in sorted(config.items())
                 if key != SEED_KEY and key not in NO_RESULT_KEYS)


def seed_groups(rows: Sequence[Mapping[str, Any]], statuses: Sequence[str] = ("completed",)) -> list[SeedGroup]:
    """Group the rows (of ``statuses``) whose configuration is identical except for ``seed``.

    Every group is returned, one-trial groups included (``SeedGroup.repeated`` tells which have a
    spread); dense first, then by method and setting; a group's trials by seed. A trial stopped early or failed has no final
    result to compare, so only completed trials count by default.
    """
    counted = [(row, row_config(row)) for row in rows if row.get("status") in statuses]
    keys = [grouping_key(config) for _, config in counted]
    varying = [key for key in DEFAULTS if key != SEED_KEY and key not in NO_RESULT_KEYS
               and len({repr(config[key]) for _, config in counted}) > 1]
    members: dict[tuple, list[tuple[Mapping, dict]]] = {}
    for key, pair in zip(keys, counted):
        members.setdefault(key, []).append(pair)
    groups = []
    for pairs in members.values():
        experiments = list(dict.fromkeys(str(row["experiment"]) for row, _ in pairs if "experiment" in row))
        pairs.sort(key=lambda pair: (str(type(pair[1][SEED_KEY])), pair[1][SEED_KEY]))  # by seed
        config = {k: v for k, v in pairs[0][1].items() if k != SEED_KEY and k not in NO_RESULT_KEYS}
        setting = {"method": config["method"], **{k: config[k] for k in varying if k != "method"}}
        groups.append(SeedGroup(
            setting=setting,
            config=config,
            seeds=[config_[SEED_KEY] for _, config_ in pairs],
            trial_ids=[str(row.get("trial_id", "")) for row, _ in pairs],
            experiments=experiments,  # in the order of the rows
            stats={metric: spread(row.get(metric) for row, _ in pairs) for metric in GROUP_METRICS},
        ))
    return sorted(groups, key=lambda g: (METHOD_ORDER.get(g.setting["method"], 3), str(g.setting["method"]),
                                         [repr(v) for v in g.setting.values()]))


def repeated_groups(rows: Sequence[Mapping[str, Any]]) -> list[SeedGroup]:
    """The seed groups of ``rows`` with at least two different seeds: the ones that show a spread."""
    return [group for group in seed_groups(rows) if group.repeated]
