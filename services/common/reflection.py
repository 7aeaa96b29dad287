"""gRPC server reflection that includes the protos' comments.

The generated `_pb2` modules carry their files without source info, so plain reflection
describes DuckLM's services with no documentation. This servicer answers like the standard one
and swaps each DuckLM file it sends for the same file from gen/python/ducklm/descriptors.binpb
(written by scripts/genproto.sh with --include_source_info), so `grpcurl describe` prints each
service's, method's and field's comments. It never changes what is described, only adds comments.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

import ducklm
import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

__all__ = ["DESCRIPTORS", "add_reflection"]

DESCRIPTORS = Path(ducklm.__file__).resolve().parent / "descriptors.binpb"


@functools.cache
def _documented() -> dict[str, bytes]:
    """Each DuckLM proto file, by name, serialized with its source info."""
    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes()).file
    except FileNotFoundError:
        return {}  # stubs generated before descriptors existed: plain reflection
    return {file.name: file.SerializeToString() for file in files}


def _with_comments(response: reflection_pb2.ServerReflectionResponse) -> reflection_pb2.ServerReflectionResponse:
    if not response.HasField("file_descriptor_response"):
        return response
    documented = _documented()
    files = response.file_descriptor_response.file_descriptor_proto
    for index, serialized in enumerate(files):
        name = descriptor_pb2.FileDescriptorProto.FromString(serialized).name
        if name in documented:
            files[index] = documented[name]
    return response


class DocumentedReflectionServicer(ReflectionServicer):  # type: ignore[misc]
    async def ServerReflectionInfo(
        self, request_iterator: AsyncIterable[reflection_pb2.ServerReflectionRequest], context: Any
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        async for response in super().ServerReflectionInfo(request_iterator, context):
            yield _with_comments(response)


def add_reflection(service_names: tuple[str, ...], server: grpc.aio.Server) -> None:
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        DocumentedReflectionServicer(service_names), server
    )
