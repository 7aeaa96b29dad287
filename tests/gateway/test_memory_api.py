"""Memory through the REST API: remember, search, get, forget (by id and by filter), against the
real memory service (vectors from the runtime's scripted embedding role); and the clear 409
when embeddings are turned off."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.common.server import GrpcServer
from services.common.testing import free_port
from services.gateway.config import Settings
from services.memory.config import Settings as MemorySettings
from services.memory.server import create_server as create_memory
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.server import create_server as create_runtime
from tests.gateway.conftest import gateway_in_process
from tests.scripted_model import ScriptedModel


async def test_remember_search_get_and_forget(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    created = await api.post(
        "/v1/memories",
        json={
            "text": "The duck pond is behind the mill.",
            "kind": "fact",
            "tags": [tag],
            "metadata": {"source": "test"},
        },
    )
    assert created.status_code == 201, created.text
    memory = created.json()
    assert memory["id"] and memory["kind"] == "fact" and memory["tags"] == [tag]
    assert memory["metadata"] == {"source": "test"}

    found = await api.post(
        "/v1/memories/search", json={"text": "Where is the duck pond?", "filter": {"tags": [tag]}}
    )
    assert found.status_code == 200, found.text
    results = found.json()["results"]
    assert [result["memory"]["id"] for result in results] == [memory["id"]]
    assert -1.0 <= results[0]["score"] <= 1.0
    assert found.json()["embedding_ms"] >= 0

    assert (await api.get(f"/v1/memories/{memory['id']}")).json()["text"] == memory["text"]
    deleted = await api.delete(f"/v1/memories/{memory['id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 1
    assert (await api.get(f"/v1/memories/{memory['id']}")).status_code == 404


async def test_forget_by_filter(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    for text in ("one quack", "two quacks"):
        assert (await api.post("/v1/memories", json={"text": text, "tags": [tag]})).status_code == 201
    forgotten = await api.post("/v1/memories/forget", json={"filter": {"tags": [tag]}})
    assert forgotten.status_code == 200, forgotten.text
    assert forgotten.json()["deleted"] == 2
    left = (await api.post("/v1/memories/search", json={"text": "quack", "filter": {"tags": [tag]}})).json()
    assert left["results"] == []


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/v1/memories", {}, "text"),
        ("/v1/memories", {"text": ""}, "text"),
        ("/v1/memories", {"text": "x", "tags": "one"}, "tags"),
        ("/v1/memories/search", {}, "exactly one of text or vector"),
        ("/v1/memories/search", {"text": "x", "vector": [1.0]}, "exactly one of text or vector"),
        ("/v1/memories/search", {"text": "x", "top_k": 0}, "top_k"),
        ("/v1/memories/search", {"text": "x", "top_k": 101}, "top_k"),
        ("/v1/memories/search", {"vector": [1e40]}, "vector"),
        ("/v1/memories/forget", {"filter": {}}, "empty filter"),
        ("/v1/memories/forget", {}, "filter"),
    ],
)
async def test_memory_routes_refuse_bad_bodies(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], fragment: str
) -> None:
    response = await api.post(path, json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


async def test_unknown_memories_are_404_and_malformed_ids_400(api: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    assert (await api.get(f"/v1/memories/{missing}")).status_code == 404
    malformed = await api.get("/v1/memories/not-an-id")
    assert malformed.status_code == 400 and malformed.json()["error"]["service"] == "memory"


@pytest.fixture
async def memory_without_embeddings(tmp_path: Path, scripted: ScriptedModel) -> AsyncIterator[Settings]:
    """A runtime with no `embedding` role and a memory service using it (both in-process)."""
    models = tmp_path / "models.yaml"
    models.write_text(
        yaml.safe_dump({"roles": {"chat": {"endpoint": scripted.endpoint, "model": "scripted"}}})
    )
    runtime: GrpcServer = await create_runtime(
        RuntimeSettings(
            address="127.0.0.1:0", database=tmp_path / "runtime.db", models_file=models, standalone=True
        )
    )
    memory: GrpcServer = await create_memory(
        MemorySettings(address="127.0.0.1:0", edge_path=tmp_path / "memory", runtime_address=runtime.address)
    )
    try:
        yield Settings(
            runtime_address=runtime.address,
            memory_address=memory.address,
            tools_address=f"127.0.0.1:{free_port()}",
            skills_address=f"127.0.0.1:{free_port()}",
        )
    finally:
        await memory.stop(grace=0.5)
        await runtime.stop(grace=0.5)


async def test_disabled_embeddings_are_a_clear_409(memory_without_embeddings: Settings) -> None:
    async with gateway_in_process(memory_without_embeddings) as client:
        for path, body in [
            ("/v1/memories", {"text": "remember me"}),
            ("/v1/memories/search", {"text": "anything"}),
        ]:
            response = await client.post(path, json=body)
            assert response.status_code == 409, response.text
            error = response.json()["error"]
            assert error["code"] == "FAILED_PRECONDITION"
            assert error["reason"] == "EMBEDDINGS_DISABLED"
            assert error["service"] == "memory"
            assert "embedding" in error["message"]
