"""``spa-tune --space F`` and ``spa-tune resume DIR``: a Ray Tune experiment from a checked space.

The pipeline: space (checked) -> experiment folder and parent MLflow run -> Ray session ->
``Tuner`` (searcher, scheduler, trainable with resources) -> results table, Pareto plot, summary.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import SpaTuneError
from ..layout import trial_folder_name
from ..sheet.outcome import save_writer
from ..sheet.plan import check_rows_report, load_plan, plan_sheet, save_plan
from ..spec.space import SpaceSpec
from ..storage import START_FILES, check_artifact_store, check_experiment_storage
from ..tracking.mlflow_runs import (
    EXPERIMENT_DIR_TAG,
    TUNE_PATH_TAG,
    ExperimentRuns,
    absolute_tracking_uri,
    check_tracking_server,
    default_tracking_uri,
    is_local_store,
    quiet_mlflow_logs,
    start_parent_run,
)
from ..trial_values import default_of
from .finish import ExperimentOutcome, finish_experiment
from .folder import (
    create_experiment_dir,
    feature_cache_location,
    is_uri,
    load_experiment,
    refuse_existing,
    save_beside_trials,
    save_state,
    tune_experiment_path,
    tune_storage,
)
from .ray_session import ray_session

log = logging.getLogger("spa_tune.experiment")


def quiet_tracking_logs() -> None:
    """MLflow and its database migrations log every table they create; keep warnings only.

    Tune also warns whenever its state snapshots come quickly, which short trials always do.
    """
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    quiet_mlflow_logs()


def parent_params(spec: SpaceSpec) -> dict[str, object]:
    """What the parent run records: searcher, scheduler, resources, fixed and searched keys."""
    params: dict[str, object] = {
        "searcher": spec.searcher.type,
        "num_samples": spec.num_samples,
        "scheduler": spec.scheduler.type,
        "resources.cpu": spec.resources.cpu,
        "resources.gpu": spec.resources.gpu,
        "max_concurrent_trials": spec.max_concurrent_trials,
    }
    if spec.searcher.type == "optuna":
        params.update({"searcher.sampler": spec.searcher.sampler, "searcher.metric": spec.searcher.metric})
    if spec.scheduler.type == "asha":
        params.update({f"scheduler.{k}": v for k, v in spec.scheduler.model_dump().items() if k != "type"})
    params.update({f"trial.{k}": v for k, v in spec.trial.items()})
    params.update({f"search.{k}": d.model_dump(exclude_none=True) for k, d in spec.search.items()})
    return params


def open_tracking(spec: SpaceSpec, folder: Path) -> ExperimentRuns:
    """Create the MLflow experiment (if new) and the parent run, before any trial starts."""
    uri = absolute_tracking_uri(spec.mlflow.tracking_uri) if spec.mlflow.tracking_uri else default_tracking_uri(folder)
    artifacts = (folder / "mlartifacts").as_uri() if is_local_store(uri) else None
    try:
        runs = start_parent_run(uri, spec.mlflow.experiment_name or spec.name, spec.name, parent_params(spec), artifacts)
        # where the experiment's files and trials are: `spa-tune export RUN_ID` finds a trial's checkpoints
        runs.client().set_tag(runs.parent_run_id, EXPERIMENT_DIR_TAG, str(folder))
        runs.client().set_tag(runs.parent_run_id, TUNE_PATH_TAG, tune_experiment_path(spec, folder))
        return runs
    except Exception as err:  # an unreachable server or a bad URI must fail before Ray starts
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpaTuneError(f"mlflow.tracking_uri {uri}: {first_line}") from None


def trial_dirname(trial) -> str:
    """Short trial names and folders (``trial_<id>``) instead of Ray's parameter-laden default."""
    return trial_folder_name(trial.trial_id)


def build_tuner(spec: SpaceSpec, folder: Path, runs: ExperimentRuns, restore: bool, plan=None):
    """A ``Tuner`` for the space, or one restored from the experiment folder.

    ``plan`` (a ``SheetPlan``) makes sheet rows the trials or the searcher's first points; with
    ``write_back`` each finished row's results go into the sheet as the trial ends.
    """
    from ray import tune

    from ..search.build import build_scheduler, build_searcher
    from ..search.domains import param_space
    from ..sheet.plan import row_points
    from .callbacks import SheetResults, TrialOutcomeTags
    from .trainable import TrialContext, make_trainable

    cache = {"feature_cache": feature_cache_location(spec, folder)}  # the trial section's own value wins
    context = TrialContext(
        fixed={**cache, **spec.trial}, runs=runs, cpus=spec.resources.cpu, gpus=spec.resources.gpu,
        stratum_keys=tuple(spec.scheduler.stratify_keys),
        sheet_rows={row: {**cache, **values} for row, values in plan.values().items()} if plan else {},
        sheet_origins=plan.origins() if plan else {},
    )
    callbacks = [TrialOutcomeTags(runs)]
    if plan is not None and spec.grid_from_sheet.write_back:
        callbacks.append(SheetResults(folder, runs, plan))
    trainable = tune.with_resources(make_trainable(context), {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    if restore:
        # the callbacks were saved with the experiment; they keep no state of their own
        return tune.Tuner.restore(
            tune_experiment_path(spec, folder), trainable, resume_unfinished=True, resume_errored=True
        )
    keep = spec.trial.get("keep_checkpoints", default_of("keep_checkpoints"))
    run_config = tune.RunConfig(
        name=spec.name,
        storage_path=tune_storage(spec, folder),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=keep),
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        sync_config=tune.SyncConfig(sync_artifacts=True),
        callbacks=callbacks,
    )
    tune_config = tune.TuneConfig(
        search_alg=build_searcher(spec, folder, row_points(plan, spec) if plan and spec.searcher.type == "optuna" else None),
        scheduler=build_scheduler(spec, folder, plan.values() if plan else None),
        num_samples=spec.num_samples,
        # the variant generator limits concurrency itself; Tune's limiter only wraps Searchers
        max_concurrent_trials=spec.max_concurrent_trials if spec.searcher.type == "optuna" else None,
        reuse_actors=True,
        trial_name_creator=trial_dirname,
        trial_dirname_creator=trial_dirname,
    )
    rows = [r.row for r in plan.rows] if plan else None
    return tune.Tuner(trainable, param_space=param_space(spec, rows), tune_config=tune_config, run_config=run_config)


def check_resources(spec: SpaceSpec, available: dict, attached: bool) -> None:
    """A trial asking for more than the cluster has would wait forever: refuse (or warn on a cluster)."""
    for key, name in (("cpu", "CPU"), ("gpu", "GPU")):
        wanted, have = getattr(spec.resources, key), float(available.get(name, 0))
        if wanted > have:
            message = f"resources.{key}: a trial asks for {wanted:g} {name}s, the Ray cluster has {have:g}"
            if not attached:
                raise SpaTuneError(message + " (lower it with --set resources." + key + "=...)")
            log.warning("%s; trials wait until the cluster has them", message)


def check_shared_storage(spec: SpaceSpec, nodes: int) -> None:
    """On several nodes, trials write checkpoints and (by default) MLflow runs under ``storage_path``.

    A folder only the driver's machine has would silently split the experiment across machines,
    so a multi-node cluster needs ``shared_storage: true`` (the path is mounted on every node).
    """
    if nodes <= 1:
        return
    local_mlflow = not (spec.mlflow.tracking_uri or "").startswith(("http://", "https://"))
    if is_uri(spec.storage_path):  # Ray Tune reaches the URI from every node; MLflow must too
        if local_mlflow:  # the default store would be a file in local_dir, on the driver's machine only
            raise SpaTuneError(
                f"mlflow.tracking_uri: the Ray cluster has {nodes} nodes and trials log to MLflow from each of them: "
                "give an http:// tracking server every node reaches (the head's, see cluster/gpu.yaml)"
            )
        return
    if spec.shared_storage:
        return
    what = "the experiment folder and the MLflow store" if local_mlflow else "the experiment folder"
    raise SpaTuneError(
        f"storage_path: {spec.storage_path} is a local folder but the Ray cluster has {nodes} nodes and {what} must "
        "be reachable from every node: put storage_path on storage every node mounts at the same path and set "
        "shared_storage: true"
    )


def alive_nodes() -> int:
    """Number of live nodes of the Ray cluster this driver is connected to."""
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


def attached(address: str | None) -> bool:
    """Whether the experiment joins a running cluster rather than a Ray started for it."""
    return bool(address or os.environ.get("RAY_ADDRESS"))


def plan_write_back(spec: SpaceSpec):
    """The sheet write-back a space asks for, checked (target writable, columns present) before Ray."""
    settings = spec.grid_from_sheet
    if settings is None or not settings.write_back:
        return None
    from ..sheet.write import SheetWriteBack

    return SheetWriteBack.plan(Path(settings.path), settings.sheet, in_place=settings.in_place)


def run_experiment(spec: SpaceSpec, source: str, address: str | None = None) -> ExperimentOutcome:
    """Start a new experiment from a checked space.

    Everything that can be checked without Ray is checked first (tracking server, an existing
    experiment); the folder and the parent run are created once Ray is up and has room for a trial.
    """

    quiet_tracking_logs()
    problem = spec.mlflow.tracking_uri and check_tracking_server(spec.mlflow.tracking_uri)
    if problem:
        raise SpaTuneError(f"mlflow.tracking_uri {spec.mlflow.tracking_uri}: cannot reach the server: {problem}")
    check_artifact_store(spec.mlflow.tracking_uri)
    check_experiment_storage(spec.storage_path)  # a bucket that answers: before Ray, before anything is written
    refuse_existing(spec)
    plan = plan_sheet(spec, source)
    check_rows_report(plan, spec, source)
    writer = plan_write_back(spec)
    with ray_session(address) as available:
        check_resources(spec, available, attached(address))
        check_shared_storage(spec, alive_nodes())
        folder = create_experiment_dir(spec)
        save_beside_trials(spec, folder, START_FILES[:1])  # the first write to storage_path, before any trial
        runs = open_tracking(spec, folder)
        save_state(folder, runs, source)
        save_beside_trials(spec, folder, START_FILES)  # report and export find the experiment in the bucket
        if plan is not None:
            save_plan(folder, plan)
        if writer is not None:
            save_writer(folder, writer)
        build_tuner(spec, folder, runs, restore=False, plan=plan).fit()
    return finish_experiment(spec, folder, runs, plan)


def resume_experiment(folder: str | Path, address: str | None = None) -> ExperimentOutcome:
    """Continue an interrupted experiment: finished trials stay, the others go on from checkpoints."""
    from ray import tune

    quiet_tracking_logs()
    folder, spec, runs = load_experiment(folder)
    plan = load_plan(folder)
    check_experiment_storage(spec.storage_path)
    if not tune.Tuner.can_restore(tune_experiment_path(spec, folder)):
        raise SpaTuneError(f"{folder}: Ray Tune saved no experiment state here yet; start it again with --space")
    problem = check_tracking_server(runs.tracking_uri)
    if problem:
        raise SpaTuneError(f"{folder}: MLflow tracking server {runs.tracking_uri} unreachable: {problem}")
    check_artifact_store(runs.tracking_uri)
    with ray_session(address) as available:
        check_resources(spec, available, attached(address))
        check_shared_storage(spec, alive_nodes())
        runs.client().update_run(runs.parent_run_id, status="RUNNING")
        build_tuner(spec, folder, runs, restore=True, plan=plan).fit()
    return finish_experiment(spec, folder, runs, plan)
