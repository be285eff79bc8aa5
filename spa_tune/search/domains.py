"""Search-space domains of a space file as Ray Tune sampling domains."""

from __future__ import annotations

from typing import Any

from ray import tune

from ..spec.space import IntDomain, RangeDomain, SpaceSpec, ValuesDomain


def tune_domain(domain: ValuesDomain | RangeDomain | IntDomain) -> Any:
    """The Ray Tune domain for one ``search`` entry."""
    if isinstance(domain, ValuesDomain):
        return tune.grid_search(domain.values) if domain.type == "grid" else tune.choice(domain.values)
    if isinstance(domain, IntDomain):
        return getattr(tune, domain.type)(domain.low, domain.high)
    if domain.type in ("quniform", "qloguniform"):
        return getattr(tune, domain.type)(domain.low, domain.high, domain.q)
    return getattr(tune, domain.type)(domain.low, domain.high)


def param_space(spec: SpaceSpec) -> dict[str, Any]:
    """Ray Tune ``param_space``: one domain per searched trial key (fixed keys travel separately)."""
    return {key: tune_domain(domain) for key, domain in spec.search.items()}
