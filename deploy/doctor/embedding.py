"""Checks the embedding role: the vectors' dimension, and that every memory collection that
already exists was built with this model and dimension (vectors of two models cannot be mixed;
memory refuses to write into such a collection and its search results would be noise).

The collections are asked of the memory service when it runs (either backend), and otherwise
read from the edge backend's files. Nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from ducklm.memory.v1 import memory_pb2, memory_pb2_grpc

from deploy.doctor.channel import open_doctor_channel
from deploy.doctor.checks import PROBE_DEADLINE, Check
from services.memory.config import Settings as MemorySettings
from services.runtime.models_config import RoleConfig

__all__ = ["Collection", "check_collections", "embedding_dimension", "existing_collections"]

SECTION = "models.embedding"
# The edge backend keeps each collection's spec here (services/memory/edge_store.py).
_SPEC_FILE = "collection.json"


@dataclass(frozen=True)
class Collection:
    name: str
    dimension: int
    embedding_model: str
    where: str


async def embedding_dimension(http: httpx.AsyncClient, role: RoleConfig) -> tuple[Check, int]:
    """Embeds one word; returns the check and the dimension (0 when it failed)."""
    headers = {"Authorization": f"Bearer {role.api_key}"} if role.api_key else {}
    fix = "start the embedding server with --embeddings (and --pooling mean), or point roles.embedding at one"
    try:
        response = await http.post(
            f"{role.endpoint.rstrip('/')}/embeddings", json={"model": role.model, "input": ["ducks"]}, headers=headers
        )
        vector = response.json()["data"][0]["embedding"] if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        vector = None
    if not isinstance(vector, list) or not vector:
        return Check.failed(SECTION, "dimension", "the endpoint returns no embedding", fix), 0
    return Check.passed(SECTION, "dimension", f"{len(vector)} dimensions from {role.model}"), len(vector)


async def existing_collections(settings: MemorySettings, environ: dict[str, str]) -> tuple[list[Collection], str]:
    """The collections memory holds, and where they were read from ("" when nowhere)."""
    channel = open_doctor_channel(settings.address, environ)
    try:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        reply = await stub.ListCollections(
            memory_pb2.ListCollectionsRequest(), timeout=PROBE_DEADLINE
        )
        return [
            Collection(c.name, c.dimension, c.embedding_model, f"memory service at {settings.address}")
            for c in reply.collections
        ], "memory service"
    except grpc.aio.AioRpcError:
        pass
    finally:
        await channel.close()
    if settings.backend != "edge":
        return [], ""
    return _edge_collections(settings.edge_path), str(settings.edge_path)


def _edge_collections(root: Path) -> list[Collection]:
    found: list[Collection] = []
    for spec_file in sorted(root.glob(f"*/{_SPEC_FILE}")):
        try:
            raw = json.loads(spec_file.read_text(encoding="utf-8"))
            found.append(
                Collection(spec_file.parent.name, int(raw["dimension"]), str(raw["embedding_model"]), str(spec_file.parent))
            )
        except (OSError, ValueError, KeyError, TypeError):
            # A half-written spec is the memory service's to report; a collection being created has a temporary name.
            continue
    return found


def check_collections(collections: list[Collection], dimension: int, model: str, source: str) -> list[Check]:
    if not source:
        return [Check.skipped(SECTION, "collections", "memory is not running and its backend is a Qdrant server")]
    if not collections:
        return [Check.passed(SECTION, "collections", f"no memory collection yet ({source})")]
    checks: list[Check] = []
    for collection in collections:
        name = f"collection {collection.name}"
        if dimension and collection.dimension != dimension:
            checks.append(
                Check.failed(
                    SECTION, name,
                    f"built with {collection.embedding_model!r} at {collection.dimension} dimensions; "
                    f"the embedding role now gives {dimension}",
                    f"point roles.embedding back at {collection.embedding_model}, or move {collection.where} "
                    "aside so memory starts a new collection",
                )
            )
        elif collection.embedding_model and collection.embedding_model != model:
            checks.append(
                Check.failed(
                    SECTION, name,
                    f"built with {collection.embedding_model!r}, the embedding role is now {model!r} "
                    "(same dimension, different vectors)",
                    f"point roles.embedding back at {collection.embedding_model}, or move {collection.where} aside",
                )
            )
        else:
            checks.append(
                Check.passed(SECTION, name, f"{collection.dimension} dimensions from {collection.embedding_model}")
            )
    return checks
