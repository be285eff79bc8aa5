"""SPLoPA: Structured Pruning Low-rank PHM Adapter (Hedegaard et al., arXiv 2211.10155)."""

from .layer import SplopaLinear, SplopaPrototypes

__all__ = ["SplopaLinear", "SplopaPrototypes"]
