"""Skill proposals: proposing valid and invalid drafts, promotion into the skills folder,
rejection, and decisions that survive a restart. Pending drafts never appear as skills."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pydantic
import pytest
from ducklm.skills.v1 import skills_pb2

from services.skills import proposals as proposals_module
from services.skills.config import Settings
from services.skills.validation import Problem

PENDING = skills_pb2.PROPOSAL_STATE_PENDING
INVALID = skills_pb2.PROPOSAL_STATE_INVALID
PROMOTED = skills_pb2.PROPOSAL_STATE_PROMOTED
REJECTED = skills_pb2.PROPOSAL_STATE_REJECTED


async def _experience_id(stub: Any) -> str:
    experience = skills_pb2.Experience(
        task_id="task-7",
        goal="summarize the repo",
        outcome=skills_pb2.OUTCOME_COMPLETED,
        tools_used=["list_dir"],
    )
    reply = await stub.RecordExperience(skills_pb2.RecordExperienceRequest(experience=experience))
    return str(reply.id)


async def _propose(stub: Any, text: str, **evidence: Any) -> skills_pb2.SkillProposal:
    reply: skills_pb2.SkillProposal = await stub.ProposeSkill(
        skills_pb2.ProposeSkillRequest(skill_md=text, **evidence)
    )
    return reply


async def _skill_names(stub: Any) -> list[str]:
    reply = await stub.ListSkills(skills_pb2.ListSkillsRequest())
    return [skill.name for skill in reply.skills]


async def test_valid_draft_is_pending_kept_apart_and_never_a_skill(
    skills_service: Any, skill_text: Any
) -> None:
    stub, settings = skills_service.stub, skills_service.settings
    experience_id = await _experience_id(stub)
    text = skill_text("summarize-repo", body="1. Call list_dir.\n")
    proposal = await _propose(
        stub,
        text,
        experience_ids=[experience_id],
        event_refs=["task-7:3", "task-7:9"],
        rationale="Worked twice.",
    )
    assert proposal.state == PENDING and proposal.name == "summarize-repo"
    assert list(proposal.problems) == []
    assert list(proposal.experience_ids) == [experience_id]
    assert list(proposal.event_refs) == ["task-7:3", "task-7:9"]
    assert proposal.rationale == "Worked twice." and proposal.create_time.seconds > 0
    assert not proposal.HasField("decide_time")
    assert (settings.proposals_dir / proposal.id / "SKILL.md").read_text() == text
    assert "summarize-repo" not in await _skill_names(stub)
    assert not (settings.skills_dir / "summarize-repo").exists()
    assert await stub.GetProposal(skills_pb2.GetProposalRequest(proposal_id=proposal.id)) == proposal


async def test_invalid_draft_is_kept_with_its_problems_and_cannot_be_promoted(
    skills_service: Any, rpc_error: Any
) -> None:
    stub = skills_service.stub
    text = "---\nname: Bad_Name\ndescription: Fine words.\nauthor: me\n---\n1. Step.\n"
    proposal = await _propose(stub, text)
    assert proposal.state == INVALID and proposal.name == "Bad_Name"
    assert [(p.source, p.field) for p in proposal.problems] == [
        (proposal.id, "author"),
        (proposal.id, "name"),
        (proposal.id, "name"),
    ]
    error = await rpc_error(
        stub.PromoteProposal(skills_pb2.PromoteProposalRequest(proposal_id=proposal.id, decided_by="ana")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "invalid" in (error.details() or "")
    assert await _skill_names(stub) == ["full-fields", "minimal", "with-resources"]
    rejected = await stub.RejectProposal(
        skills_pb2.RejectProposalRequest(
            proposal_id=proposal.id, decided_by="ana", reason="not a valid skill"
        )
    )
    assert rejected.state == REJECTED and [p.field for p in rejected.problems] == ["author", "name", "name"]


async def test_promotion_installs_the_skill_atomically(
    skills_service: Any, skill_text: Any, rpc_error: Any
) -> None:
    stub, skills_dir = skills_service.stub, skills_service.settings.skills_dir
    text = skill_text("summarize-repo", description="Summarize a repository.", body="1. Call list_dir.\n")
    proposal = await _propose(stub, text)
    promoted = await stub.PromoteProposal(
        skills_pb2.PromoteProposalRequest(proposal_id=proposal.id, decided_by="ana")
    )
    assert promoted.state == PROMOTED and promoted.decided_by == "ana"
    assert promoted.decide_time.seconds >= proposal.create_time.seconds
    installed = (skills_dir / "summarize-repo" / "SKILL.md").read_text()
    assert installed.endswith("---\n\n1. Call list_dir.\n")
    assert f"ducklm-proposal-id: {proposal.id}" in installed
    assert [path.name for path in skills_dir.iterdir() if path.name.startswith(".")] == []
    assert "summarize-repo" in await _skill_names(stub)
    skill = await stub.GetSkill(skills_pb2.GetSkillRequest(name="summarize-repo"))
    assert skill.description == "Summarize a repository." and skill.body == "1. Call list_dir.\n"
    stored = await stub.GetProposal(skills_pb2.GetProposalRequest(proposal_id=proposal.id))
    assert stored == promoted
    for call in (
        stub.PromoteProposal(skills_pb2.PromoteProposalRequest(proposal_id=proposal.id, decided_by="bo")),
        stub.RejectProposal(
            skills_pb2.RejectProposalRequest(proposal_id=proposal.id, decided_by="bo", reason="late")
        ),
    ):
        await rpc_error(call, grpc.StatusCode.FAILED_PRECONDITION)


async def test_promotion_is_seen_at_once_even_with_a_throttled_registry(
    skills_settings: Settings, start_skills: Any, skill_text: Any
) -> None:
    settings = skills_settings.model_copy(update={"rescan_interval": 60.0})
    async with start_skills(settings) as service:
        assert "fresh-skill" not in await _skill_names(service.stub)
        proposal = await _propose(service.stub, skill_text("fresh-skill"))
        await service.stub.PromoteProposal(
            skills_pb2.PromoteProposalRequest(proposal_id=proposal.id, decided_by="ana")
        )
        assert "fresh-skill" in await _skill_names(service.stub)


async def test_promoting_over_an_existing_skill_is_refused(
    skills_service: Any, skill_text: Any, rpc_error: Any
) -> None:
    stub, skills_dir = skills_service.stub, skills_service.settings.skills_dir
    before = (skills_dir / "minimal" / "SKILL.md").read_text()
    proposal = await _propose(stub, skill_text("minimal", description="A rewrite."))
    assert proposal.state == PENDING
    await rpc_error(
        stub.PromoteProposal(skills_pb2.PromoteProposalRequest(proposal_id=proposal.id, decided_by="ana")),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert (skills_dir / "minimal" / "SKILL.md").read_text() == before
    stored = await stub.GetProposal(skills_pb2.GetProposalRequest(proposal_id=proposal.id))
    assert stored.state == PENDING
    assert [path.name for path in skills_dir.iterdir() if path.name.startswith(".")] == []


async def test_promotion_validates_again(
    skills_service: Any, skill_text: Any, rpc_error: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = skills_service.stub
    proposal = await _propose(stub, skill_text("judged-twice"))
    assert proposal.state == PENDING

    def stricter_rules(
        text: str, folder_name: str | None = None, *, strict: bool = False
    ) -> tuple[None, list[Problem]]:
        return None, [Problem("description", "is too vague under the new rules")]

    monkeypatch.setattr(proposals_module, "parse_skill_md", stricter_rules)
    await rpc_error(
        stub.PromoteProposal(skills_pb2.PromoteProposalRequest(proposal_id=proposal.id, decided_by="ana")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    stored = await stub.GetProposal(skills_pb2.GetProposalRequest(proposal_id=proposal.id))
    assert stored.state == INVALID and [p.field for p in stored.problems] == ["description"]
    assert not (skills_service.settings.skills_dir / "judged-twice").exists()


async def test_rejection_records_who_and_why(skills_service: Any, skill_text: Any, rpc_error: Any) -> None:
    stub = skills_service.stub
    proposal = await _propose(stub, skill_text("not-wanted"))
    await rpc_error(
        stub.RejectProposal(skills_pb2.RejectProposalRequest(proposal_id=proposal.id, decided_by="ana")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    rejected = await stub.RejectProposal(
        skills_pb2.RejectProposalRequest(
            proposal_id=proposal.id, decided_by="ana", reason="duplicates minimal"
        )
    )
    assert (
        rejected.state == REJECTED
        and rejected.decided_by == "ana"
        and rejected.reason == "duplicates minimal"
    )
    assert rejected.HasField("decide_time")
    await rpc_error(
        stub.PromoteProposal(skills_pb2.PromoteProposalRequest(proposal_id=proposal.id, decided_by="bo")),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "not-wanted" not in await _skill_names(stub)


async def test_malformed_requests_are_refused(skills_service: Any, skill_text: Any, rpc_error: Any) -> None:
    stub = skills_service.stub
    refused = [
        skills_pb2.ProposeSkillRequest(skill_md=""),
        skills_pb2.ProposeSkillRequest(skill_md=skill_text("x"), experience_ids=["no-such-experience"]),
        skills_pb2.ProposeSkillRequest(skill_md=skill_text("x"), event_refs=["task-7"]),
        skills_pb2.ProposeSkillRequest(skill_md=skill_text("x"), event_refs=["task-7:three"]),
        skills_pb2.ProposeSkillRequest(skill_md="x" * (256 * 1024 + 1)),
    ]
    for request in refused:
        await rpc_error(stub.ProposeSkill(request), grpc.StatusCode.INVALID_ARGUMENT)
    await rpc_error(
        stub.GetProposal(skills_pb2.GetProposalRequest(proposal_id="nope")), grpc.StatusCode.NOT_FOUND
    )
    proposal = await _propose(stub, skill_text("needs-a-reviewer"))
    await rpc_error(
        stub.PromoteProposal(skills_pb2.PromoteProposalRequest(proposal_id=proposal.id)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    reply = await stub.ListProposals(skills_pb2.ListProposalsRequest())
    assert [p.id for p in reply.proposals] == [proposal.id]


async def test_list_proposals_filters_by_state_and_pages(skills_service: Any, skill_text: Any) -> None:
    stub = skills_service.stub
    made = [await _propose(stub, skill_text(f"draft-{n}")) for n in range(4)]
    broken = await _propose(stub, "---\nname: draft-x\n---\n")
    await stub.RejectProposal(
        skills_pb2.RejectProposalRequest(proposal_id=made[0].id, decided_by="a", reason="no")
    )

    async def ids(**request: Any) -> tuple[list[str], str]:
        reply = await stub.ListProposals(skills_pb2.ListProposalsRequest(**request))
        return [p.id for p in reply.proposals], reply.next_page_token

    assert (await ids(state=PENDING))[0] == [made[3].id, made[2].id, made[1].id]
    assert (await ids(state=INVALID))[0] == [broken.id]
    assert (await ids(state=REJECTED))[0] == [made[0].id]
    first, token = await ids(page_size=3)
    second, end = await ids(page_size=3, page_token=token)
    assert first + second == [broken.id, *(p.id for p in reversed(made))] and end == ""


async def test_decisions_and_experiences_survive_a_restart(
    skills_settings: Settings, start_skills: Any, skill_text: Any
) -> None:
    async with start_skills(skills_settings) as service:
        stub = service.stub
        experience_id = await _experience_id(stub)
        promoted = await _propose(stub, skill_text("kept-skill"), experience_ids=[experience_id])
        rejected = await _propose(stub, skill_text("dropped-skill"))
        pending = await _propose(stub, skill_text("waiting-skill"), event_refs=["task-7:1"])
        promoted = await stub.PromoteProposal(
            skills_pb2.PromoteProposalRequest(proposal_id=promoted.id, decided_by="ana")
        )
        rejected = await stub.RejectProposal(
            skills_pb2.RejectProposalRequest(proposal_id=rejected.id, decided_by="bo", reason="too narrow")
        )

    async with start_skills(skills_settings) as service:
        stub = service.stub
        for before in (promoted, rejected, pending):
            assert await stub.GetProposal(skills_pb2.GetProposalRequest(proposal_id=before.id)) == before
        names = await _skill_names(stub)
        assert "kept-skill" in names and "waiting-skill" not in names and "dropped-skill" not in names
        experiences = await stub.ListExperiences(skills_pb2.ListExperiencesRequest())
        assert [e.id for e in experiences.experiences] == [experience_id]
        # A pending proposal can still be decided after the restart.
        later = await stub.PromoteProposal(
            skills_pb2.PromoteProposalRequest(proposal_id=pending.id, decided_by="cy")
        )
        assert later.state == PROMOTED and "waiting-skill" in await _skill_names(stub)


def test_proposals_folder_may_not_overlap_the_skills_folder(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="must not contain one another"):
        Settings(skills_dir=tmp_path / "skills", proposals_dir=tmp_path / "skills" / "proposals")
    with pytest.raises(pydantic.ValidationError, match="must not contain one another"):
        Settings(skills_dir=tmp_path / "data" / "skills", proposals_dir=tmp_path / "data")
