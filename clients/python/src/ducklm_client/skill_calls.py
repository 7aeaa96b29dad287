"""`SkillCalls`: the skills service's part of `AsyncClient` (client.py) — the skill catalogue,
validation, and the proposals reflection writes. Each method builds the request, calls through
`Transport` and returns the typed result (models.py); nothing here holds state of its own.
"""

from __future__ import annotations

from ducklm.skills.v1 import skills_pb2

from ducklm_client import convert
from ducklm_client.models import Proposal, Skill, SkillList, SkillProblem, Validation
from ducklm_client.transport import Transport

__all__ = ["SkillCalls"]


class SkillCalls:
    """Skills and proposals; `AsyncClient` sets `_transport`."""

    _transport: Transport

    async def list_skills(self) -> SkillList:
        """Every skill, and each distinct problem of the skills that did not load."""
        invalid: dict[tuple[str, str, str], SkillProblem] = {}

        def read(response: skills_pb2.ListSkillsResponse) -> list[Skill]:
            for item in response.invalid_skills:
                problem = convert.problem(item)
                invalid[(problem.source, problem.field, problem.message)] = problem
            return [convert.skill(item) for item in response.skills]

        skills = await self._transport.collect(
            "skills", "ListSkills",
            lambda token, size: skills_pb2.ListSkillsRequest(page_size=size, page_token=token), read,
        )
        return SkillList(skills=skills, invalid=list(invalid.values()))

    async def get_skill(self, name: str) -> Skill:
        return convert.skill(
            await self._transport.unary("skills", "GetSkill", skills_pb2.GetSkillRequest(name=name))
        )

    async def validate_skill(
        self, *, skill_md: str | None = None, folder_name: str = "", name: str | None = None, strict: bool = False
    ) -> Validation:
        """Validates a SKILL.md text (`folder_name`: the folder it would live in) or a skill
        already on the server (`name`); `strict` judges by the Agent Skills spec alone."""
        if (skill_md is None) == (name is None):
            raise ValueError("pass either skill_md (with folder_name) or name")
        if name is not None:
            request = skills_pb2.ValidateSkillRequest(name=name, strict=strict)
        else:
            request = skills_pb2.ValidateSkillRequest(skill_md=skill_md, folder_name=folder_name, strict=strict)
        response = await self._transport.unary("skills", "ValidateSkill", request)
        return Validation(
            valid=response.valid,
            problems=[convert.problem(item) for item in response.problems],
            warnings=[convert.problem(item) for item in response.warnings],
        )

    async def list_proposals(self, *, state: str | None = None, limit: int = 100) -> list[Proposal]:
        value = convert.enum_name("PROPOSAL_STATE_", state, convert.PROPOSAL_STATES)
        return await self._transport.collect(
            "skills", "ListProposals",
            lambda token, size: skills_pb2.ListProposalsRequest(page_size=size, page_token=token, state=value),
            lambda response: (convert.proposal(item) for item in response.proposals), limit=limit,
        )

    async def get_proposal(self, proposal_id: str) -> Proposal:
        request = skills_pb2.GetProposalRequest(proposal_id=proposal_id)
        return convert.proposal(await self._transport.unary("skills", "GetProposal", request))

    async def promote_proposal(self, proposal_id: str, *, decided_by: str) -> Proposal:
        request = skills_pb2.PromoteProposalRequest(proposal_id=proposal_id, decided_by=decided_by)
        return convert.proposal(await self._transport.unary("skills", "PromoteProposal", request))

    async def reject_proposal(self, proposal_id: str, *, decided_by: str, reason: str = "") -> Proposal:
        request = skills_pb2.RejectProposalRequest(
            proposal_id=proposal_id, decided_by=decided_by, reason=reason
        )
        return convert.proposal(await self._transport.unary("skills", "RejectProposal", request))
