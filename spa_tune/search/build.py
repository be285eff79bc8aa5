"""Build the Ray Tune searcher and scheduler a space file asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, Searcher, SearchAlgorithm

from ..config import TrialConfig
from ..spec.space import SpaceSpec
from .stratified_asha import StratifiedASHA

OPTUNA_DB = "optuna.db"
DECISIONS_FILE = "scheduler_decisions.jsonl"


def optuna_storage_url(experiment_dir: str | Path) -> str:
    """SQLite URL of the Optuna study kept inside the experiment folder."""
    return f"sqlite:///{Path(experiment_dir).resolve() / OPTUNA_DB}"


def build_searcher(spec: SpaceSpec, experiment_dir: str | Path) -> SearchAlgorithm | Searcher:
    """Ray's variant generator (grid, random) or ``OptunaSearch`` with a study stored on disk."""
    searcher = spec.searcher
    if searcher.type != "optuna":
        return BasicVariantGenerator(
            points_to_evaluate=searcher.points_to_evaluate or None,
            max_concurrent=spec.max_concurrent_trials or 0,
            random_state=searcher.seed,
        )
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    single = len(searcher.metrics) == 1
    if searcher.sampler == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(population_size=nsga2_population(spec), seed=searcher.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=searcher.seed)
    search = OptunaSearch(
        metric=searcher.metrics[0] if single else searcher.metrics,
        mode=searcher.modes[0] if single else searcher.modes,
        points_to_evaluate=[dict(p) for p in searcher.points_to_evaluate] or None,
        sampler=sampler,
        study_name=spec.name,
        storage=optuna.storages.RDBStorage(optuna_storage_url(experiment_dir)),
    )
    return search


def nsga2_population(spec: SpaceSpec) -> int:
    """NSGA-II's generation size: as set, else a quarter of the trials (2 to 50), so it evolves."""
    if spec.searcher.population_size:
        return spec.searcher.population_size
    return max(2, min(50, spec.num_samples // 4))


def scheduler_max_t(spec: SpaceSpec) -> float:
    """``max_t``; for ``time_attr: epoch`` it defaults to the trial's ``num_train_epochs``."""
    if spec.scheduler.max_t is not None:
        return spec.scheduler.max_t
    return float(spec.trial.get("num_train_epochs", TrialConfig.model_fields["num_train_epochs"].default))


def build_scheduler(spec: SpaceSpec, experiment_dir: str | Path) -> TrialScheduler:
    """Stratified ASHA (default), plain ASHA (``stratify_by: none``) or no early stopping."""
    sched = spec.scheduler
    if sched.type == "none":
        return FIFOScheduler()
    settings: dict[str, Any] = dict(
        metric=sched.metric, mode=sched.mode, time_attr=sched.time_attr, grace_period=sched.grace_period,
        max_t=scheduler_max_t(spec), reduction_factor=sched.reduction_factor,
    )
    if sched.stratify_by == "none":
        return AsyncHyperBandScheduler(**settings)
    return StratifiedASHA(
        **settings,
        stratify_by=sched.stratify_keys or None,
        fixed_config=spec.trial,
        decisions_file=Path(experiment_dir) / DECISIONS_FILE,
    )
