"""The search-space file: a typed schema (pydantic) for everything ``spa-tune --space`` reads.

A space file has a fixed ``trial`` section (any trial key), a ``search`` section (one domain per
trial key), and the experiment's searcher, scheduler, resources, storage and MLflow settings.
Every section is checked here, before Ray starts; ``check_space`` also validates the trial section
combined with each end of every searched range, so a bad corner fails now rather than on a node.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

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

    type: Literal["grid", "choice"]
    values: list[Any] = Field(min_length=1)


class RangeDomain(_Strict):
    """A continuous range; ``q`` rounds to multiples of q for the q-variants."""

    type: Literal["uniform", "loguniform", "quniform", "qloguniform"]
    low: float
    high: float
    q: float | None = Field(None, gt=0)

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

    type: Literal["randint", "lograndint"]
    low: int
    high: int

    @model_validator(mode="after")
    def _check(self) -> IntDomain:
        if self.low >= self.high:
            raise ValueError(f"low: {self.low} must be smaller than high ({self.high})")
        if self.type == "lograndint" and self.low <= 0:
            raise ValueError(f"low: {self.low} must be > 0 for lograndint")
        return self


Domain = Annotated[Union[ValuesDomain, RangeDomain, IntDomain], Field(discriminator="type")]
DOMAIN_TYPES = ("grid", "choice", "uniform", "loguniform", "quniform", "qloguniform", "randint", "lograndint")


class SearcherSpec(_Strict):
    """How configurations are proposed: Ray's variant generator or an Optuna study."""

    type: Literal["grid", "random", "optuna"] = "grid"
    sampler: Literal["tpe", "nsga2"] = "tpe"
    metric: str | list[str] = "f1"
    mode: Literal["max", "min"] | list[Literal["max", "min"]] = "max"
    seed: int | None = 0
    population_size: int | None = Field(None, ge=2)
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)

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

    type: Literal["asha", "none"] = "asha"
    metric: str = "f1"
    mode: Literal["max", "min"] = "max"
    time_attr: str = "epoch"
    grace_period: float = Field(1.0, gt=0)
    max_t: float | None = Field(None, gt=0)
    reduction_factor: float = Field(3.0, gt=1)
    stratify_by: str | list[str] = "auto"

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

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ResourcesSpec:
        if self.gpu > 1 and self.gpu != int(self.gpu):
            raise ValueError(f"gpu: {self.gpu} - more than one GPU must be a whole number")
        return self


class MlflowSpec(_Strict):
    """Where runs are logged: a local database under the experiment folder unless a URI is given."""

    tracking_uri: str | None = None
    experiment_name: str | None = None


class SheetSpec(_Strict):
    """Rows of an experiment sheet as the trials (``searcher: grid``) or as Optuna's first points."""

    path: str
    sheet: str | None = None
    rows: str | int | None = None
    include_distillation: bool = False
    include_global: bool = False
    write_back: bool = False
    in_place: bool = False

    @model_validator(mode="after")
    def _check(self) -> SheetSpec:
        if self.in_place and not self.write_back:
            raise ValueError("in_place: only meaningful with write_back: true")
        return self


class SpaceSpec(_Strict):
    """A whole search-space file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    trial: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, Domain] = Field(default_factory=dict)
    searcher: SearcherSpec = Field(default_factory=SearcherSpec)
    num_samples: int = Field(1, ge=1)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    max_concurrent_trials: int | None = Field(None, ge=1)
    max_failures: int = Field(1, ge=0)
    storage_path: str = "runs"
    # With a URI storage_path (s3://bucket/runs), Ray Tune keeps trials and checkpoints there and
    # spa-tune keeps its own files (results, plots, Optuna study) in <local_dir>/<name> on the driver.
    local_dir: str = "runs"
    # storage_path is on a filesystem every Ray node mounts at the same path (NFS, a shared disk, or
    # one machine running several nodes); required when attached to a cluster of several nodes.
    shared_storage: bool = False
    mlflow: MlflowSpec = Field(default_factory=MlflowSpec)
    grid_from_sheet: SheetSpec | None = None

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str) -> str:
        """``name`` is the experiment's folder under storage_path: one plain part (the pattern), no ``..``."""
        if ".." in name:
            raise ValueError("'..' is not allowed in the experiment's folder name")
        return name
