"""Search-space domains of a space file as Ray Tune sampling domains."""

from __future__ import annotations

from typing import Any

from ray import tune

from ..spec.space import IntDomain, RangeDomain, SpaceSpec, ValuesDomain
from ..trial_values import SHEET_ROW


def tune_domain(domain: ValuesDomain | RangeDomain | IntDomain) -> Any:
    """The Ray Tune domain for one ``search`` entry."""
    if isinstance(domain, ValuesDomain):
        return tune.grid_search(domain.values) if domain.type == "grid" else tune.choice(domain.values)
    if isinstance(domain, IntDomain):
        return getattr(tune, domain.type)(domain.low, domain.high)
    if domain.type in ("quniform", "qloguniform"):
        return getattr(tune, domain.type)(domain.low, domain.high, domain.q)
    return getattr(tune, domain.type)(domain.low, domain.high)


def param_space(spec: SpaceSpec, sheet_rows: list[int] | None = None) -> dict[str, Any]:
    """Ray Tune ``param_space``: one domain per searched trial key (fixed keys travel separately).

    With sheet rows and the grid searcher, the grid is the rows themselves (``sheet_row``).
    """
    if sheet_rows and spec.searcher.type == "grid":
        return {SHEET_ROW: tune.grid_search(list(sheet_rows))}
    return {key: tune_domain(domain) for key, domain in spec.search.items()}
