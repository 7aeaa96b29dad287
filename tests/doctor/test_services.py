"""The doctor's gRPC checks against servers that are not what the client expects: one that
serves health but not DuckLM's services, and one built from different protos."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from ducklm.runtime.v1 import runtime_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tests.doctor.conftest import clean_environment, run_doctor

_RUNTIME_SERVICES = ("ducklm.runtime.v1.RuntimeService", "ducklm.runtime.v1.EmbeddingService")


def _add_with_dependencies(pool: descriptor_pool.DescriptorPool, file: descriptor.FileDescriptor, done: set[str]) -> None:
    for dependency in file.dependencies:
        _add_with_dependencies(pool, dependency, done)
    if file.name not in done:
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.Add(proto)
        done.add(file.name)


def _newer_runtime_protos() -> descriptor_pool.DescriptorPool:
    """runtime.proto as a newer server might have it: one message more."""
    pool = descriptor_pool.DescriptorPool()
    done: set[str] = set()
    for dependency in runtime_pb2.DESCRIPTOR.dependencies:
        _add_with_dependencies(pool, dependency, done)
    proto = descriptor_pb2.FileDescriptorProto()
    runtime_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.message_type.add(name="AddedLater")
    pool.Add(proto)
    return pool


async def _server(names: tuple[str, ...], pool: descriptor_pool.DescriptorPool | None) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    reflection.enable_server_reflection((*names, "grpc.health.v1.Health", reflection.SERVICE_NAME), server, pool=pool)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, port


@pytest.fixture
async def stranger() -> AsyncIterator[int]:
    """SERVING, with reflection, but none of DuckLM's services."""
    server, port = await _server((), None)
    yield port
    await server.stop(None)


@pytest.fixture
async def newer_runtime() -> AsyncIterator[int]:
    server, port = await _server(_RUNTIME_SERVICES, _newer_runtime_protos())
    yield port
    await server.stop(None)


async def test_a_server_without_the_expected_services_fails_reflection(tmp_path: Path, stranger: int) -> None:
    env = clean_environment(tmp_path / "data", DUCKLM_RUNTIME_ADDRESS=f"127.0.0.1:{stranger}")
    run = await run_doctor(env, "--only", "services")
    assert run.find("services.runtime", "health")["status"] == "pass"
    check = run.find("services.runtime", "reflection")
    assert check["status"] == "fail"
    assert "ducklm.runtime.v1.RuntimeService" in check["detail"]
    assert "DUCKLM_RUNTIME_ADDRESS" in check["fix"]
    assert run.code == 1


async def test_a_service_built_from_other_protos_fails_the_proto_line(tmp_path: Path, newer_runtime: int) -> None:
    env = clean_environment(tmp_path / "data", DUCKLM_RUNTIME_ADDRESS=f"127.0.0.1:{newer_runtime}")
    run = await run_doctor(env, "--only", "services")
    assert run.find("services.runtime", "reflection")["status"] == "pass"
    check = run.find("services.runtime", "proto ducklm/runtime/v1/runtime.proto")
    assert check["status"] == "fail"
    assert "this client has" in check["detail"]
    assert "same protos" in check["fix"]
    assert run.code == 1
