"""A proposal's evidence must exist (each event ref inside a recorded experience of its task), and
a promoted skill carries its proposal id and evidence in its metadata."""

from __future__ import annotations

from typing import Any

import grpc
from ducklm.skills.v1 import skills_pb2

DRAFT = "---\nname: list-and-read\ndescription: List a folder, then read its README.\n---\n\n1. Call list_dir.\n"


async def _record(stub: Any, task_id: str, last_event_seq: int) -> str:
    experience = skills_pb2.Experience(
        task_id=task_id, goal="look around", outcome=skills_pb2.OUTCOME_COMPLETED, last_event_seq=last_event_seq
    )
    reply = await stub.RecordExperience(skills_pb2.RecordExperienceRequest(experience=experience))
    assert reply.last_event_seq == last_event_seq
    return str(reply.id)


async def test_event_refs_that_name_no_recorded_event_are_refused(skills_service: Any, rpc_error: Any) -> None:
    stub = skills_service.stub
    experience_id = await _record(stub, "task-1", 12)
    for ref, fragment in (("unknowntask:999", "no experience of task"), ("task-1:13", "has no event 13"),
                          ("task-1:0", "has no event 0")):
        error = await rpc_error(
            stub.ProposeSkill(skills_pb2.ProposeSkillRequest(
                skill_md=DRAFT, experience_ids=[experience_id], event_refs=[ref]
            )),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert fragment in (error.details() or ""), ref
    listed = await stub.ListProposals(skills_pb2.ListProposalsRequest())
    assert list(listed.proposals) == [], "a refused draft is not stored"


async def test_a_promoted_skill_records_its_proposal_and_evidence(skills_service: Any) -> None:
    stub = skills_service.stub
    experience_id = await _record(stub, "task-2", 9)
    proposal = await stub.ProposeSkill(skills_pb2.ProposeSkillRequest(
        skill_md=DRAFT, experience_ids=[experience_id], event_refs=["task-2:4", "task-2:9"]
    ))
    await stub.PromoteProposal(skills_pb2.PromoteProposalRequest(proposal_id=proposal.id, decided_by="ana"))
    skill = await stub.GetSkill(skills_pb2.GetSkillRequest(name="list-and-read"))
    assert skill.metadata["ducklm-proposal-id"] == proposal.id
    assert skill.metadata["ducklm-evidence"] == "task-2:4 task-2:9"
    assert skill.metadata["ducklm-experiences"] == experience_id
    assert skill.body == "1. Call list_dir.\n"
