"""CPU speed-up of exported models at about 10 % remaining encoder weights, measured side by side.

Two short fine-pruning trials of MiniLM-L6-H384 (topK to 10 % of the blocks, generated data) are
trained, one with 32x32 block masks and one with ``mask_structure: heads_neurons``; each is
exported (masks folded, dead heads and neurons removed). Then the dense model and both exports
run on the same input (batch 1, sequence 384), taking turns in every round; the median latency of
each and its ratio to the dense model are printed. Target: >= 3x at about 10 % remaining. With the
``onnx`` extra installed, the dense model and both exports also run as ONNX in onnxruntime in the same
rounds (``spa-tune export --format onnx``), each ONNX export's ratio given to the dense ONNX model.

Run: ``python bench/export_speedup.py [--runs 30] [--set key=value ...]`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from spa_tune.config import parse_overrides
from spa_tune.export.commands import run_export
from spa_tune.export.latency import latency_inputs, measure_latency
from spa_tune.export.onnx_export import OnnxModel, write_onnx
from spa_tune.export.package import load_exported, parameter_count
from spa_tune.model.loading import load_qa_model
from spa_tune.trial.runner import run_trial

TRIAL = dict(
    method="fine-pruning", model="minilm", dataset="generated", generated_train_questions=480,
    generated_eval_questions=60, max_seq_length=128, doc_stride=32, max_query_length=32,
    per_gpu_train_batch_size=16, max_steps=60, learning_rate=3e-4, mask_scores_learning_rate=5e-2,
    warmup_steps=6, initial_warmup=1, final_warmup=2, pruning_method="topK", initial_threshold=1.0,
    final_threshold=0.1, keep_checkpoints=1,
)
STRUCTURES = {"blocks": {}, "heads_neurons": {"mask_structure": "heads_neurons", "mask_init": "uniform", "mask_scale": 0.1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed rounds (every model once per round)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a trial key")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    with tempfile.TemporaryDirectory(prefix="spa-tune-bench-") as tmp:
        models, rows = {}, {}
        for name, values in STRUCTURES.items():
            folder = Path(tmp) / name
            metrics = run_trial({**TRIAL, **values, **overrides, "output_dir": str(folder)}, progress=True)
            summary = run_export(str(folder), Path(tmp) / f"{name}-export", latency_runs=0)
            models[name] = load_exported(Path(tmp) / f"{name}-export")
            rows[name] = {"remaining_pct": metrics["remaining_pct"], "f1": metrics["f1"], "layout": summary["layout"]}
        dense = load_qa_model(overrides.get("model", TRIAL["model"])).eval()
        inputs = latency_inputs(dense.config)
        onnx = {}
        try:
            example = latency_inputs(dense.config, sequence_length=64)
            for name, model in {"dense": dense, **models}.items():
                onnx[f"{name} onnx"] = OnnxModel(write_onnx(model, Path(tmp) / f"{name}.onnx", example))
        except Exception as err:  # noqa: BLE001  (no onnx extra: the torch rows alone)
            print(f"no ONNX rows: {err}")
            onnx = {}
        times = measure_latency({"dense": dense, **models, **onnx}, inputs, runs=args.runs)
    length = inputs["input_ids"].shape[1]
    print(f"\nCPU latency, batch 1, sequence {length}, median of {args.runs} interleaved rounds, "
          f"{torch.get_num_threads()} threads")
    print(f"{'model':<15}{'remaining %':>12}{'params':>12}{'heads':>8}{'neurons':>9}{'ms':>9}{'speed-up':>10}")
    print(f"{'dense':<15}{100.0:>12.1f}{parameter_count(dense):>12,}{'':>8}{'':>9}{times['dense']:>9.1f}{1.0:>9.2f}x")
    for name, row in rows.items():
        heads, neurons = sum(row["layout"]["heads"]), sum(row["layout"]["neurons"])
        print(f"{name:<15}{row['remaining_pct']:>12.1f}{parameter_count(models[name]):>12,}{heads:>8}{neurons:>9}"
              f"{times[name]:>9.1f}{times['dense'] / times[name]:>9.2f}x")
    for name in onnx:
        if name != "dense onnx":
            print(f"{name:<15}{'':>12}{'':>12}{'':>8}{'':>9}{times[name]:>9.1f}{times['dense onnx'] / times[name]:>9.2f}x"
                  f"  (to the dense ONNX model, {times['dense onnx']:.1f} ms)")
    print("target: >= 3x at about 10 % remaining (the heads_neurons structure is what makes whole heads and neurons go)")


if __name__ == "__main__":
    main()
