"""Skills, skill proposals and experience through the REST API, against the real skills service
(over a copy of the repository's skills folder)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import GatewayStack
from tests.gateway.streams import wait_for_status


def skill_md(name: str, description: str = "Says quack when asked to. Use for duck noises.") -> str:
    return f"---\nname: {name}\ndescription: {description}\n---\n\n# {name}\n\nSay **quack**.\n"


async def test_skills_are_listed_and_read_with_their_body(api: httpx.AsyncClient) -> None:
    listing = await api.get("/v1/skills")
    assert listing.status_code == 200, listing.text
    names = [skill["name"] for skill in listing.json()["skills"]]
    assert "analyze-project" in names
    listed = next(skill for skill in listing.json()["skills"] if skill["name"] == "analyze-project")
    assert "body" not in listed and "list_dir" in listed["allowed_tools"]
    skill = (await api.get("/v1/skills/analyze-project")).json()
    assert skill["body"].startswith("# Analyze a project")
    assert "references/build-files.md" in skill["files"]
    assert skill["metadata"]["author"] == "ducklm"
    missing = await api.get("/v1/skills/no-such-skill")
    assert missing.status_code == 404 and missing.json()["error"]["service"] == "skills"


async def test_validate_reports_every_problem(api: httpx.AsyncClient) -> None:
    good = (
        await api.post(
            "/v1/skills/validate", json={"skill_md": skill_md("quacker"), "folder_name": "quacker"}
        )
    ).json()
    assert good == {"valid": True, "problems": [], "warnings": []}
    extra = (
        await api.post(
            "/v1/skills/validate",
            json={"skill_md": skill_md("quacker").replace("---\n", "---\nargument-hint: x\n", 1), "strict": True},
        )
    ).json()
    assert extra["valid"] is False and [p["field"] for p in extra["problems"]] == ["argument-hint"]
    bad = (await api.post("/v1/skills/validate", json={"skill_md": "---\nname: Bad Name\n---\nbody"})).json()
    assert bad["valid"] is False
    assert {problem["field"] for problem in bad["problems"]} >= {"name", "description"}
    on_disk = (await api.post("/v1/skills/validate", json={"name": "analyze-project"})).json()
    assert on_disk["valid"] is True


@pytest.mark.parametrize(
    "body",
    [{}, {"skill_md": "x", "name": "y"}, {"name": ""}, {"skill_md": 3}, {"skill_md": "x", "extra": 1}],
)
async def test_validate_refuses_bad_bodies(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await api.post("/v1/skills/validate", json=body)
    assert response.status_code == 400, response.text


async def test_a_proposal_is_promoted_into_a_skill(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    name = f"quack-{uuid.uuid4().hex[:6]}"
    created = await api.post(
        "/v1/skill-proposals", json={"skill_md": skill_md(name), "rationale": "ducks ask"}
    )
    assert created.status_code == 201, created.text
    proposal = created.json()
    assert proposal["state"] == "pending" and proposal["name"] == name
    listed = (await api.get("/v1/skill-proposals", params={"state": "pending"})).json()["proposals"]
    assert proposal["id"] in {item["id"] for item in listed}
    assert (await api.get(f"/v1/skill-proposals/{proposal['id']}")).json() == proposal

    promoted = await api.post(f"/v1/skill-proposals/{proposal['id']}/promote", json={"decided_by": "ada"})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["state"] == "promoted" and promoted.json()["decided_by"] == "ada"
    assert (gateway_stack.data_dir / "skills" / name / "SKILL.md").is_file()
    assert (await api.get(f"/v1/skills/{name}")).json()["body"].startswith(f"# {name}")
    again = await api.post(f"/v1/skill-proposals/{proposal['id']}/promote")
    assert again.status_code == 409 and again.json()["error"]["reason"] == "PROPOSAL_DECIDED"


async def test_a_proposal_is_rejected_with_a_reason(api: httpx.AsyncClient) -> None:
    proposal = (
        await api.post("/v1/skill-proposals", json={"skill_md": skill_md(f"nope-{uuid.uuid4().hex[:6]}")})
    ).json()
    without_reason = await api.post(f"/v1/skill-proposals/{proposal['id']}/reject")
    assert without_reason.status_code == 400 and "reason" in without_reason.json()["error"]["message"]
    rejected = await api.post(f"/v1/skill-proposals/{proposal['id']}/reject", json={"reason": "too noisy"})
    assert rejected.status_code == 200
    assert rejected.json()["state"] == "rejected" and rejected.json()["reason"] == "too noisy"
    only_rejected = (await api.get("/v1/skill-proposals", params={"state": "rejected"})).json()["proposals"]
    assert {item["state"] for item in only_rejected} == {"rejected"}


async def test_an_invalid_proposal_is_kept_with_its_problems_and_cannot_be_promoted(
    api: httpx.AsyncClient,
) -> None:
    proposal = (await api.post("/v1/skill-proposals", json={"skill_md": "---\nname: x\n---\n"})).json()
    assert proposal["state"] == "invalid" and proposal["problems"]
    refused = await api.post(f"/v1/skill-proposals/{proposal['id']}/promote")
    assert refused.status_code == 409 and refused.json()["error"]["reason"] == "PROPOSAL_INVALID"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/skill-proposals", {}, 400),
        ("POST", "/v1/skill-proposals", {"skill_md": ""}, 400),
        ("POST", "/v1/skill-proposals", {"skill_md": "x", "experience_ids": ["no-such-experience"]}, 400),
        ("GET", "/v1/skill-proposals/nope", None, 404),
        ("POST", "/v1/skill-proposals/nope/promote", None, 404),
        ("POST", "/v1/skill-proposals/nope/reject", {"reason": "x"}, 404),
        ("POST", "/v1/skill-proposals/nope/promote", {"decided_by": 5}, 400),
        ("GET", "/v1/skill-proposals?state=someday", None, 400),
    ],
)
async def test_proposal_routes_refuse_bad_input(
    api: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    response = await api.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


async def test_finished_tasks_are_listed_as_experience(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script(
        [
            {"action": "call_tool", "tool": "list_dir", "arguments": {}},
            {"action": "finish", "message": "The workspace is listed."},
        ]
    )
    task_id = (await api.post("/v1/chat", json={"message": "List the workspace"})).json()["task_id"]
    await wait_for_status(api, task_id, "completed")
    experiences: list[dict[str, Any]] = []
    for _ in range(50):
        experiences = (await api.get("/v1/experiences", params={"task_id": task_id})).json()["experiences"]
        if experiences:
            break
        await asyncio.sleep(0.1)
    assert experiences, "the runtime records an experience when a task finishes"
    assert experiences[0]["outcome"] == "completed" and "list_dir" in experiences[0]["tools_used"]
    by_tool = (await api.get("/v1/experiences", params={"tool": "list_dir", "outcome": "completed"})).json()[
        "experiences"
    ]
    assert task_id in {item["task_id"] for item in by_tool}
    assert (await api.get("/v1/experiences", params={"outcome": "soon"})).status_code == 400
