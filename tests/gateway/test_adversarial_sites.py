"""Adversarial cases of cross-site and rebinding requests against the real gateway process (and,
for its settings, the gateway app in-process), plus approval authority across the real stack.

A web page the user visits must not drive DuckLM: a cross-site form or text/plain POST, a
foreign Origin, a cross-site Sec-Fetch-Site or a foreign Host (DNS rebinding) is refused before
any route runs, and a pending approval stays pending. Clients that are not browsers (curl, the
OpenAI SDKs) keep working with their JSON content type. The runtime's credential (the shared
gRPC token) cannot approve, and the runtime process never holds the approver credential.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc

from services.gateway.config import Settings
from tests.gateway.conftest import JSON_HEADERS, GatewayStack, SecuredGateway, gateway_in_process
from tests.gateway.streams import wait_for_status

EVIL = "http://evil.example"

# Every route that changes something, with a body it would accept.
CHANGING_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/approvals/{approval}/approve", {}),
    ("POST", "/v1/approvals/{approval}/deny", {}),
    ("POST", "/v1/chat", {"message": "hi"}),
    ("POST", "/v1/chat/completions", {"model": "ducklm", "messages": [{"role": "user", "content": "hi"}]}),
    ("POST", "/v1/tasks/some-task/cancel", None),
    ("POST", "/v1/memories", {"text": "planted by a web page"}),
    ("POST", "/v1/memories/search", {"query": "x"}),
    ("POST", "/v1/memories/forget", {"kind": "note"}),
    ("DELETE", "/v1/memories/some-memory", None),
    ("POST", "/v1/skills/validate", {"skill_md": "x"}),
    ("POST", "/v1/skill-proposals", {"skill_md": "x"}),
    ("POST", "/v1/skill-proposals/some-proposal/promote", {}),
    ("POST", "/v1/skill-proposals/some-proposal/reject", {"reason": "x"}),
    ("POST", "/v1/auth/login", {"token": "x"}),
    ("POST", "/v1/auth/logout", None),
]
# What a page on another site can send without a CORS preflight, and what else is not JSON.
NOT_JSON = [
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonp",
    "application/json-seq",
    "text/json",
    None,
]
FOREIGN_ORIGINS = [
    EVIL,
    "null",
    "http://127.0.0.1.evil.example",
    "http://localhost.evil.example",
    "http://127.0.0.1",  # same host, another port (same-site, not same-origin)
    "http://127.0.0.1:1",
    "file://",
    "chrome-extension://abcdefghijklmnop",
    "http://[::1]",
]
FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:{port}",
    "localhost.evil.example:{port}",
    "127.0.0.1.nip.io:{port}",
    "10.0.0.1:{port}",
    "0.0.0.0:{port}",
    "[::2]:{port}",
    "",
    "127.0.0.1 evil.example",
]


def _port(stack: GatewayStack) -> int:
    return stack.stack.ports.gateway


async def _pending_approval(api: httpx.AsyncClient, stack: GatewayStack, path: str) -> str:
    stack.model.script(
        [
            {"action": "call_tool", "tool": "write_file", "arguments": {"path": path, "content": "planted"}},
            {"action": "respond", "message": "written"},
        ]
    )
    body = (await api.post("/v1/chat", json={"message": f"write {path}"})).json()
    assert body["status"] == "waiting_approval", body
    return str(body["task"]["pending_approval_id"])


async def _assert_pending(api: httpx.AsyncClient, stack: GatewayStack, approval_id: str, path: str) -> None:
    approval = (await api.get(f"/v1/approvals/{approval_id}")).json()
    assert approval["state"] == "pending" and approval["decided_by"] == ""
    assert not (stack.workspace / path).exists()


@pytest.fixture
async def bare(gateway_stack: GatewayStack) -> Any:
    """A client that sends only the headers each case gives (no JSON content type by default)."""
    async with httpx.AsyncClient(base_url=gateway_stack.url, timeout=30.0) as client:
        yield client


async def test_the_text_plain_approval_attack_is_refused(
    api: httpx.AsyncClient, bare: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    """The attack the review found: a cross-origin text/plain POST with an empty body."""
    approval_id = await _pending_approval(api, gateway_stack, "attack.txt")
    for headers in (
        {"Content-Type": "text/plain", "Origin": EVIL},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {"Content-Type": "application/json", "Origin": EVIL},
        {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
        {"Content-Type": "application/json", "Host": "evil.example"},
    ):
        refused = await bare.post(f"/v1/approvals/{approval_id}/approve", content=b"", headers=headers)
        assert refused.status_code in (400, 403, 415), (headers, refused.text)
    await _assert_pending(api, gateway_stack, approval_id, "attack.txt")
    # The human's own way still works: JSON, from no browser or from the gateway's own page.
    own_origin = {**JSON_HEADERS, "Origin": gateway_stack.url}
    approved = await bare.post(f"/v1/approvals/{approval_id}/approve", content=b"{}", headers=own_origin)
    assert approved.status_code == 200, approved.text
    assert approved.json()["decided_by"] == "human via webchat"
    await wait_for_status(api, approved.json()["task_id"], "completed")


@pytest.mark.parametrize("content_type", NOT_JSON)
@pytest.mark.parametrize(("method", "path", "body"), CHANGING_ROUTES)
async def test_a_change_without_a_json_content_type_is_refused(
    bare: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    content = b"" if body is None else httpx.Request("POST", "/", json=body).content
    response = await bare.request(method, path.format(approval="some-approval"), content=content, headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
@pytest.mark.parametrize(("method", "path", "body"), CHANGING_ROUTES)
async def test_a_change_from_a_foreign_origin_is_refused(
    api: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, origin: str
) -> None:
    response = await api.request(
        method, path.format(approval="some-approval"), json=body, headers={"Origin": origin}
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "CROSS_SITE_REQUEST"


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site", "CROSS-SITE", "unknown"])
@pytest.mark.parametrize(("method", "path", "body"), CHANGING_ROUTES[:6])
async def test_a_change_a_browser_marks_cross_site_is_refused(
    api: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, fetch_site: str
) -> None:
    response = await api.request(
        method, path.format(approval="some-approval"), json=body, headers={"Sec-Fetch-Site": fetch_site}
    )
    assert response.status_code == 403, response.text


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/approvals"), ("GET", "/v1/tasks"), ("GET", "/"), ("GET", "/healthz"), ("POST", "/v1/chat")],
)
async def test_a_foreign_host_is_refused(
    api: httpx.AsyncClient, gateway_stack: GatewayStack, method: str, path: str, host: str
) -> None:
    """DNS rebinding: the page's own name reaches 127.0.0.1, and the gateway will not answer it."""
    response = await api.request(
        method, path, json={"message": "hi"} if method == "POST" else None,
        headers={"Host": host.format(port=_port(gateway_stack))},
    )
    assert response.status_code == 400, (host, response.text)
    assert response.json()["error"]["code"] == "HOST_NOT_ALLOWED"
    assert "approvals" not in response.text


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "localhost.:{port}"])
async def test_the_loopback_names_are_served(api: httpx.AsyncClient, gateway_stack: GatewayStack, host: str) -> None:
    response = await api.get("/v1/approvals", headers={"Host": host.format(port=_port(gateway_stack))})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("fetch_site", [None, "same-origin", "none"])
async def test_clients_that_are_not_cross_site_still_work(
    api: httpx.AsyncClient, gateway_stack: GatewayStack, fetch_site: str | None
) -> None:
    """curl and the SDKs send no Origin and no Sec-Fetch-Site; the gateway's own page sends
    same-origin. With JSON, both get through."""
    gateway_stack.model.script([{"action": "respond", "message": "still here"}])
    headers = {"Sec-Fetch-Site": fetch_site} if fetch_site else {}
    response = await api.post("/v1/chat", json={"message": "hi"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["reply"] == "still here"


async def test_the_session_cookie_is_strict_and_http_only(secured_gateway: SecuredGateway) -> None:
    async with httpx.AsyncClient(base_url=secured_gateway.url, headers=JSON_HEADERS) as client:
        login = await client.post("/v1/auth/login", json={"token": secured_gateway.token})
        assert login.status_code == 204
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        # A cross-site page cannot log the browser in either (login CSRF).
        forced = await client.post("/v1/auth/login", json={"token": secured_gateway.token}, headers={"Origin": EVIL})
        assert forced.status_code == 403 and "set-cookie" not in forced.headers


async def test_the_runtime_credential_cannot_approve(api: httpx.AsyncClient, gateway_stack: GatewayStack) -> None:
    """The shared gRPC token is all the runtime holds: with it, Approve and Deny are refused."""
    approval_id = await _pending_approval(api, gateway_stack, "self-approved.txt")
    async with gateway_stack.channel("tools") as channel:
        approvals = approvals_pb2_grpc.ApprovalsServiceStub(channel)
        for call in (
            approvals.Approve(approvals_pb2.ApproveRequest(approval_id=approval_id, decided_by="alice")),
            approvals.Deny(approvals_pb2.DenyRequest(approval_id=approval_id, decided_by="alice")),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await _assert_pending(api, gateway_stack, approval_id, "self-approved.txt")
    denied = await api.post(f"/v1/approvals/{approval_id}/deny", json={"decided_by": "mallory"})
    assert denied.json()["decided_by"] == "human via rest"


def _environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {key.decode(): value.decode(errors="replace") for key, _, value in pairs}


async def test_only_the_tools_service_and_gateway_hold_the_approver_credential(gateway_stack: GatewayStack) -> None:
    stack = gateway_stack.stack
    token = stack.approver_token
    assert len(token) >= 16
    for name, process in stack.processes.items():
        environment = _environment_of(process.pid)
        holds = token in environment.values()
        assert holds == (name in ("tools", "gateway")), name
    token_file = stack.approver_token_file
    assert token_file.read_text().strip() == token
    assert token_file.stat().st_mode & 0o077 == 0
    assert not token_file.resolve().is_relative_to(gateway_stack.workspace.resolve())


@pytest.mark.parametrize(
    ("settings", "host", "status"),
    [
        (Settings(), "127.0.0.1", 200),
        (Settings(), "[::1]:8080", 200),
        (Settings(), "evil.example", 400),
        (Settings(host="127.0.0.2"), "127.0.0.2:8080", 200),
        (Settings(allowed_hosts=["ducklm.internal"]), "ducklm.internal", 200),
        (Settings(allowed_hosts=["ducklm.internal"]), "127.0.0.1", 400),
        (Settings(host="0.0.0.0", token="x" * 32), "anything.example", 401),  # any host; the token decides
        (Settings(host="0.0.0.0", token="x" * 32, allowed_hosts=["ducklm.lan"]), "other.lan", 400),
    ],
)
async def test_the_served_host_names_follow_the_settings(settings: Settings, host: str, status: int) -> None:
    async with gateway_in_process(settings) as client:
        response = await client.get("/v1/auth/session" if status == 401 else "/openapi.json", headers={"Host": host})
        expected = 200 if status == 401 else status
        assert response.status_code == expected, response.text
        if status == 401:
            assert (await client.get("/v1/tasks", headers={"Host": host})).status_code == 401


async def test_an_allowed_origin_may_call_from_a_browser() -> None:
    settings = Settings(allowed_origins=["http://127.0.0.1:3000"])
    async with gateway_in_process(settings) as client:
        trusted = await client.post("/v1/auth/logout", headers={"Origin": "http://127.0.0.1:3000"})
        assert trusted.status_code == 204
        other = await client.post("/v1/auth/logout", headers={"Origin": "http://127.0.0.1:3001"})
        assert other.status_code == 403
