"""`spa-tune export` and `spa-tune apply-adapter`: write the artefacts and print what they cost and gain."""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..errors import SpaTuneError
from ..model.counting import count_weights, is_added_parameter
from ..model.loading import load_qa_model, load_tokenizer
from ..trial.scoring import score_models
from ..trial.setup import quiet_library_progress_bars
from ..trial.teacher import tokenizer_name
from .adapter import adapter_size, apply_adapter, read_adapter, save_adapter
from .fold import fold_masks
from .latency import latency_inputs, measure_latency
from .onnx_export import INPUTS as INPUT_NAMES
from .onnx_export import ONNX_FILE, OnnxModel, logits_difference, write_onnx
from .package import (
    SavedModel,
    load_exported,
    parameter_count,
    refuse_existing,
    save_model_folder,
    weights_bytes,
    written_atomically,
)
from .remote import located_checkpoint
from .source import TrainedTrial, load_trained

SUMMARY_FILE = "export.json"
FORMATS = ("hf", "onnx")
ONNX_TOLERANCE = 1e-3  # largest absolute logit difference between the ONNX model and the trained (masked) model


def _say(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def dense_file_bytes(model: nn.Module) -> int:
    """Size of ``model`` saved as a standard folder (written to a temporary folder and measured)."""
    with tempfile.TemporaryDirectory(prefix="spa-tune-dense-") as tmp:
        model.save_pretrained(tmp)
        return weights_bytes(Path(tmp))


def compare_latency(dense, exported, runs: int, config=None, engine: str = "torch") -> dict:
    """Latency of the dense and the exported model (torch modules, or ``OnnxModel``s with ``config``) on the
    same inputs, and their ratio."""
    inputs = latency_inputs(config if config is not None else dense.config)
    times = measure_latency({"dense": dense, "exported": exported}, inputs, runs=runs)
    result = {
        "dense_ms": times["dense"], "exported_ms": times["exported"], "speedup": times["dense"] / times["exported"],
        "sequence_length": int(inputs["input_ids"].shape[1]), "runs": runs, "threads": torch.get_num_threads(),
        "engine": engine,
    }
    _say(f"  latency (CPU, batch 1, sequence {result['sequence_length']}, median of {runs} interleaved runs, "
         f"{result['threads']} threads, {engine}): "
         f"dense {result['dense_ms']:.1f} ms, exported {result['exported_ms']:.1f} ms, "
         f"ratio {result['speedup']:.2f}x")
    return result


def describe_trial(trained: TrainedTrial) -> str:
    """One line naming the checkpoint and the trial's method."""
    cfg = trained.cfg
    method = cfg.method if cfg.method == "dense" else f"{cfg.method}, {cfg.pruning_method}, {cfg.mask_structure}"
    return f"{trained.checkpoint} ({method}, step {trained.step}, threshold {trained.threshold:.3g})"


def trial_summary(trained: TrainedTrial) -> dict:
    """What an artefact records about the trial it came from."""
    return {
        "checkpoint": str(trained.checkpoint), "step": trained.step, "threshold": trained.threshold,
        "em": trained.em, "f1": trained.f1, "config": trained.cfg.model_dump(),
    }


def export_model(
    trained: TrainedTrial, out: Path, check: bool, max_eval_samples: int | None, latency_runs: int
) -> tuple[SavedModel, dict]:
    """Fold the trial's masks, remove dead heads and neurons, save a Hugging Face folder, measure it."""
    accounting = count_weights(trained.model, trained.cfg.method)
    masked_scores = score_models({"masked": trained.model}, trained.cfg, max_eval_samples)["masked"] if check else None
    dense = fold_masks(trained.model)  # the trial's architecture, pruned weights stored as zeros
    before, dense_bytes = parameter_count(dense), dense_file_bytes(dense)
    saved = save_model_folder(copy.deepcopy(dense), out, load_tokenizer(tokenizer_name(trained.cfg.model, trained.cfg.tokenizer)))
    exported = load_exported(out)
    after, saved_bytes = parameter_count(exported), weights_bytes(out)
    _say(f"  {saved.layout.describe()}")
    _say(f"  encoder weights remaining: {accounting.remaining_pct:.2f} % of {accounting.encoder_params:,}")
    _say(f"  parameters: dense {before:,} -> exported {after:,} ({100 * after / before:.1f} %)")
    _say(f"  weight files: dense {_mb(dense_bytes)} -> exported {_mb(saved_bytes)}")
    summary = {
        "trial": trial_summary(trained), "layout": {"heads": saved.layout.heads, "neurons": saved.layout.neurons},
        "parameters": {"dense": before, "exported": after}, "weights_bytes": {"dense": dense_bytes, "exported": saved_bytes},
        "remaining_pct": accounting.remaining_pct,
    }
    if latency_runs:
        summary["latency"] = compare_latency(dense, exported, latency_runs)
    if masked_scores is not None:
        summary["check"] = check_scores(masked_scores, score_models({"exported": exported}, trained.cfg, max_eval_samples)["exported"])
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
    return saved, summary


def export_onnx(trained: TrainedTrial, out: Path, latency_runs: int) -> dict:
    """Fold, shrink and write the pruned network as ``model.onnx`` (with the tokenizer), check its logits
    against the trained masked model in onnxruntime, and time it against the dense network's ONNX."""
    out.mkdir(parents=True, exist_ok=True)
    accounting = count_weights(trained.model, trained.cfg.method)
    dense = fold_masks(trained.model)
    tokenizer = load_tokenizer(tokenizer_name(trained.cfg.model, trained.cfg.tokenizer))
    with tempfile.TemporaryDirectory(prefix="spa-tune-onnx-") as tmp:
        saved = save_model_folder(copy.deepcopy(dense), Path(tmp) / "model", tokenizer)
        exported = load_exported(Path(tmp) / "model")
        example = latency_inputs(dense.config, sequence_length=64)
        write_onnx(exported, out / ONNX_FILE, example)
        tokenizer.save_pretrained(str(out))
        pruned_onnx = OnnxModel(out / ONNX_FILE)
        shapes = [latency_inputs(dense.config), latency_inputs(dense.config, sequence_length=128, seed=1)]
        shapes[1] = {name: tensor.repeat(2, 1) for name, tensor in shapes[1].items()}  # batch 2: dynamic axes
        difference = max(logits_difference(trained.model, pruned_onnx, inputs) for inputs in shapes)
        _say(f"  {saved.layout.describe()}")
        _say(f"  ONNX: {out / ONNX_FILE} ({_mb((out / ONNX_FILE).stat().st_size)}); largest logit difference "
             f"from the trained model {difference:.2e} (tolerance {ONNX_TOLERANCE:g})")
        if difference > ONNX_TOLERANCE:
            raise SpaTuneError(f"--format onnx: the ONNX model's logits differ from the trained model's by "
                               f"{difference:.2e} (more than {ONNX_TOLERANCE:g})")
        summary = {
            "trial": trial_summary(trained), "format": "onnx", "file": ONNX_FILE,
            "layout": {"heads": saved.layout.heads, "neurons": saved.layout.neurons},
            "parameters": {"dense": parameter_count(dense), "exported": parameter_count(exported)},
            "remaining_pct": accounting.remaining_pct, "max_logit_difference": difference,
        }
        if latency_runs:
            write_onnx(dense, Path(tmp) / "dense.onnx", example)
            summary["latency"] = compare_latency(OnnxModel(Path(tmp) / "dense.onnx"), pruned_onnx, latency_runs,
                                                 dense.config, "onnxruntime")
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
    _say(f"  saved: {out}  (run: onnxruntime.InferenceSession(\"{out / ONNX_FILE}\"), inputs {', '.join(INPUT_NAMES)})")
    return summary


def check_scores(masked: dict, exported: dict, tolerance: float = 0.1) -> dict:
    """Print masked and exported EM/F1; more than ``tolerance`` apart is an error."""
    _say(f"  EM/F1 on the trial's evaluation set: masked {masked['em']:.2f}/{masked['f1']:.2f}, "
         f"exported {exported['em']:.2f}/{exported['f1']:.2f}")
    result = {"masked": {k: masked[k] for k in ("em", "f1")}, "exported": {k: exported[k] for k in ("em", "f1")},
              "same_predictions": masked["predictions"] == exported["predictions"]}
    if abs(masked["em"] - exported["em"]) > tolerance or abs(masked["f1"] - exported["f1"]) > tolerance:
        raise SpaTuneError(f"--check: the exported model scores EM/F1 {exported['em']:.2f}/{exported['f1']:.2f}, "
                           f"the masked model {masked['em']:.2f}/{masked['f1']:.2f}")
    return result


def say_saved(saved: SavedModel, out: Path) -> None:
    """Say where the folder is and how to load it."""
    _say(f"  saved: {out}  (load: {saved.load_hint(out)})")


def export_adapter(trained: TrainedTrial, out: Path) -> dict:
    """Write a SPLoPA trial's adapter file and account for its size."""
    accounting = count_weights(trained.model, trained.cfg.method)
    size = save_adapter(trained.model, trained.cfg.model, out, trial_summary(trained))
    if size.learned != accounting.learned_params:  # the file is removed again (written_atomically)
        raise RuntimeError(f"adapter holds {size.learned} learned parameters, the trial counts {accounting.learned_params}")
    dense = sum(p.numel() for n, p in trained.model.named_parameters() if not is_added_parameter(n))
    _say(size.describe())
    _say(f"  learned parameters of the trial: {accounting.learned_params:,} ({accounting.learned_pct:.3f} % of "
         f"{accounting.encoder_params:,} encoder weights); the dense model has {dense:,} parameters")
    return {"file_bytes": size.file_bytes, "learned_params": size.learned, "dense_params": dense}


def run_export(run: str, out: Path, adapter_only: bool = False, tracking_uri: str | None = None, check: bool = False,
               max_eval_samples: int | None = None, latency_runs: int = 20, fmt: str = "hf") -> dict:
    """`spa-tune export`: a Hugging Face model folder, an ONNX model (``fmt`` onnx), or with
    ``adapter_only`` a SPLoPA adapter file."""
    if fmt not in FORMATS:
        raise SpaTuneError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "onnx" and (adapter_only or check):
        raise SpaTuneError("--format onnx: writes the whole pruned model, checked by its logits; "
                           "--adapter-only and --check are for the Hugging Face format")
    refuse_existing(out, "file" if adapter_only else "folder")
    quiet_library_progress_bars()
    with located_checkpoint(run, tracking_uri) as (checkpoint, origin):  # a URI's checkpoint: downloaded for now
        trained = load_trained(checkpoint)
    trained.checkpoint = origin  # recorded as where it is kept (the bucket), not the temporary copy
    _say(f"spa-tune export: {describe_trial(trained)}")
    if adapter_only:
        if trained.cfg.method != "splopa":
            raise SpaTuneError(f"--adapter-only: {run} is a {trained.cfg.method} trial; only SPLoPA trials have an adapter")
        with written_atomically(out) as target:
            summary = export_adapter(trained, target)
        _say(f"  saved: {out} ({_mb(summary['file_bytes'])}); rebuild the task model with "
             f"`spa-tune apply-adapter {trained.cfg.model} {out} --out DIR`")
        return summary
    if fmt == "onnx":
        with written_atomically(out) as target:
            return export_onnx(trained, target, latency_runs)
    with written_atomically(out) as target:  # a failed --check or an interruption leaves no half folder
        saved, summary = export_model(trained, target, check, max_eval_samples, latency_runs)
    say_saved(saved, out)
    return summary


def run_apply_adapter(base: str, adapter: Path, out: Path, latency_runs: int = 20) -> dict:
    """`spa-tune apply-adapter`: the full task model from a base model and an adapter file."""
    refuse_existing(out)
    quiet_library_progress_bars()
    tensors, meta = read_adapter(adapter)
    size = adapter_size(adapter, tensors)
    model = load_qa_model(base)
    dense = copy.deepcopy(model).eval()
    apply_adapter(model, tensors, meta, str(adapter))
    _say(f"spa-tune apply-adapter: {adapter} ({_mb(size.file_bytes)}, {size.learned:,} learned parameters) on {base}")
    with written_atomically(out) as target:
        saved, summary = save_task_model(model, dense, target, load_tokenizer(base), latency_runs)
        summary.update(adapter=str(adapter), base=base, trial=meta.get("trial"))
        (target / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
    say_saved(saved, out)
    return summary


def save_task_model(model: nn.Module, dense: nn.Module, out: Path, tokenizer, latency_runs: int) -> tuple[SavedModel, dict]:
    """Save a folded task model, print its layout and size against ``dense``, time both."""
    saved = save_model_folder(model, out, tokenizer)
    exported = load_exported(out)
    before, after = parameter_count(dense), parameter_count(exported)
    _say(f"  {saved.layout.describe()}")
    _say(f"  parameters: dense {before:,} -> task model {after:,} ({100 * after / before:.1f} %)")
    summary = {"parameters": {"dense": before, "exported": after}, "weights_bytes": {"exported": weights_bytes(out)}}
    if latency_runs:
        summary["latency"] = compare_latency(dense, exported, latency_runs)
    return saved, summary
