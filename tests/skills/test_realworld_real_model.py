"""The real-world skills corpus with the real llama-server and the real tiny model: with 120 skills
loaded, a chat and a chat that loads a 40 KB skill both reach their first model call, and the
catalogue counted by the model's own tokenizer stays inside its budget."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from deploy.stack import LocalStack, StackPorts
from services.common.protos import from_struct
from tests.skills.realworld import write_corpus

pytestmark = pytest.mark.model


async def test_chats_with_the_corpus_loaded_reach_the_real_model(tmp_path: Path) -> None:
    stats = write_corpus(tmp_path / "skills")
    stack = LocalStack(
        data_dir=tmp_path / "data",
        ports=StackPorts.free(),
        log_dir=tmp_path / "logs",
        services=("tools", "skills", "runtime"),
        with_gateway=False,
        without_embeddings=True,
        extra_env={
            "DUCKLM_SKILLS_SKILLS_DIR": str(tmp_path / "skills"),
            "DUCKLM_RUNTIME_RECALL_TOP_K": "0",
            "DUCKLM_RUNTIME_MAX_STEPS": "1",
            "DUCKLM_RUNTIME_MAX_REPLY_CHARS": "80",
        },
    )
    await stack.start(timeout=240)
    try:
        async with grpc.aio.insecure_channel(stack.address("runtime")) as channel:
            stub = runtime_pb2_grpc.RuntimeServiceStub(channel)
            for message, skill in (("Extract the tables from this PDF file", ""), ("Go on", stats.long_bodies[0])):
                reply = await stub.Chat(runtime_pb2.ChatRequest(message=message, skill=skill), timeout=600)
                listed = await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=reply.task.id, page_size=500))
                calls = [e for e in listed.events if e.type == common_pb2.EVENT_TYPE_MODEL_CALL]
                codes = {str(e.data["code"]) for e in listed.events if e.type == common_pb2.EVENT_TYPE_ERROR}
                assert calls, f"no model call for {message!r}: {reply.task.error}"
                assert not codes & {"context_full", "token_budget"}, codes
                # The real tokenizer's count: well inside the 8192-token window.
                assert int(from_struct(calls[0].data)["usage"]["prompt_tokens"]) < 8192 * 0.5
    finally:
        await stack.stop()
