"""The runtime's gRPC peers against a fake of the tools process's protocol (ToolsService and
ApprovalsService, served in-process on port 0 over real gRPC): each reply becomes the plain value
the loop reads, and the approvals stream subscribes before it returns and fails loudly when it
drops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.tools.v1 import tools_pb2, tools_pb2_grpc

from services.common.errors import FailedPrecondition, grpc_errors
from services.common.protos import from_struct, to_struct
from services.common.server import GrpcServer, ServiceBinding, build_server
from services.runtime.peers import GrpcPeers, PeerError

WAIT = 10.0


class FakeTools(tools_pb2_grpc.ToolsServiceServicer):
    """Answers by tool name: `gated` waits for approval a1, `refused` fails, anything else runs."""

    @grpc_errors
    async def ExecuteTool(
        self,
        request: tools_pb2.ExecuteToolRequest,
        context: grpc.aio.ServicerContext[tools_pb2.ExecuteToolRequest, tools_pb2.ExecuteToolResponse],
    ) -> tools_pb2.ExecuteToolResponse:
        if request.tool_name == "gated" and not request.approval_id:
            approval = approvals_pb2.Approval(
                id="a1", task_id=request.task_id, tool_name="gated", action_hash="h1",
                state=approvals_pb2.APPROVAL_STATE_PENDING,
            )
            return tools_pb2.ExecuteToolResponse(
                outcome=tools_pb2.EXECUTE_TOOL_OUTCOME_APPROVAL_REQUIRED, approval=approval, action_hash="h1"
            )
        if request.tool_name == "refused":
            raise FailedPrecondition("approval 'a1' was denied", reason="APPROVAL_DENIED")
        echoed = {"arguments": from_struct(request.arguments), "approval_id": request.approval_id}
        return tools_pb2.ExecuteToolResponse(
            outcome=tools_pb2.EXECUTE_TOOL_OUTCOME_DONE, result=to_struct(echoed), truncated=True, action_hash="h2"
        )


class FakeApprovals(approvals_pb2_grpc.ApprovalsServiceServicer):
    """WatchApprovals streams what `changes` is given; None ends the stream."""

    def __init__(self) -> None:
        self.changes: asyncio.Queue[approvals_pb2.Approval | None] = asyncio.Queue()
        self.subscribed = asyncio.Event()

    @grpc_errors
    async def WatchApprovals(
        self,
        request: approvals_pb2.WatchApprovalsRequest,
        context: grpc.aio.ServicerContext[approvals_pb2.WatchApprovalsRequest, approvals_pb2.WatchApprovalsResponse],
    ) -> AsyncIterator[approvals_pb2.WatchApprovalsResponse]:
        self.subscribed.set()
        await context.send_initial_metadata(())
        while (change := await self.changes.get()) is not None:
            yield approvals_pb2.WatchApprovalsResponse(approval=change)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[GrpcServer, FakeApprovals]]:
    # The fakes implement only what these tests call; the rest answer UNIMPLEMENTED (base class).
    approvals = FakeApprovals()  # type: ignore[abstract]
    server = await build_server(
        [
            ServiceBinding(
                FakeTools(),  # type: ignore[abstract]
                tools_pb2_grpc.add_ToolsServiceServicer_to_server,
                "ducklm.tools.v1.ToolsService",
            ),
            ServiceBinding(
                approvals, approvals_pb2_grpc.add_ApprovalsServiceServicer_to_server, "ducklm.approvals.v1.ApprovalsService"
            ),
        ],
        "127.0.0.1:0",
    )
    try:
        yield server, approvals
    finally:
        await server.stop(0)


@pytest.fixture
async def peers(fake: tuple[GrpcServer, FakeApprovals]) -> AsyncIterator[GrpcPeers]:
    server, _ = fake
    # Skills and memory are not used here: their addresses lead nowhere.
    opened = GrpcPeers(tools_address=server.address, skills_address="127.0.0.1:9", memory_address="127.0.0.1:9",
                       timeout=WAIT, wait_seconds=WAIT)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_done_call_is_its_result(peers: GrpcPeers) -> None:
    outcome = await peers.execute_tool("t1", "read_file", {"path": "a.txt"}, approval_id="a0")
    assert outcome.ok and outcome.approval_required is None
    assert outcome.result == {"arguments": {"path": "a.txt"}, "approval_id": "a0", "truncated": True}


async def test_a_gated_call_carries_its_pending_approval(peers: GrpcPeers) -> None:
    outcome = await peers.execute_tool("t1", "gated", {})
    assert not outcome.ok and outcome.result == {}
    assert outcome.approval_required is not None
    assert (outcome.approval_required.id, outcome.approval_required.state) == ("a1", "pending")
    assert (outcome.approval_required.task_id, outcome.approval_required.action_hash) == ("t1", "h1")


async def test_a_refused_call_keeps_its_code_and_reason(peers: GrpcPeers) -> None:
    outcome = await peers.execute_tool("t1", "refused", {})
    assert (outcome.ok, outcome.code, outcome.reason) == (False, "FAILED_PRECONDITION", "APPROVAL_DENIED")
    assert "denied" in outcome.error and outcome.approval_required is None


async def test_the_approvals_stream_is_subscribed_on_return_and_fails_when_it_ends(
    fake: tuple[GrpcServer, FakeApprovals], peers: GrpcPeers,
) -> None:
    _, approvals = fake
    changes = await peers.watch_approvals()
    assert approvals.subscribed.is_set()  # before anything was read
    approvals.changes.put_nowait(
        approvals_pb2.Approval(id="a1", task_id="t1", state=approvals_pb2.APPROVAL_STATE_APPROVED, decided_by="human")
    )
    approvals.changes.put_nowait(None)
    first = await asyncio.wait_for(anext(changes), WAIT)
    assert (first.id, first.task_id, first.state, first.decided_by) == ("a1", "t1", "approved", "human")
    with pytest.raises(PeerError) as ended:
        await asyncio.wait_for(anext(changes), WAIT)
    assert ended.value.service == "approvals" and ended.value.code == "UNAVAILABLE"


async def test_the_approvals_stream_fails_when_the_service_stops(
    fake: tuple[GrpcServer, FakeApprovals], peers: GrpcPeers,
) -> None:
    server, _ = fake
    changes = await peers.watch_approvals()
    await server.stop(0)
    with pytest.raises(PeerError) as dropped:
        await asyncio.wait_for(anext(changes), WAIT)
    assert dropped.value.service == "approvals"
