"""Approvals: list (pending by default), get, approve (once or for the rest of the task), deny.

Decisions go to the ApprovalsService in the tools process; the runtime notices them by itself
and carries the waiting task on.
"""

from __future__ import annotations

from typing import Literal

from ducklm.approvals.v1 import approvals_pb2
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.gateway.convert import APPROVAL_SCOPES, APPROVAL_STATES, approval_json
from services.gateway.errors import call
from services.gateway.inputs import INT64_MAX, Body, query_choice, query_int, query_str, read_body
from services.gateway.routes.tasks import backends_of

__all__ = ["DEFAULT_DECIDER", "routes"]

# Who a decision is recorded as when the client does not say (the tools service requires one).
DEFAULT_DECIDER = "gateway"


class ApproveBody(Body):
    # "once": this one execution of the exact action; "task": the exact action for the rest of the task.
    scope: Literal["once", "task"] = "once"
    # Seconds until the approval expires; 0 means the service's default (it never allows longer).
    ttl_seconds: int = Field(default=0, ge=0, le=INT64_MAX)
    decided_by: str = Field(default=DEFAULT_DECIDER, min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)


class DenyBody(Body):
    decided_by: str = Field(default=DEFAULT_DECIDER, min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)


async def list_approvals(request: Request) -> Response:
    backends = backends_of(request)
    state = query_choice(request, "state", {"all": 0, **APPROVAL_STATES}, "pending")
    reply = await call(
        "tools",
        backends.approvals.ListApprovals(
            approvals_pb2.ListApprovalsRequest(
                page_size=query_int(request, "page_size", 0, maximum=500),
                page_token=query_str(request, "page_token"),
                state=state,  # type: ignore[arg-type]
                task_id=query_str(request, "task_id", max_length=128),
            ),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(
        {
            "approvals": [approval_json(approval) for approval in reply.approvals],
            "next_page_token": reply.next_page_token,
        }
    )


async def get_approval(request: Request) -> Response:
    backends = backends_of(request)
    approval = await call(
        "tools",
        backends.approvals.GetApproval(
            approvals_pb2.GetApprovalRequest(approval_id=request.path_params["approval_id"]),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(approval_json(approval))


async def approve(request: Request) -> Response:
    body = await read_body(request, ApproveBody, allow_empty=True)
    backends = backends_of(request)
    approval = await call(
        "tools",
        backends.approvals.Approve(
            approvals_pb2.ApproveRequest(
                approval_id=request.path_params["approval_id"],
                scope=APPROVAL_SCOPES[body.scope],  # type: ignore[arg-type]
                ttl_seconds=body.ttl_seconds,
                decided_by=body.decided_by,
                reason=body.reason,
            ),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(approval_json(approval))


async def deny(request: Request) -> Response:
    body = await read_body(request, DenyBody, allow_empty=True)
    backends = backends_of(request)
    approval = await call(
        "tools",
        backends.approvals.Deny(
            approvals_pb2.DenyRequest(
                approval_id=request.path_params["approval_id"], decided_by=body.decided_by, reason=body.reason
            ),
            timeout=backends.timeout,
        ),
    )
    return JSONResponse(approval_json(approval))


routes = [
    Route("/v1/approvals", list_approvals, methods=["GET"]),
    Route("/v1/approvals/{approval_id}", get_approval, methods=["GET"]),
    Route("/v1/approvals/{approval_id}/approve", approve, methods=["POST"]),
    Route("/v1/approvals/{approval_id}/deny", deny, methods=["POST"]),
]
