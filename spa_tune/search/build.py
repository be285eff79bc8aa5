"""Build the Ray Tune searcher and scheduler a space file asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, SearchAlgorithm, Searcher

from ..spec.space import SpaceSpec
from ..trial_values import default_of
from .diverged import DivergedTrialsFail
from .sheet_seeded import SheetSeededSearch
from .stratified_asha import StratifiedASHA

OPTUNA_DB = "optuna.db"
DECISIONS_FILE = "scheduler_decisions.jsonl"


def optuna_storage_url(experiment_dir: str | Path) -> str:
    """SQLite URL of the Optuna study kept inside the experiment folder."""
    return f"sqlite:///{Path(experiment_dir).resolve() / OPTUNA_DB}"


def build_searcher(
    spec: SpaceSpec, experiment_dir: str | Path, row_points: dict[int, dict[str, Any]] | None = None
) -> SearchAlgorithm | Searcher:
    """Ray's variant generator (grid, random) or ``OptunaSearch`` with a study stored on disk.

    ``row_points`` (sheet rows seeding Optuna) are evaluated first, each trial tagged with its row;
    a trial that diverged is told to the study as failed.
    """
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
    points = list(row_points.values()) if row_points else [dict(p) for p in searcher.points_to_evaluate]
    if searcher.sampler == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(population_size=nsga2_population(spec), seed=searcher.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=searcher.seed)
    search = OptunaSearch(
        metric=searcher.metrics[0] if single else searcher.metrics,
        mode=searcher.modes[0] if single else searcher.modes,
        points_to_evaluate=points or None,
        sampler=sampler,
        study_name=spec.name,
        storage=optuna.storages.RDBStorage(optuna_storage_url(experiment_dir)),
    )
    # a diverged trial ends without raising (see diverged.py): the study still records it as failed
    return DivergedTrialsFail(SheetSeededSearch(search, row_points) if row_points else search)


def nsga2_population(spec: SpaceSpec) -> int:
    """NSGA-II's generation size: as set, else a quarter of the trials (2 to 50), so it evolves."""
    if spec.searcher.population_size:
        return spec.searcher.population_size
    return max(2, min(50, spec.num_samples // 4))


def scheduler_max_t(spec: SpaceSpec, sheet_rows: dict[int, dict[str, Any]] | None = None) -> float:
    """``max_t``; for ``time_attr: epoch`` it defaults to the trials' ``num_train_epochs`` (the longest row's)."""
    if spec.scheduler.max_t is not None:
        return spec.scheduler.max_t
    default = default_of("num_train_epochs")
    configs = list((sheet_rows or {}).values()) or [spec.trial]
    return max(float(config.get("num_train_epochs", default)) for config in configs)


def build_scheduler(
    spec: SpaceSpec, experiment_dir: str | Path, sheet_rows: dict[int, dict[str, Any]] | None = None
) -> TrialScheduler:
    """Stratified ASHA (default), plain ASHA (``stratify_by: none``) or no early stopping.

    ``sheet_rows`` (row -> trial values) let stratified ASHA find the density of a sheet row's trial.
    """
    sched = spec.scheduler
    if sched.type == "none":
        return FIFOScheduler()
    settings: dict[str, Any] = dict(
        metric=sched.metric, mode=sched.mode, time_attr=sched.time_attr, grace_period=sched.grace_period,
        max_t=scheduler_max_t(spec, sheet_rows), reduction_factor=sched.reduction_factor,
    )
    if sched.stratify_by == "none":
        return AsyncHyperBandScheduler(**settings)
    return StratifiedASHA(
        **settings,
        stratify_by=sched.stratify_keys or None,
        fixed_config=spec.trial,
        decisions_file=Path(experiment_dir) / DECISIONS_FILE,
        sheet_rows=sheet_rows,
    )
