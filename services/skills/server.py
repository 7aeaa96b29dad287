"""The skills service's gRPC face: translates ducklm.skills.v1 messages to and from the registry,
the experience log and proposal review, and wires them together in `create_server`.

No rules live here: validation, storage and review are in their own modules.
"""

from __future__ import annotations

import grpc
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc

from services.common.errors import InvalidArgument, grpc_errors
from services.common.paging import next_page_token, page_bounds
from services.common.protos import to_timestamp
from services.common.server import GrpcServer, ServiceBinding, build_server
from services.skills.config import Settings
from services.skills.experiences import ExperienceLog
from services.skills.folders import MAX_SKILL_MD_BYTES
from services.skills.models import Experience, ExperienceFilter, Outcome, Proposal, ProposalState
from services.skills.proposals import ProposalDraft, ProposalReview
from services.skills.registry import SkillRegistry
from services.skills.store import SkillsStore
from services.skills.validation import Problem, SkillDocument, parse_skill_md

__all__ = ["SkillsServicer", "create_server"]

_OUTCOMES = {
    skills_pb2.OUTCOME_COMPLETED: Outcome.COMPLETED,
    skills_pb2.OUTCOME_FAILED: Outcome.FAILED,
    skills_pb2.OUTCOME_CANCELLED: Outcome.CANCELLED,
}
_OUTCOMES_PB = {outcome: number for number, outcome in _OUTCOMES.items()}
_STATES = {
    skills_pb2.PROPOSAL_STATE_PENDING: ProposalState.PENDING,
    skills_pb2.PROPOSAL_STATE_INVALID: ProposalState.INVALID,
    skills_pb2.PROPOSAL_STATE_PROMOTED: ProposalState.PROMOTED,
    skills_pb2.PROPOSAL_STATE_REJECTED: ProposalState.REJECTED,
}
_STATES_PB = {state: number for number, state in _STATES.items()}


class SkillsServicer(skills_pb2_grpc.SkillsServiceServicer):
    def __init__(
        self, registry: SkillRegistry, experiences: ExperienceLog, proposals: ProposalReview
    ) -> None:
        self._registry = registry
        self._experiences = experiences
        self._proposals = proposals

    @grpc_errors
    async def ListSkills(
        self,
        request: skills_pb2.ListSkillsRequest,
        context: grpc.aio.ServicerContext[skills_pb2.ListSkillsRequest, skills_pb2.ListSkillsResponse],
    ) -> skills_pb2.ListSkillsResponse:
        offset, limit = page_bounds(request.page_size, request.page_token)
        snapshot = await self._registry.snapshot()
        names = sorted(snapshot.skills)[offset : offset + limit]
        reply = skills_pb2.ListSkillsResponse(
            skills=[_skill(snapshot.skills[name].document) for name in names],
            next_page_token=next_page_token(offset, limit, len(names)),
        )
        if offset == 0:  # invalid folders once, with the first page
            reply.invalid_skills.extend(
                _problem(invalid.source, problem)
                for invalid in snapshot.invalid
                for problem in invalid.problems
            )
        return reply

    @grpc_errors
    async def GetSkill(
        self,
        request: skills_pb2.GetSkillRequest,
        context: grpc.aio.ServicerContext[skills_pb2.GetSkillRequest, skills_pb2.Skill],
    ) -> skills_pb2.Skill:
        skill = await self._registry.get(request.name)
        files = await self._registry.files(skill)
        return _skill(skill.document, with_body=True, files=files)

    @grpc_errors
    async def GetSkillFile(
        self,
        request: skills_pb2.GetSkillFileRequest,
        context: grpc.aio.ServicerContext[skills_pb2.GetSkillFileRequest, skills_pb2.GetSkillFileResponse],
    ) -> skills_pb2.GetSkillFileResponse:
        content = await self._registry.read_file(request.name, request.path)
        return skills_pb2.GetSkillFileResponse(content=content)

    @grpc_errors
    async def ValidateSkill(
        self,
        request: skills_pb2.ValidateSkillRequest,
        context: grpc.aio.ServicerContext[skills_pb2.ValidateSkillRequest, skills_pb2.ValidateSkillResponse],
    ) -> skills_pb2.ValidateSkillResponse:
        source = request.WhichOneof("source")
        if source == "skill_md":
            if len(request.skill_md.encode()) > MAX_SKILL_MD_BYTES:
                raise InvalidArgument(f"skill_md is larger than {MAX_SKILL_MD_BYTES} bytes")
            label = request.folder_name or "skill_md"
            document, problems = parse_skill_md(
                request.skill_md, request.folder_name or None, strict=request.strict
            )
            warnings = list(document.warnings) if document is not None else []
        elif source == "name":
            label = request.name
            problems, warnings = await self._registry.validate_folder(request.name, strict=request.strict)
        else:
            raise InvalidArgument("give either skill_md (a SKILL.md text) or name (a skill folder)")
        return skills_pb2.ValidateSkillResponse(
            valid=not problems,
            problems=[_problem(label, problem) for problem in problems],
            warnings=[_problem(label, warning) for warning in warnings],
        )

    @grpc_errors
    async def ProposeSkill(
        self,
        request: skills_pb2.ProposeSkillRequest,
        context: grpc.aio.ServicerContext[skills_pb2.ProposeSkillRequest, skills_pb2.SkillProposal],
    ) -> skills_pb2.SkillProposal:
        draft = ProposalDraft(
            skill_md=request.skill_md,
            experience_ids=tuple(request.experience_ids),
            event_refs=tuple(request.event_refs),
            rationale=request.rationale,
        )
        return _proposal(await self._proposals.propose(draft))

    @grpc_errors
    async def ListProposals(
        self,
        request: skills_pb2.ListProposalsRequest,
        context: grpc.aio.ServicerContext[skills_pb2.ListProposalsRequest, skills_pb2.ListProposalsResponse],
    ) -> skills_pb2.ListProposalsResponse:
        state = _STATES.get(request.state)
        if state is None and request.state != skills_pb2.PROPOSAL_STATE_UNSPECIFIED:
            raise InvalidArgument(f"unknown proposal state {request.state}")
        rows, token = await self._proposals.list(state, request.page_size, request.page_token)
        return skills_pb2.ListProposalsResponse(
            proposals=[_proposal(row) for row in rows], next_page_token=token
        )

    @grpc_errors
    async def GetProposal(
        self,
        request: skills_pb2.GetProposalRequest,
        context: grpc.aio.ServicerContext[skills_pb2.GetProposalRequest, skills_pb2.SkillProposal],
    ) -> skills_pb2.SkillProposal:
        return _proposal(await self._proposals.get(request.proposal_id))

    @grpc_errors
    async def PromoteProposal(
        self,
        request: skills_pb2.PromoteProposalRequest,
        context: grpc.aio.ServicerContext[skills_pb2.PromoteProposalRequest, skills_pb2.SkillProposal],
    ) -> skills_pb2.SkillProposal:
        return _proposal(await self._proposals.promote(request.proposal_id, request.decided_by))

    @grpc_errors
    async def RejectProposal(
        self,
        request: skills_pb2.RejectProposalRequest,
        context: grpc.aio.ServicerContext[skills_pb2.RejectProposalRequest, skills_pb2.SkillProposal],
    ) -> skills_pb2.SkillProposal:
        return _proposal(
            await self._proposals.reject(request.proposal_id, request.decided_by, request.reason)
        )

    @grpc_errors
    async def RecordExperience(
        self,
        request: skills_pb2.RecordExperienceRequest,
        context: grpc.aio.ServicerContext[skills_pb2.RecordExperienceRequest, skills_pb2.Experience],
    ) -> skills_pb2.Experience:
        given = request.experience
        experience = Experience(
            id=given.id,
            task_id=given.task_id,
            goal=given.goal,
            outcome=_OUTCOMES.get(given.outcome),
            steps=given.steps,
            tools_used=tuple(given.tools_used),
            errors=tuple(given.errors),
            duration_seconds=given.duration_seconds,
            prompt_tokens=given.prompt_tokens,
            completion_tokens=given.completion_tokens,
            final_answer=given.final_answer,
            skills_used=tuple(given.skills_used),
            last_event_seq=given.last_event_seq,
        )
        return _experience(await self._experiences.record(experience))

    @grpc_errors
    async def ListExperiences(
        self,
        request: skills_pb2.ListExperiencesRequest,
        context: grpc.aio.ServicerContext[skills_pb2.ListExperiencesRequest, skills_pb2.ListExperiencesResponse],
    ) -> skills_pb2.ListExperiencesResponse:
        outcome = _OUTCOMES.get(request.outcome)
        if outcome is None and request.outcome != skills_pb2.OUTCOME_UNSPECIFIED:
            raise InvalidArgument(f"unknown outcome {request.outcome}")
        where = ExperienceFilter(outcome=outcome, task_id=request.task_id, tool=request.tool)
        rows, token = await self._experiences.list(where, request.page_size, request.page_token)
        return skills_pb2.ListExperiencesResponse(
            experiences=[_experience(row) for row in rows], next_page_token=token
        )


async def create_server(settings: Settings) -> GrpcServer:
    """Opens the database, builds the registry over the skills folder, and starts serving."""
    store = await SkillsStore.open(settings.database)
    registry = SkillRegistry(
        settings.skills_dir,
        rescan_interval=settings.rescan_interval,
        max_file_bytes=settings.max_file_bytes,
        strict=settings.strict,
    )
    servicer = SkillsServicer(
        registry, ExperienceLog(store), ProposalReview(store, registry, settings.proposals_dir)
    )
    binding = ServiceBinding(
        servicer=servicer,
        add=skills_pb2_grpc.add_SkillsServiceServicer_to_server,
        full_name=skills_pb2.DESCRIPTOR.services_by_name["SkillsService"].full_name,
    )
    try:
        running = await build_server([binding], settings.address)
    except BaseException:
        await store.close()
        raise
    running.add_cleanup(store.close)
    return running


def _skill(
    document: SkillDocument, *, with_body: bool = False, files: list[str] | None = None
) -> skills_pb2.Skill:
    return skills_pb2.Skill(
        name=document.name,
        description=document.description,
        license=document.license,
        compatibility=document.compatibility,
        metadata=document.metadata,
        allowed_tools=list(document.allowed_tools),
        body=document.body if with_body else "",
        files=files or [],
        pre_approved_tools=list(document.pre_approved_tools),
        warnings=[_problem(document.name, warning) for warning in document.warnings],
    )


def _problem(source: str, problem: Problem) -> skills_pb2.SkillProblem:
    return skills_pb2.SkillProblem(source=source, field=problem.field, message=problem.message)


def _proposal(proposal: Proposal) -> skills_pb2.SkillProposal:
    reply = skills_pb2.SkillProposal(
        id=proposal.id,
        name=proposal.name,
        skill_md=proposal.skill_md,
        state=_STATES_PB[proposal.state],
        problems=[_problem(proposal.id, problem) for problem in proposal.problems],
        experience_ids=list(proposal.experience_ids),
        event_refs=list(proposal.event_refs),
        rationale=proposal.rationale,
        create_time=to_timestamp(proposal.create_time),
        decided_by=proposal.decided_by,
        reason=proposal.reason,
    )
    if proposal.decide_time is not None:
        reply.decide_time.CopyFrom(to_timestamp(proposal.decide_time))
    return reply


def _experience(experience: Experience) -> skills_pb2.Experience:
    return skills_pb2.Experience(
        id=experience.id,
        task_id=experience.task_id,
        goal=experience.goal,
        outcome=_OUTCOMES_PB[experience.outcome] if experience.outcome else skills_pb2.OUTCOME_UNSPECIFIED,
        steps=experience.steps,
        tools_used=list(experience.tools_used),
        errors=list(experience.errors),
        duration_seconds=experience.duration_seconds,
        prompt_tokens=experience.prompt_tokens,
        completion_tokens=experience.completion_tokens,
        final_answer=experience.final_answer,
        create_time=to_timestamp(experience.create_time),
        skills_used=list(experience.skills_used),
        last_event_seq=experience.last_event_seq,
    )
