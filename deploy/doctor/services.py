"""Checks every gRPC service as a client sees it: health reports SERVING, reflection lists the
services the client expects there, and the protos it serves are the client's own (compared as
FileDescriptorProtos, so a service built from older or newer protos is named, not guessed at).

Read-only calls with short deadlines; nothing is changed on a service.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from types import ModuleType

import grpc
from ducklm.approvals.v1 import approvals_pb2
from ducklm.memory.v1 import memory_pb2
from ducklm.runtime.v1 import runtime_pb2
from ducklm.skills.v1 import skills_pb2
from ducklm.tools.v1 import tools_pb2
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from deploy.doctor.channel import open_doctor_channel
from deploy.doctor.checks import PROBE_DEADLINE, Check

__all__ = ["EXPECTED_PROTOS", "check_service", "proto_fingerprint"]

# The proto files each process serves, as generated for this client.
EXPECTED_PROTOS: dict[str, tuple[ModuleType, ...]] = {
    "runtime": (runtime_pb2,),
    "tools": (tools_pb2, approvals_pb2),
    "skills": (skills_pb2,),
    "memory": (memory_pb2,),
}
_DEADLINE = PROBE_DEADLINE


def proto_fingerprint(file: descriptor_pb2.FileDescriptorProto) -> str:
    """A short hash of the contract itself. What protoc adds to a descriptor set but not to the
    generated code (comments as source info, which reflection serves so that `grpcurl describe`
    shows them; JSON field names derived from the field names) is left out, so only a change of
    the API counts."""
    contract = descriptor_pb2.FileDescriptorProto()
    contract.CopyFrom(file)
    contract.ClearField("source_code_info")
    messages = list(contract.message_type)
    while messages:
        message = messages.pop()
        for entry in message.field:
            entry.ClearField("json_name")
        messages.extend(message.nested_type)
    return hashlib.sha256(contract.SerializeToString(deterministic=True)).hexdigest()[:12]


def _client_file(module: ModuleType) -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(file)
    return file


async def check_service(service: str, address: str, environ: dict[str, str]) -> list[Check]:
    section = f"services.{service}"
    modules = EXPECTED_PROTOS[service]
    expected = [name for module in modules for name in (s.full_name for s in module.DESCRIPTOR.services_by_name.values())]
    channel = open_doctor_channel(address, environ)
    try:
        health = await _health_check(channel, section, service, address)
        if health.status.value != "pass":
            return [health]
        return [health, *await _reflection_checks(channel, section, service, expected, modules)]
    finally:
        await channel.close()


async def _health_check(channel: grpc.aio.Channel, section: str, service: str, address: str) -> Check:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=_DEADLINE)
    except grpc.aio.AioRpcError as exc:
        return Check.failed(
            section, "health", f"{address} does not answer ({exc.code().name})",
            f"start it (`make run` starts every service) or set DUCKLM_{service.upper()}_ADDRESS to where it runs",
        )
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return Check.failed(
            section, "health", f"{address} reports {status}",
            f"see the {service} service's log (data/logs/{service}.log under `make run`)",
        )
    return Check.passed(section, "health", f"{address} SERVING")


async def _reflect(
    stub: reflection_pb2_grpc.ServerReflectionStub, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    async def one() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield request

    async for reply in stub.ServerReflectionInfo(one(), timeout=_DEADLINE):
        return reply
    raise grpc.aio.AioRpcError(grpc.StatusCode.UNKNOWN, grpc.aio.Metadata(), grpc.aio.Metadata(), "no reply")


async def _reflection_checks(
    channel: grpc.aio.Channel, section: str, service: str, expected: list[str], modules: tuple[ModuleType, ...]
) -> list[Check]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    try:
        listing = await _reflect(stub, reflection_pb2.ServerReflectionRequest(list_services=""))
    except grpc.aio.AioRpcError as exc:
        hint = "set DUCKLM_GRPC_TOKEN to the services' token" if exc.code() == grpc.StatusCode.UNAUTHENTICATED else (
            "the server must enable gRPC reflection (services.common.server.build_server does)"
        )
        return [Check.failed(section, "reflection", f"reflection failed ({exc.code().name})", hint)]
    served = {item.name for item in listing.list_services_response.service}
    missing = [name for name in expected if name not in served]
    if missing:
        return [
            Check.failed(
                section, "reflection", f"does not serve {', '.join(missing)}",
                f"the address points at something other than DuckLM's {service} service; fix DUCKLM_{service.upper()}_ADDRESS",
            )
        ]
    checks = [Check.passed(section, "reflection", f"lists {', '.join(expected)}")]
    for module in modules:
        checks.append(await _proto_check(stub, section, service, module))
    return checks


async def _proto_check(
    stub: reflection_pb2_grpc.ServerReflectionStub, section: str, service: str, module: ModuleType
) -> Check:
    mine = _client_file(module)
    symbol = next(iter(module.DESCRIPTOR.services_by_name.values())).full_name
    name = f"proto {mine.name}"
    try:
        reply = await _reflect(stub, reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
    except grpc.aio.AioRpcError as exc:
        return Check.failed(section, name, f"reflection could not send it ({exc.code().name})", "update the service")
    served = None
    for raw in reply.file_descriptor_response.file_descriptor_proto:
        candidate = descriptor_pb2.FileDescriptorProto.FromString(raw)
        if candidate.name == mine.name:
            served = candidate
    if served is None:
        return Check.failed(section, name, "the service does not serve this file", "update the service to this checkout")
    if proto_fingerprint(served) != proto_fingerprint(mine):
        return Check.failed(
            section, name,
            f"the service serves {proto_fingerprint(served)}, this client has {proto_fingerprint(mine)}",
            "restart the service from this checkout (or update the client) so both use the same protos",
        )
    return Check.passed(section, name, f"same as the client's ({proto_fingerprint(mine)})")
