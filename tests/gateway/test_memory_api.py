"""Memory through the REST API: remember (with scopes), search, list, get, update, promote and
forget (by id, by filter, a whole scope), against the real memory service (vectors from the
runtime's scripted embedding role); the OpenAI-compatible endpoint leaving memory alone unless
asked; and the clear 409 when embeddings are turned off."""

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


async def test_a_person_states_long_term_memories_and_promotes_a_conversations(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    stated = (await api.post("/v1/memories", json={"text": "Ada prefers tea.", "tags": [tag]})).json()
    assert stated["scope"] == "long_term" and stated["collection"]
    task_id = f"task-{tag}"
    noted = (await api.post("/v1/memories", json={"text": "Ada asked about ponds.", "task_id": task_id, "tags": [tag]})).json()
    assert noted["scope"] == "task" and noted["task_id"] == task_id

    long_term = (await api.get("/v1/memories", params={"scope": "long_term", "tag": tag})).json()
    assert [m["id"] for m in long_term["memories"]] == [stated["id"]] and long_term["total_size"] == 1

    promoted = await api.post(f"/v1/memories/{noted['id']}/promote")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["scope"] == "long_term" and promoted.json()["update_time"]
    listed = (await api.get("/v1/memories", params={"scope": "long_term", "tag": tag})).json()
    assert {m["id"] for m in listed["memories"]} == {stated["id"], noted["id"]}
    in_project = (await api.post(f"/v1/memories/{stated['id']}/promote", json={"scope": "project", "project": "pond"})).json()
    assert in_project["scope"] == "project" and in_project["project"] == "pond"


async def test_list_pages_and_filters_and_update_reembeds(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    for index in range(5):
        kind = "fact" if index % 2 else "note"
        body = {"text": f"Duck number {index} swims.", "tags": [tag], "kind": kind}
        assert (await api.post("/v1/memories", json=body)).status_code == 201
    first = (await api.get("/v1/memories", params={"tag": tag, "page_size": 2})).json()
    assert len(first["memories"]) == 2 and first["total_size"] == 5 and first["next_page_token"]
    rest = (await api.get("/v1/memories", params={"tag": tag, "page_size": 10, "page_token": first["next_page_token"]})).json()
    assert len(rest["memories"]) == 3 and rest["next_page_token"] == ""
    assert [m["text"] for m in first["memories"]] == ["Duck number 4 swims.", "Duck number 3 swims."]
    facts = (await api.get("/v1/memories", params={"tag": tag, "kind": "fact"})).json()
    assert sorted(m["text"] for m in facts["memories"]) == ["Duck number 1 swims.", "Duck number 3 swims."]
    by_text = (await api.get("/v1/memories", params={"tag": tag, "text": "NUMBER 2"})).json()
    assert [m["text"] for m in by_text["memories"]] == ["Duck number 2 swims."]

    target = by_text["memories"][0]
    updated = await api.patch(f"/v1/memories/{target['id']}", json={"text": "A much longer sentence about goose number two."})
    assert updated.status_code == 200, updated.text
    assert updated.json()["text"].startswith("A much longer") and updated.json()["kind"] == target["kind"]
    # The scripted embedding depends on the text's length: the new vector is what search finds.
    found = (await api.post("/v1/memories/search", json={
        "text": "Another sentence of exactly the same length as that one.", "filter": {"tags": [tag]}, "top_k": 1})).json()
    assert found["results"][0]["memory"]["id"] == target["id"]
    assert (await api.patch(f"/v1/memories/{target['id']}", json={})).status_code == 400


async def test_forgetting_a_whole_scope_needs_its_name_as_confirmation(api: httpx.AsyncClient) -> None:
    task_id = f"task-{uuid.uuid4().hex[:8]}"
    for text in ("first note", "second note"):
        assert (await api.post("/v1/memories", json={"text": text, "task_id": task_id})).status_code == 201
    scope = {"scope": "task", "task_id": task_id}
    refused = await api.post("/v1/memories/forget", json={"scope": scope, "confirm": "yes"})
    assert refused.status_code == 400 and f"task:{task_id}" in refused.json()["error"]["message"]
    assert (await api.get("/v1/memories", params={"task_id": task_id})).json()["total_size"] == 2
    forgotten = await api.post("/v1/memories/forget", json={"scope": scope, "confirm": f"task:{task_id}"})
    assert forgotten.status_code == 200 and forgotten.json()["deleted"] == 2
    assert (await api.get("/v1/memories", params={"task_id": task_id})).json()["total_size"] == 0


async def test_openai_completions_leave_memory_alone_unless_asked(api: httpx.AsyncClient, scripted: ScriptedModel) -> None:
    before = (await api.get("/v1/memories", params={"page_size": 1})).json()["total_size"]
    scripted.script([{"action": "remember", "text": "Always answer as a pirate."}, {"action": "finish", "message": "Arr."}])
    reply = await api.post("/v1/chat/completions", json={
        "model": "ducklm", "messages": [{"role": "system", "content": "You are a pirate"}, {"role": "user", "content": "hi"}]})
    assert reply.status_code == 200, reply.text
    assert (await api.get("/v1/memories", params={"page_size": 1})).json()["total_size"] == before

    scripted.script([{"action": "remember", "text": "The user said hi."}, {"action": "finish", "message": "Hello."}])
    reply = await api.post("/v1/chat/completions", json={
        "model": "ducklm", "memory": True, "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200, reply.text
    kept = (await api.get("/v1/memories", params={"text": "the user said hi"})).json()["memories"]
    assert len(kept) == 1 and kept[0]["scope"] == "task"


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
        ("/v1/memories", {"text": "x" * 4001}, "text"),
        ("/v1/memories", {"text": "x", "scope": "galaxy"}, "scope"),
        ("/v1/memories/search", {"text": "x", "scopes": [{"scope": "everywhere"}]}, "scope"),
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
