#!/usr/bin/env bash
# Regenerates the Python gRPC stubs in gen/python from protos/. The only way stubs are made:
# never edit gen/ by hand. `make check-protos` runs this and fails if git sees a difference.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
OUT=gen/python

rm -rf "$OUT/ducklm"
mkdir -p "$OUT"
mapfile -t protos < <(find protos -name '*.proto' | sort)
# mypy-protobuf's plugin (requirements-dev.txt) writes the .pyi for the *_pb2_grpc modules, which
# grpc_tools leaves unannotated: typed stubs and servicers, so mypy strict checks every call.
MYPY_GRPC="$(dirname "$PYTHON")/protoc-gen-mypy_grpc"
"$PYTHON" -m grpc_tools.protoc -I protos --plugin=protoc-gen-mypy_grpc="$MYPY_GRPC" \
    --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" --mypy_grpc_out=quiet:"$OUT" "${protos[@]}"

# The same files with their comments (source info), for server reflection: `grpcurl describe`
# then shows each service's, method's and field's documentation (services/common/reflection.py).
"$PYTHON" -m grpc_tools.protoc -I protos --include_source_info \
    --descriptor_set_out="$OUT/ducklm/descriptors.binpb" "${protos[@]}"

# Make every generated folder a regular package so imports need no namespace-package magic.
find "$OUT/ducklm" -type d -exec touch {}/__init__.py \;
echo "generated stubs for ${#protos[@]} proto files in $OUT"
