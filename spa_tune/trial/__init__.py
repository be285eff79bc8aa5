"""One prune-and-adapt trial: train, evaluate, count, checkpoint and report (free of Ray)."""

from .runner import run_trial

__all__ = ["run_trial"]
