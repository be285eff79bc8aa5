#!/usr/bin/env bash
# The GPU check: `spa-tune train` of MiniLM on the shared SQuAD subset (bench/gpu_check.yaml) with
# precision fp32 and then bf16, each printing its step time (training only), peak GPU memory and F1,
# then both side by side. Runs with no network from what bench/gpu_pack.sh put in .gpu/ (wheels of the
# missing packages, MiniLM in fp16, the data); about 3 minutes on one H200, well under 8.
#
# Usage: bench/gpu_check.sh [--cpu-smoke] [--out DIR]
#   --cpu-smoke  the same steps on the CPU at toy size (a few steps, 12 dev questions): checks the script
#   --out DIR    also write the results (gpu_check.jsonl) and the log of each run there
#   PYTHON=...   interpreter (default: .venv/bin/python where it exists, else python3)
#   PACK_DIR=... the folder gpu_pack.sh assembled (default .gpu)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=gpu out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-smoke) mode=cpu-smoke ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    *) echo "gpu_check: unknown argument '$1' (usage: bench/gpu_check.sh [--cpu-smoke] [--out DIR])" >&2; exit 2 ;;
  esac
  shift
done

PACK=${PACK_DIR:-.gpu}
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
for need in whl minilm-fp16/model.safetensors data/train-subset.json.gz data/dev-subset.json.gz; do
  [ -e "$PACK/$need" ] || { echo "gpu_check: $PACK/$need missing: run bench/gpu_pack.sh first" >&2; exit 2; }
done
[ -z "$out" ] || mkdir -p "$out"

work=$(mktemp -d "${TMPDIR:-/tmp}/spa-tune-gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PYTHONUNBUFFERED=1 HF_HOME="$work/hf" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# the carried wheels, only where the interpreter lacks what the trial imports
if ! "$PY" -c "import datasets, pydantic, dill, multiprocess" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" "$PACK"/whl/*.whl
  export PYTHONPATH="$work/site:$PYTHONPATH"
fi
gunzip -c "$PACK/data/train-subset.json.gz" >"$work/train.json"
gunzip -c "$PACK/data/dev-subset.json.gz" >"$work/dev.json"

"$PY" bench/gpu_check.py env "$PACK/minilm-fp16"

common=(--config bench/gpu_check.yaml --set "model=$PWD/$PACK/minilm-fp16"
        --set "train_file=$work/train.json" --set "eval_file=$work/dev.json")
limit=210  # seconds per run: a hung run still leaves the other its turn, both within 8 minutes
if [ "$mode" = cpu-smoke ]; then
  common+=(--set device=cpu --set max_train_samples=48 --set max_eval_samples=12 --set max_steps=8
           --set per_gpu_train_batch_size=4 --set per_gpu_eval_batch_size=16 --set max_seq_length=128
           --set doc_stride=64 --set max_query_length=32 --set warmup_steps=2)
  warmup=2 limit=600
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" ||
    { echo "gpu_check: torch sees no CUDA device (use --cpu-smoke to check the script on a CPU)" >&2; exit 1; }
  warmup=10
fi

results="$work/gpu_check.jsonl"
status=0
for precision in fp32 bf16; do
  echo "== $precision: spa-tune train --config bench/gpu_check.yaml --set precision=$precision ($mode)"
  log="$work/$precision.log"
  if ! timeout "$limit" "$PY" bench/gpu_check.py trial --label "$precision" --results "$results" --warmup "$warmup" -- \
      "${common[@]}" --set "precision=$precision" --set "output_dir=$work/$precision" 2>"$log"; then
    status=1
    echo "gpu_check: the $precision run failed; the end of its log:" >&2
    tail -n 20 "$log" >&2
  fi
  [ -z "$out" ] || cp "$log" "$out/"
done
[ -z "$out" ] || [ ! -f "$results" ] || cp "$results" "$out/"
[ -f "$results" ] && "$PY" bench/gpu_check.py summary "$results"
exit "$status"
