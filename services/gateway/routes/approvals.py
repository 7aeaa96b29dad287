"""Approvals: list (pending by default), get, approve (once, for the rest of the task, or for
the approval's run_command pattern for the rest of the task), deny.

Decisions go to the ApprovalsService in the tools process with the approver credential: the
gateway is the human's side. Who decided is recorded from that credential and the way the
request came (WebChat or the REST API), never from the body. The runtime notices decisions by
itself and carries the waiting task on.
"""

from __future__ import annotations

from typing import Any, Literal

from ducklm.approvals.v1 import approvals_pb2
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from services.common.auth import approver_metadata
from services.gateway.api import ApiRoute, Doc, backends_of, paging, query, unary
from services.gateway.config import Settings
from services.gateway.convert import APPROVAL_SCOPES, APPROVAL_STATES, approval_json
from services.gateway.errors import ApiError
from services.gateway.inputs import INT64_MAX, Body, query_choice, query_int, query_str, read_body
from services.gateway.openapi_schemas import words

__all__ = ["routes"]


class ApproveBody(Body):
    # "once": this one execution of the exact action; "task": the exact action for the rest of the
    # task; "task_pattern": every run_command call of the approval's `pattern` for the rest of the task.
    scope: Literal["once", "task", "task_pattern"] = "once"
    # Seconds until the approval expires; 0 means the service's default (it never allows longer).
    ttl_seconds: int = Field(default=0, ge=0, le=INT64_MAX)
    # Ignored (accepted so older clients keep working): the decision is recorded as the approver.
    decided_by: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=2000)


class DenyBody(Body):
    # Ignored, as in ApproveBody.
    decided_by: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=2000)


def _as_human(request: Request) -> tuple[tuple[str, str], ...]:
    """The approver metadata for a decision made through this request. Cross-site requests never
    get here (services/gateway/sites.py), so an Origin means the gateway's own page."""
    settings: Settings = request.app.state.settings
    if not settings.approver_token:
        raise ApiError(
            403,
            "APPROVER_NOT_CONFIGURED",
            "this gateway holds no approver credential, so it cannot decide approvals: set "
            "DUCKLM_APPROVER_TOKEN for it and for the tools service (`make run` does)",
        )
    via = "webchat" if "origin" in request.headers else "rest"
    return approver_metadata(settings.approver_token, via)


async def list_approvals(request: Request) -> Response:
    state = query_choice(request, "state", {"all": 0, **APPROVAL_STATES}, "pending")
    message = approvals_pb2.ListApprovalsRequest(
        page_size=query_int(request, "page_size", 0, maximum=500),
        page_token=query_str(request, "page_token"),
        state=state,  # type: ignore[arg-type]
        task_id=query_str(request, "task_id", max_length=128),
    )
    return await unary(request, "tools", backends_of(request).approvals.ListApprovals, message, _approval_list)


def _approval_list(reply: approvals_pb2.ListApprovalsResponse) -> dict[str, Any]:
    return {
        "approvals": [approval_json(approval) for approval in reply.approvals],
        "next_page_token": reply.next_page_token,
    }


async def get_approval(request: Request) -> Response:
    message = approvals_pb2.GetApprovalRequest(approval_id=request.path_params["approval_id"])
    return await unary(request, "tools", backends_of(request).approvals.GetApproval, message, approval_json)


async def approve(request: Request) -> Response:
    body = await read_body(request, ApproveBody, allow_empty=True)
    message = approvals_pb2.ApproveRequest(
        approval_id=request.path_params["approval_id"],
        scope=APPROVAL_SCOPES[body.scope],  # type: ignore[arg-type]
        ttl_seconds=body.ttl_seconds,
        reason=body.reason,
    )
    return await unary(
        request, "tools", backends_of(request).approvals.Approve, message, approval_json, metadata=_as_human(request)
    )


async def deny(request: Request) -> Response:
    body = await read_body(request, DenyBody, allow_empty=True)
    message = approvals_pb2.DenyRequest(approval_id=request.path_params["approval_id"], reason=body.reason)
    return await unary(
        request, "tools", backends_of(request).approvals.Deny, message, approval_json, metadata=_as_human(request)
    )


routes = [
    ApiRoute("/v1/approvals", "GET", list_approvals, Doc(
        "List approvals (pending by default)", "approvals", reply="ApprovalList",
        params=(*paging(), query("state", words(APPROVAL_STATES, "all")), query("task_id")),
    )),
    ApiRoute("/v1/approvals/{approval_id}", "GET", get_approval, Doc(
        "Get an approval", "approvals", reply="Approval", errors=(404,),
    )),
    ApiRoute("/v1/approvals/{approval_id}/approve", "POST", approve, Doc(
        "Allow the pending action once, or for the rest of its task (scope: task)", "approvals",
        reply="Approval", errors=(404, 409), body=ApproveBody, body_required=False,
    )),
    ApiRoute("/v1/approvals/{approval_id}/deny", "POST", deny, Doc(
        "Refuse the pending action", "approvals", reply="Approval", errors=(404, 409), body=DenyBody,
        body_required=False,
    )),
]
