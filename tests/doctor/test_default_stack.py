"""The doctor against the real default stack (llama-server with the real model, every gRPC
service and the gateway, started as `make run` does): every required check passes."""

from __future__ import annotations

from deploy.stack import LocalStack
from tests.doctor.conftest import run_doctor


async def test_every_required_check_passes_on_the_default_stack(stack: LocalStack) -> None:
    run = await run_doctor(stack.started_environment)
    assert run.failed == [], run.stdout
    assert run.code == 0
    passed = {(c["section"], c["name"]) for c in run.checks if c["status"] == "pass"}
    # Proven on the real llama-server, not assumed.
    for name in ("endpoint", "model", "json_schema", "streaming", "context window", "tokenize", "timings"):
        assert ("models.chat", name) in passed
    assert ("models.embedding", "dimension") in passed
    for service, protos in {
        "runtime": ["runtime"], "tools": ["tools", "approvals"], "skills": ["skills"], "memory": ["memory"]
    }.items():
        assert (f"services.{service}", "health") in passed
        assert (f"services.{service}", "reflection") in passed
        for proto in protos:
            assert (f"services.{service}", f"proto ducklm/{proto}/v1/{proto}.proto") in passed
    ports = [c for c in run.checks if c["section"] == "machine" and c["name"].startswith("port ")]
    assert ports and all("held by DuckLM" in c["detail"] for c in ports)
    assert ("machine", "sandbox") in passed
    assert ("machine", "llama-server") in passed
