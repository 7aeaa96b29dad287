"""The doctor against model servers with one flaw each: every flaw is reported by its own line,
with its fix, and a required one makes the exit status non-zero."""

from __future__ import annotations

import json
from pathlib import Path

from tests.doctor.conftest import clean_environment, run_doctor, write_models
from tests.doctor.stub_model import StubModel


def _chat_env(tmp_path: Path, stub: StubModel, **role: object) -> dict[str, str]:
    models = write_models(
        tmp_path / "models.yaml",
        {"chat": {"endpoint": stub.endpoint, "model": stub.model_id, "context_window": 8192, **role}},
    )
    return clean_environment(tmp_path / "data", DUCKLM_RUNTIME_MODELS_FILE=str(models))


async def test_an_honest_server_passes_every_model_check(tmp_path: Path, stub_model: StubModel) -> None:
    run = await run_doctor(_chat_env(tmp_path, stub_model), "--only", "models")
    statuses = {check["name"]: check["status"] for check in run.checks if check["section"] == "models.chat"}
    assert statuses == {
        "endpoint": "pass", "model": "pass", "json_schema": "pass", "streaming": "pass",
        "timings": "pass", "context window": "pass", "tokenize": "pass",
    }
    # The embedding role is absent: a warning, not a failure.
    assert run.find("models.embedding", "role")["status"] == "warn"
    assert run.code == 0


async def test_a_server_that_ignores_response_format_fails_the_json_schema_line(
    tmp_path: Path, stub_model: StubModel
) -> None:
    stub_model.honours_schema = False
    run = await run_doctor(_chat_env(tmp_path, stub_model), "--only", "models")
    check = run.find("models.chat", "json_schema")
    assert check["status"] == "fail"
    assert "ignores the schema" in check["detail"]
    assert "response_format json_schema" in check["fix"]
    assert run.failed == [("models.chat", "json_schema")]
    assert run.code == 1


async def test_a_smaller_context_window_than_configured_fails_with_the_real_figure(
    tmp_path: Path, stub_model: StubModel
) -> None:
    stub_model.n_ctx = 2048
    run = await run_doctor(_chat_env(tmp_path, stub_model), "--only", "models")
    check = run.find("models.chat", "context window")
    assert check["status"] == "fail"
    assert "2048" in check["detail"] and "8192" in check["detail"]
    assert "roles.chat.context_window: 2048" in check["fix"]
    assert run.failed == [("models.chat", "context window")]
    assert run.code == 1


async def test_missing_llama_server_extras_are_warnings_that_say_what_is_lost(
    tmp_path: Path, stub_model: StubModel
) -> None:
    stub_model.n_ctx = None
    stub_model.timings = False
    stub_model.tokenize = False
    run = await run_doctor(_chat_env(tmp_path, stub_model), "--only", "models")
    assert run.find("models.chat", "timings")["status"] == "warn"
    assert "prompt-cache figures" in run.find("models.chat", "timings")["fix"]
    assert run.find("models.chat", "tokenize")["status"] == "warn"
    assert run.find("models.chat", "context window")["status"] == "warn"
    assert run.code == 0


async def test_an_unknown_model_name_on_a_server_with_several_fails_the_model_line(
    tmp_path: Path, stub_model: StubModel
) -> None:
    env = _chat_env(tmp_path, stub_model, model="no-such-model")
    # One model served: llama-server answers to any name, so that is only a warning.
    check = (await run_doctor(env, "--only", "models")).find("models.chat", "model")
    assert check["status"] == "warn"
    assert f"roles.chat.model: {stub_model.model_id}" in check["fix"]
    stub_model.others = ("other-model",)
    run = await run_doctor(env, "--only", "models")
    check = run.find("models.chat", "model")
    assert check["status"] == "fail"
    assert "stub-model, other-model" in check["detail"]
    assert run.code == 1


async def test_an_unreachable_endpoint_fails_and_says_how_to_start_it(tmp_path: Path, stub_model: StubModel) -> None:
    env = _chat_env(tmp_path, stub_model)
    await stub_model.stop()
    run = await run_doctor(env, "--only", "models", "--role", "chat")
    assert run.failed == [("models.chat", "endpoint")]
    assert "make run" in run.find("models.chat", "endpoint")["fix"]
    assert run.code == 1
    await stub_model.start()


async def test_an_embedding_dimension_unlike_an_existing_collection_fails_that_collection(
    tmp_path: Path, stub_model: StubModel
) -> None:
    data = tmp_path / "data"
    # As the edge backend records a collection (services/memory/edge_store.py).
    collection = data / "memory" / "memories"
    collection.mkdir(parents=True)
    (collection / "collection.json").write_text(
        json.dumps({"name": "memories", "dimension": 576, "embedding_model": stub_model.model_id, "distance": "cosine"})
    )
    stub_model.embedding_dimension = 384
    models = write_models(
        tmp_path / "models.yaml",
        {
            "chat": {"endpoint": stub_model.endpoint, "model": stub_model.model_id},
            "embedding": {"endpoint": stub_model.endpoint, "model": stub_model.model_id},
        },
    )
    run = await run_doctor(clean_environment(data, DUCKLM_RUNTIME_MODELS_FILE=str(models)), "--only", "models")
    assert run.find("models.embedding", "dimension")["detail"].startswith("384 dimensions")
    check = run.find("models.embedding", "collection memories")
    assert check["status"] == "fail"
    assert "576" in check["detail"] and "384" in check["detail"]
    assert str(collection) in check["fix"]
    assert run.failed == [("models.embedding", "collection memories")]
    assert run.code == 1


async def test_a_matching_collection_passes(tmp_path: Path, stub_model: StubModel) -> None:
    data = tmp_path / "data"
    collection = data / "memory" / "memories"
    collection.mkdir(parents=True)
    (collection / "collection.json").write_text(
        json.dumps({"name": "memories", "dimension": 16, "embedding_model": stub_model.model_id})
    )
    models = write_models(
        tmp_path / "models.yaml",
        {
            "chat": {"endpoint": stub_model.endpoint, "model": stub_model.model_id},
            "embedding": {"endpoint": stub_model.endpoint, "model": stub_model.model_id},
        },
    )
    run = await run_doctor(clean_environment(data, DUCKLM_RUNTIME_MODELS_FILE=str(models)), "--only", "models")
    assert run.find("models.embedding", "collection memories")["status"] == "pass"
    assert run.code == 0
