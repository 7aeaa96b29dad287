"""DuckLM from another language: the Node.js client (clients/node, @grpc/grpc-js loading the same
.proto files at run time) chats with the real model, and approves a gated tool on the scripted
stack. It proves the gRPC contract, not the Python code, is the API."""

from __future__ import annotations

import json

import pytest

from deploy.stack import LocalStack
from tests.clients.conftest import NODE_DIR, ScriptedStack, client_env, run_process


@pytest.mark.model
async def test_node_chats_with_the_real_model(stack: LocalStack, node_modules: None) -> None:
    finished = await run_process(
        ["node", "examples/chat.js", "--json", "Say hello in a few words."],
        env=client_env(stack),
        cwd=NODE_DIR,
    )
    assert finished.code == 0, finished.stderr
    summary = json.loads(finished.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed"
    assert summary["reply"].strip()
    # The reply arrived token by token, and the pieces add up to the final message (after any
    # output the runtime had to send back for repair).
    assert summary["streamed"].endswith(summary["reply"])
    assert summary["usage"]["promptTokens"] > 0 and summary["steps"] >= 1


async def test_node_approves_a_gated_tool(scripted: ScriptedStack, node_modules: None) -> None:
    scripted.script(
        [
            {
                "action": "call_tool",
                "tool": "write_file",
                "arguments": {"path": "node.txt", "content": "written from node"},
            },
            {"action": "finish", "message": "Node wrote it."},
        ]
    )
    finished = await run_process(["node", "--test", "test/"], env=scripted.client_env(), cwd=NODE_DIR)
    assert finished.code == 0, finished.stdout + finished.stderr
    assert "# pass 3" in finished.stdout and "# fail 0" in finished.stdout
    assert (scripted.workspace / "node.txt").read_text() == "written from node"
