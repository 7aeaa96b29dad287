"""Skills, skill proposals and experience: list / get / validate skills; list / get / propose /
promote / reject proposals; list experience records. All served by the skills service."""

from __future__ import annotations

from typing import Any

from ducklm.skills.v1 import skills_pb2
from pydantic import ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.api import ApiRoute, Doc, backends_of, paging, query, unary
from services.gateway.convert import (
    OUTCOMES,
    PROPOSAL_STATES,
    experience_json,
    problem_json,
    proposal_json,
    skill_json,
)
from services.gateway.inputs import Body, query_choice, query_int, query_str, read_body
from services.gateway.openapi_schemas import words

__all__ = ["routes"]

MAX_SKILL_MD_CHARS = 256 * 1024
# Who a proposal decision is recorded as when the client does not say.
DEFAULT_DECIDER = "gateway"


class ValidateBody(Body):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["skill_md"]}, {"required": ["name"]}]}
    )

    # Exactly one of: a SKILL.md text, or the name of a skill folder on the service's disk.
    skill_md: str | None = Field(default=None, max_length=MAX_SKILL_MD_CHARS)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    # With skill_md: the folder name the skill's `name` must equal.
    folder_name: str = Field(default="", max_length=200)
    # Judge by the spec alone: extra front-matter keys and a name/folder mismatch are problems.
    strict: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ValidateBody:
        if (self.skill_md is None) == (self.name is None):
            raise ValueError("give exactly one of skill_md (a SKILL.md text) or name (a skill folder)")
        return self


class ProposeBody(Body):
    skill_md: str = Field(min_length=1, max_length=MAX_SKILL_MD_CHARS)
    experience_ids: list[str] = Field(default_factory=list, max_length=100)
    event_refs: list[str] = Field(default_factory=list, max_length=1000)
    rationale: str = Field(default="", max_length=10_000)


class PromoteBody(Body):
    decided_by: str = Field(default=DEFAULT_DECIDER, min_length=1, max_length=200)


class RejectBody(Body):
    decided_by: str = Field(default=DEFAULT_DECIDER, min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)


def _page_size(request: Request) -> int:
    return query_int(request, "page_size", 0, maximum=500)


async def list_skills(request: Request) -> Response:
    message = skills_pb2.ListSkillsRequest(page_size=_page_size(request), page_token=query_str(request, "page_token"))
    return await unary(request, "skills", backends_of(request).skills.ListSkills, message, _skill_list)


def _skill_list(reply: skills_pb2.ListSkillsResponse) -> dict[str, Any]:
    return {
        "skills": [skill_json(skill, with_body=False) for skill in reply.skills],
        "invalid_skills": [problem_json(problem) for problem in reply.invalid_skills],
        "next_page_token": reply.next_page_token,
    }


async def get_skill(request: Request) -> Response:
    message = skills_pb2.GetSkillRequest(name=request.path_params["name"])
    return await unary(
        request, "skills", backends_of(request).skills.GetSkill, message, lambda skill: skill_json(skill, with_body=True)
    )


async def validate_skill(request: Request) -> Response:
    body = await read_body(request, ValidateBody)
    message = (
        skills_pb2.ValidateSkillRequest(skill_md=body.skill_md, folder_name=body.folder_name, strict=body.strict)
        if body.skill_md is not None
        else skills_pb2.ValidateSkillRequest(name=body.name, strict=body.strict)
    )
    return await unary(request, "skills", backends_of(request).skills.ValidateSkill, message, _validation)


def _validation(reply: skills_pb2.ValidateSkillResponse) -> dict[str, Any]:
    return {
        "valid": reply.valid,
        "problems": [problem_json(problem) for problem in reply.problems],
        "warnings": [problem_json(warning) for warning in reply.warnings],
    }


async def list_proposals(request: Request) -> Response:
    state = query_choice(request, "state", {"all": 0, **PROPOSAL_STATES}, "all")
    message = skills_pb2.ListProposalsRequest(
        state=state,  # type: ignore[arg-type]
        page_size=_page_size(request),
        page_token=query_str(request, "page_token"),
    )
    return await unary(request, "skills", backends_of(request).skills.ListProposals, message, _proposal_list)


def _proposal_list(reply: skills_pb2.ListProposalsResponse) -> dict[str, Any]:
    return {
        "proposals": [proposal_json(proposal) for proposal in reply.proposals],
        "next_page_token": reply.next_page_token,
    }


async def propose_skill(request: Request) -> Response:
    body = await read_body(request, ProposeBody)
    message = skills_pb2.ProposeSkillRequest(
        skill_md=body.skill_md,
        experience_ids=body.experience_ids,
        event_refs=body.event_refs,
        rationale=body.rationale,
    )
    return await unary(request, "skills", backends_of(request).skills.ProposeSkill, message, proposal_json, status=201)


async def get_proposal(request: Request) -> Response:
    message = skills_pb2.GetProposalRequest(proposal_id=request.path_params["proposal_id"])
    return await unary(request, "skills", backends_of(request).skills.GetProposal, message, proposal_json)


async def promote_proposal(request: Request) -> Response:
    body = await read_body(request, PromoteBody, allow_empty=True)
    message = skills_pb2.PromoteProposalRequest(
        proposal_id=request.path_params["proposal_id"], decided_by=body.decided_by
    )
    return await unary(request, "skills", backends_of(request).skills.PromoteProposal, message, proposal_json)


async def reject_proposal(request: Request) -> Response:
    body = await read_body(request, RejectBody, allow_empty=True)
    message = skills_pb2.RejectProposalRequest(
        proposal_id=request.path_params["proposal_id"], decided_by=body.decided_by, reason=body.reason
    )
    return await unary(request, "skills", backends_of(request).skills.RejectProposal, message, proposal_json)


async def list_experiences(request: Request) -> Response:
    outcome = query_choice(request, "outcome", {"all": 0, **OUTCOMES}, "all")
    message = skills_pb2.ListExperiencesRequest(
        outcome=outcome,  # type: ignore[arg-type]
        task_id=query_str(request, "task_id", max_length=128),
        tool=query_str(request, "tool", max_length=200),
        page_size=_page_size(request),
        page_token=query_str(request, "page_token"),
    )
    return await unary(request, "skills", backends_of(request).skills.ListExperiences, message, _experience_list)


def _experience_list(reply: skills_pb2.ListExperiencesResponse) -> dict[str, Any]:
    return {
        "experiences": [experience_json(item) for item in reply.experiences],
        "next_page_token": reply.next_page_token,
    }


routes = [
    ApiRoute("/v1/skills", "GET", list_skills, Doc(
        "List valid skills, and problems of invalid ones", "skills", reply="SkillList", params=paging(),
    )),
    ApiRoute("/v1/skills/validate", "POST", validate_skill, Doc(
        "Validate a SKILL.md text or a skill folder", "skills", reply="Validation", errors=(404,), body=ValidateBody,
    )),
    ApiRoute("/v1/skills/{name}", "GET", get_skill, Doc(
        "Get a skill with its body", "skills", reply="Skill", errors=(404,),
    )),
    ApiRoute("/v1/skill-proposals", "GET", list_proposals, Doc(
        "List skill proposals", "skills", reply="ProposalList",
        params=(*paging(), query("state", words(PROPOSAL_STATES, "all"))),
    )),
    ApiRoute("/v1/skill-proposals", "POST", propose_skill, Doc(
        "Propose a skill (stored for review, never loaded until promoted)", "skills", ok=201, reply="Proposal",
        errors=(409,), body=ProposeBody,
    )),
    ApiRoute("/v1/skill-proposals/{proposal_id}", "GET", get_proposal, Doc(
        "Get a proposal", "skills", reply="Proposal", errors=(404,),
    )),
    ApiRoute("/v1/skill-proposals/{proposal_id}/promote", "POST", promote_proposal, Doc(
        "Turn a valid proposal into a skill", "skills", reply="Proposal", errors=(404, 409), body=PromoteBody,
        body_required=False,
    )),
    ApiRoute("/v1/skill-proposals/{proposal_id}/reject", "POST", reject_proposal, Doc(
        "Reject a proposal", "skills", reply="Proposal", errors=(404, 409), body=RejectBody, body_required=False,
    )),
    ApiRoute("/v1/experiences", "GET", list_experiences, Doc(
        "List experience records of finished tasks", "skills", reply="ExperienceList",
        params=(*paging(), query("outcome", words(OUTCOMES, "all")), query("task_id"), query("tool")),
    )),
]
