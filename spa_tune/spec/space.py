"""The search-space file: a typed schema (pydantic) for everything ``spa-tune --space`` reads.

A space file has a fixed ``trial`` section (any trial key), a ``search`` section (one domain per
trial key), and the experiment's searcher, scheduler, resources, storage and MLflow settings.
Every section is checked here, before Ray starts; ``check_space`` also validates the trial section
combined with each end of every searched range, so a bad corner fails now rather than on a node.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import TRIAL_KEYS

# Trial keys the experiment sets itself for every trial.
RESERVED_TRIAL_KEYS = ("output_dir",)
# Metrics a trial reports that a searcher or scheduler may optimise.
METRICS = ("f1", "em", "remaining_pct", "learned_pct", "learned_params", "remaining_params", "loss")
TIME_ATTRS = ("step", "epoch", "training_iteration", "time_total_s")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ValuesDomain(_Strict):
    """``grid`` (every value, crossed with the other grids) or ``choice`` (one sampled value)."""

    type: Literal["grid", "choice"] = Field(description="`grid`: every value, crossed with the other grids; `choice`: one sampled value")
    values: list[Any] = Field(min_length=1, description="the values, each a valid value of the trial key")


class RangeDomain(_Strict):
    """A continuous range; ``q`` rounds to multiples of q for the q-variants."""

    type: Literal["uniform", "loguniform", "quniform", "qloguniform"] = Field(
        description="sampled uniformly, or uniformly in log space (`log...`, low > 0)")
    low: float = Field(description="lower end (included)")
    high: float = Field(description="upper end, above low")
    q: float | None = Field(None, gt=0, description="q-variants only: round to multiples of q")

    @model_validator(mode="after")
    def _check(self) -> RangeDomain:
        if self.low >= self.high:
            raise ValueError(f"low: {self.low} must be smaller than high ({self.high})")
        if self.type.startswith("log") or self.type == "qloguniform":
            if self.low <= 0:
                raise ValueError(f"low: {self.low} must be > 0 for {self.type}")
        if self.type.startswith("q") and self.q is None:
            raise ValueError(f"q: {self.type} needs a rounding step q")
        if not self.type.startswith("q") and self.q is not None:
            raise ValueError(f"q: only quniform and qloguniform take q, not {self.type}")
        return self


class IntDomain(_Strict):
    """An integer range ``low <= x < high`` (``high`` excluded, as in Ray Tune)."""

    type: Literal["randint", "lograndint"] = Field(description="an integer, uniform or log-uniform (low > 0)")
    low: int = Field(description="lower end (included)")
    high: int = Field(description="upper end (excluded, as in Ray Tune)")

    @model_validator(mode="after")
    def _check(self) -> IntDomain:
        if self.low >= self.high:
            raise ValueError(f"low: {self.low} must be smaller than high ({self.high})")
        if self.type == "lograndint" and self.low <= 0:
            raise ValueError(f"low: {self.low} must be > 0 for lograndint")
        return self


Domain = Annotated[ValuesDomain | RangeDomain | IntDomain, Field(discriminator="type")]
DOMAIN_TYPES = ("grid", "choice", "uniform", "loguniform", "quniform", "qloguniform", "randint", "lograndint")


class SearcherSpec(_Strict):
    """How configurations are proposed: Ray's variant generator or an Optuna study."""

    type: Literal["grid", "random", "optuna"] = Field(
        "grid", description="`grid` (grid domains only, every combination `num_samples` times), `random` (Ray's "
        "variant generator: grids crossed, distributions sampled) or `optuna` (Ray Tune's OptunaSearch; `choice`, "
        "not grid)")
    sampler: Literal["tpe", "nsga2"] = Field("tpe", description="optuna only: `tpe`, or `nsga2` for several objectives")
    metric: str | list[str] = Field(
        "f1", description="reported metric to optimise, or a list of them (several objectives: optuna)")
    mode: Literal["max", "min"] | list[Literal["max", "min"]] = Field(
        "max", description="`max` or `min`, one per metric")
    seed: int | None = Field(0, description="seed of the searcher's sampling")
    population_size: int | None = Field(
        None, ge=2, description="nsga2 only: trials per generation (default a quarter of `num_samples`, 2 to 50)")
    points_to_evaluate: list[dict[str, Any]] = Field(
        default_factory=list, description="configurations of searched keys tried first, in order; each replaces "
        "one of `num_samples`")

    @model_validator(mode="after")
    def _check(self) -> SearcherSpec:
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        modes = self.mode if isinstance(self.mode, list) else [self.mode]
        for metric in metrics:
            if metric not in METRICS:
                raise ValueError(f"metric: unknown metric {metric!r} (one of {', '.join(METRICS)})")
        if len(metrics) != len(modes):
            raise ValueError(f"mode: {len(modes)} mode(s) for {len(metrics)} metric(s)")
        if len(metrics) > 1 and self.type != "optuna":
            raise ValueError("metric: several objectives need searcher type optuna")
        if self.type == "optuna" and self.sampler == "nsga2" and len(metrics) < 2:
            raise ValueError("sampler: nsga2 is for several objectives (metric: [f1, remaining_pct])")
        return self

    @property
    def metrics(self) -> list[str]:
        """The objectives as a list."""
        return self.metric if isinstance(self.metric, list) else [self.metric]

    @property
    def modes(self) -> list[str]:
        """The optimisation directions as a list, one per objective."""
        return self.mode if isinstance(self.mode, list) else [self.mode]


class SchedulerSpec(_Strict):
    """ASHA early stopping, stratified by target density unless ``stratify_by: none``."""

    type: Literal["asha", "none"] = Field("asha", description="`asha` (early stopping) or `none`")
    metric: str = Field("f1", description="reported metric ASHA compares trials on")
    mode: Literal["max", "min"] = Field("max", description="`max` or `min`")
    time_attr: str = Field(
        "epoch", description="`epoch`, `step`, `training_iteration` (evaluations) or `time_total_s`: the unit of "
        "`grace_period` and `max_t`")
    grace_period: float = Field(1.0, gt=0, description="time a trial runs before it can be stopped")
    max_t: float | None = Field(None, gt=0, description="time of the last rung (default: the trial's epochs)")
    reduction_factor: float = Field(3.0, gt=1, description="one trial in this many continues at each rung")
    stratify_by: str | list[str] = Field(
        "auto", description="`auto` (method and target density), `none` (plain ASHA) or trial key(s)")

    @model_validator(mode="after")
    def _check(self) -> SchedulerSpec:
        if self.metric not in METRICS:
            raise ValueError(f"metric: unknown metric {self.metric!r} (one of {', '.join(METRICS)})")
        if self.time_attr not in TIME_ATTRS:
            raise ValueError(f"time_attr: {self.time_attr!r} is not one of {', '.join(TIME_ATTRS)}")
        if self.max_t is not None and self.max_t < self.grace_period:
            raise ValueError(f"max_t: {self.max_t} is smaller than grace_period ({self.grace_period})")
        for key in self.stratify_keys:
            if key not in TRIAL_KEYS:
                raise ValueError(f"stratify_by: {key!r} is not a trial key")
        return self

    @property
    def stratify_keys(self) -> list[str]:
        """Trial keys named by ``stratify_by`` (empty for ``auto`` and ``none``)."""
        keys = self.stratify_by if isinstance(self.stratify_by, list) else [self.stratify_by]
        return [k for k in keys if k not in ("auto", "none")]


class ResourcesSpec(_Strict):
    """What Ray reserves for one trial; fractional GPUs let several trials share one."""

    cpu: float = Field(1.0, gt=0, description="CPUs Ray reserves per trial")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial; a fraction (0.5) shares a GPU, above 1 whole numbers")

    @model_validator(mode="after")
    def _check(self) -> ResourcesSpec:
        if self.gpu > 1 and self.gpu != int(self.gpu):
            raise ValueError(f"gpu: {self.gpu} - more than one GPU must be a whole number")
        return self


class MlflowSpec(_Strict):
    """Where runs are logged: a local database under the experiment folder unless a URI is given."""

    tracking_uri: str | None = Field(
        None, description="default `sqlite:///<experiment folder>/mlflow.db`; any `http://` tracking server works")
    experiment_name: str | None = Field(None, description="MLflow experiment (default: the space's `name`)")


class SheetSpec(_Strict):
    """Rows of an experiment sheet as the trials (``searcher: grid``) or as Optuna's first points."""

    path: str = Field(description="the .xlsx file, relative to the space file")
    sheet: str | None = Field(
        None, description="worksheet (default: `Details - SQuAD`, else the first `Details - *`, else the first)")
    rows: str | int | None = Field(
        None, description="rows to run: `marked` (default where there is a Marker column), `all`, row numbers and "
        "ranges, method codes or EXP ID patterns, comma-separated")
    include_distillation: bool = Field(False, description="also run the selected rows whose code distils")
    include_global: bool = Field(False, description="also run the selected rows whose code ranks globally")
    write_back: bool = Field(
        False, description="write remaining %, EM, F1 and the run link into `NAME.results.xlsx` beside the sheet")
    in_place: bool = Field(
        False, description="with write_back: write the sheet itself, after a byte-for-byte backup")

    @model_validator(mode="after")
    def _check(self) -> SheetSpec:
        if self.in_place and not self.write_back:
            raise ValueError("in_place: only meaningful with write_back: true")
        return self


class SpaceSpec(_Strict):
    """A whole search-space file."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100,
        description="the experiment's folder under `storage_path` and default MLflow experiment (no `..`)")
    trial: dict[str, Any] = Field(
        default_factory=dict, description="fixed trial keys (any but `output_dir`, which is set per trial)")
    search: dict[str, Domain] = Field(default_factory=dict, description="one domain per searched trial key")
    searcher: SearcherSpec = Field(default_factory=SearcherSpec, description="how configurations are proposed")
    num_samples: int = Field(1, ge=1, description="samples of the search space (optuna: trials proposed)")
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec, description="early stopping")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="what Ray reserves per trial")
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="at most this many trials at once (default: as many as resources allow)")
    max_failures: int = Field(1, ge=0, description="times a failed trial is retried from its last checkpoint")
    storage_path: str = Field(
        "runs", description="where experiment folders go: a folder (relative to the working folder) or a URI "
        "(`s3://`, `file://`)")
    # With a URI storage_path (s3://bucket/runs), Ray Tune keeps trials and checkpoints there and
    # spa-tune keeps its own files (results, plots, Optuna study) in <local_dir>/<name> on the driver.
    local_dir: str = Field(
        "runs", description="with a URI `storage_path`: where spa-tune keeps its own files on the driver")
    # storage_path is on a filesystem every Ray node mounts at the same path (NFS, a shared disk, or
    # one machine running several nodes); required when attached to a cluster of several nodes.
    shared_storage: bool = Field(
        False, description="`storage_path` is mounted at the same path on every Ray node (needed for several "
        "nodes without a URI)")
    mlflow: MlflowSpec = Field(default_factory=MlflowSpec, description="where runs are logged")
    grid_from_sheet: SheetSpec | None = Field(
        None, description="rows of an experiment sheet as the trials (grid) or as Optuna's first points")

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str) -> str:
        """``name`` is the experiment's folder under storage_path: one plain part (the pattern), no ``..``."""
        if ".." in name:
            raise ValueError("'..' is not allowed in the experiment's folder name")
        return name
