"""Checks every port the stack binds: free, or held by DuckLM itself (the process there answers
as the DuckLM part that owns the port). Anything else there is named (pid and program, read
from /proc) with the variable that moves DuckLM elsewhere.

Probes only bind a socket for a moment, or send one read-only request.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.doctor.channel import open_doctor_channel
from deploy.doctor.checks import PROBE_DEADLINE, Check
from deploy.doctor.services import EXPECTED_PROTOS
from deploy.doctor.setup import Port

__all__ = ["check_port", "port_holder", "port_is_free"]

SECTION = "machine"


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the servers themselves bind: a port left in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_holder(port: int) -> str:
    """"pid 123 (python3)" for the process listening on `port`, or "" when /proc does not say."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # fields: sl, local "ADDR:PORT" (hex), remote, state (0A = LISTEN), ..., inode at 9.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return ""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and any(_socket_inode(fd) in inodes for fd in _descriptors(proc)):
            try:
                return f"pid {proc.name} ({(proc / 'comm').read_text().strip()})"
            except OSError:
                return f"pid {proc.name}"
    return ""


def _descriptors(proc: Path) -> list[Path]:
    try:
        return list((proc / "fd").iterdir())
    except OSError:  # gone, or not ours to read
        return []


def _socket_inode(fd: Path) -> str:
    # A descriptor may close while we look: that one is skipped, not the whole process.
    try:
        target = os.readlink(fd)
    except OSError:
        return ""
    return target[8:-1] if target.startswith("socket:[") else ""


async def _held_by_ducklm(port: Port, environ: dict[str, str]) -> bool:
    host = "127.0.0.1" if port.host in ("", "0.0.0.0", "::", "[::]") else port.host
    if port.kind == "grpc":
        module = EXPECTED_PROTOS[port.owner][0]
        service = next(iter(module.DESCRIPTOR.services_by_name.values())).full_name
        channel = open_doctor_channel(f"{host}:{port.port}", environ)
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=PROBE_DEADLINE
            )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.aio.AioRpcError:
            return False
        finally:
            await channel.close()
    paths = {"http": "/healthz", "llama": "/health", "metrics": "/metrics"}
    try:
        async with httpx.AsyncClient(timeout=PROBE_DEADLINE) as http:
            response = await http.get(f"http://{host}:{port.port}{paths[port.kind]}")
    except httpx.HTTPError:
        return False
    if port.kind == "http":
        return response.status_code in (200, 503) and "open_streams" in response.text
    if port.kind == "metrics":
        return response.status_code == 200 and "ducklm_grpc_server" in response.text
    # Whatever llama-server answers there serves the role; the model checks judge it.
    return response.status_code == 200


async def check_port(port: Port, environ: dict[str, str]) -> Check:
    name = f"port {port.port}"
    try:
        free = port_is_free(port.host, port.port)
    except OSError as exc:
        return Check.failed(SECTION, name, f"{port.owner} cannot bind {port.host}:{port.port}: {exc.strerror}", f"change {port.moved_by}")
    if free:
        return Check.passed(SECTION, name, f"free for {port.owner}")
    if await _held_by_ducklm(port, environ):
        return Check.passed(SECTION, name, f"held by DuckLM's {port.owner}")
    holder = port_holder(port.port) or "another program"
    return Check.failed(
        SECTION, name, f"{port.owner} needs it, but {holder} holds it",
        f"stop {holder}, or give {port.owner} another port with {port.moved_by}",
    )
