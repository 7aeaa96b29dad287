"""Authentication: the gateway refuses to start exposed without a token; with a token every API
call needs it (Bearer, or the WebChat login cookie); the gRPC services check the shared token
(health excepted) and speak TLS when given a certificate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import openai
import pytest
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from ducklm.skills.v1 import skills_pb2, skills_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2_grpc

from services.common.auth import GrpcSecurity
from services.common.channels import open_channel
from services.common.config import ConfigError, repo_root
from services.common.server import GrpcServer
from services.gateway.app import create_app
from services.gateway.auth import SESSION_COOKIE
from services.gateway.config import Settings
from services.gateway.openapi import openapi_document
from services.skills.config import Settings as SkillsSettings
from services.skills.server import create_server as create_skills
from tests.gateway.conftest import JSON_HEADERS, GatewayStack, SecuredGateway

OPEN = {"/", "/healthz", "/openapi.json", "/v1/auth/session", "/v1/auth/login", "/v1/auth/logout"}


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com", ""])
def test_an_exposed_gateway_needs_a_token(host: str) -> None:
    with pytest.raises(ConfigError, match="DUCKLM_GATEWAY_TOKEN"):
        create_app(Settings(host=host))
    create_app(Settings(host=host, token="x" * 32))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_gateway_needs_no_token(host: str) -> None:
    create_app(Settings(host=host))


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        create_app(Settings(token="short"))


def test_the_gateway_process_refuses_to_start_exposed_without_a_token() -> None:
    env = {**os.environ, "DUCKLM_GATEWAY_HOST": "0.0.0.0", "DUCKLM_GATEWAY_PORT": "0"}
    env.pop("DUCKLM_GATEWAY_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        env=env,
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "DUCKLM_GATEWAY_TOKEN" in result.stderr


def api_requests() -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document, with sample path parameters."""
    requests: list[tuple[str, str]] = []
    for path, operations in openapi_document()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "sample", path)
        requests.extend((method.upper(), concrete) for method in operations if path not in OPEN)
    return requests


@pytest.fixture
async def secured(secured_gateway: SecuredGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secured_gateway.url, timeout=30.0, headers=JSON_HEADERS) as client:
        yield client


async def test_every_api_call_without_the_token_is_refused(secured: httpx.AsyncClient) -> None:
    requests = api_requests()
    assert len(requests) > 25
    for method, path in requests:
        response = await secured.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"].startswith("Bearer")
        wrong = await secured.request(method, path, json={}, headers={"Authorization": "Bearer wrong-token"})
        assert wrong.status_code == 401, (method, path)


async def test_the_page_health_and_description_stay_open(secured: httpx.AsyncClient) -> None:
    for path in ("/", "/static/webchat.js", "/healthz", "/openapi.json"):
        assert (await secured.get(path)).status_code == 200, path
    assert (await secured.get("/v1/auth/session")).json() == {"auth_required": True, "authenticated": False}


async def test_the_token_opens_the_api(
    secured: httpx.AsyncClient, secured_gateway: SecuredGateway, gateway_stack: GatewayStack
) -> None:
    headers = {"Authorization": f"Bearer {secured_gateway.token}"}
    assert (await secured.get("/v1/tasks", headers=headers)).status_code == 200
    gateway_stack.model.script([{"action": "respond", "message": "authorised"}])
    chat = await secured.post("/v1/chat", json={"message": "hi"}, headers=headers)
    assert chat.status_code == 200 and chat.json()["reply"] == "authorised"
    assert (await secured.get("/v1/auth/session", headers=headers)).json()["authenticated"] is True


async def test_the_openai_client_uses_the_token_as_its_api_key(
    secured_gateway: SecuredGateway, gateway_stack: GatewayStack
) -> None:
    gateway_stack.model.script([{"action": "respond", "message": "keyed"}])
    async with openai.AsyncOpenAI(
        base_url=f"{secured_gateway.url}/v1", api_key=secured_gateway.token, max_retries=0
    ) as ai:
        completion = await ai.chat.completions.create(
            model="ducklm", messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == "keyed"
    async with openai.AsyncOpenAI(base_url=f"{secured_gateway.url}/v1", api_key="wrong", max_retries=0) as ai:
        with pytest.raises(openai.AuthenticationError):
            await ai.models.list()


async def test_webchat_login_sets_a_cookie_that_is_not_the_token(
    secured: httpx.AsyncClient, secured_gateway: SecuredGateway
) -> None:
    wrong = await secured.post("/v1/auth/login", json={"token": "guess-guess-guess"})
    assert wrong.status_code == 401
    assert SESSION_COOKIE not in wrong.cookies
    login = await secured.post("/v1/auth/login", json={"token": secured_gateway.token})
    assert login.status_code == 204
    set_cookie = login.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    assert secured_gateway.token not in set_cookie
    # httpx keeps the cookie: the session now works without the header.
    assert (await secured.get("/v1/tasks")).status_code == 200
    assert (await secured.get("/v1/auth/session")).json()["authenticated"] is True
    # A cookie-authenticated change must come from the gateway's own origin.
    foreign = await secured.post("/v1/tasks/sample/cancel", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    own = await secured.post("/v1/tasks/sample/cancel", headers={"Origin": secured_gateway.url})
    assert own.status_code == 404
    await secured.post("/v1/auth/logout")
    secured.cookies.clear()
    assert (await secured.get("/v1/tasks")).status_code == 401


async def test_grpc_services_require_the_shared_token_except_for_health(gateway_stack: GatewayStack) -> None:
    async with grpc.aio.insecure_channel(gateway_stack.stack.address("runtime")) as bare:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await runtime_pb2_grpc.RuntimeServiceStub(bare).ListTasks(
                runtime_pb2.ListTasksRequest(), timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "DUCKLM_GRPC_TOKEN" in (caught.value.details() or "")
        stream = runtime_pb2_grpc.RuntimeServiceStub(bare).StreamTaskEvents(
            runtime_pb2.StreamTaskEventsRequest(task_id="x")
        )
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            await stream.read()
        assert streamed.value.code() == grpc.StatusCode.UNAUTHENTICATED
        health = await health_pb2_grpc.HealthStub(bare).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        # No request is sent: the refusal comes from the call's metadata alone, and a request
        # written while the refusal arrives would fail in the client instead ("Internal error").
        reflection = reflection_pb2_grpc.ServerReflectionStub(bare).ServerReflectionInfo(iter([]))
        with pytest.raises(grpc.aio.AioRpcError) as reflected:
            async for _ in reflection:
                pass
        assert reflected.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with gateway_stack.channel("runtime") as channel:
        listed = await runtime_pb2_grpc.RuntimeServiceStub(channel).ListTasks(
            runtime_pb2.ListTasksRequest(), timeout=5
        )
        assert listed.tasks is not None


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def tls_skills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GrpcServer]:
    """The real skills service with TLS and the token on; the client side of DUCKLM_GRPC_* too."""
    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("DUCKLM_GRPC_TLS_CERT", str(cert))
    monkeypatch.setenv("DUCKLM_GRPC_TLS_KEY", str(key))
    monkeypatch.setenv("DUCKLM_GRPC_TLS_CA", str(cert))
    monkeypatch.setenv("DUCKLM_GRPC_TOKEN", "tls-test-token-0123456789")
    skills_dir = tmp_path / "skills"
    skills_dir.mkdir()
    server = await create_skills(
        SkillsSettings(
            address="127.0.0.1:0",
            skills_dir=skills_dir,
            database=tmp_path / "skills.db",
            proposals_dir=tmp_path / "proposals",
        )
    )
    try:
        yield server
    finally:
        await server.stop(grace=0)


async def test_grpc_over_tls_with_the_token(tls_skills: GrpcServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async with open_channel(tls_skills.address) as channel:
        reply = await skills_pb2_grpc.SkillsServiceStub(channel).ListSkills(
            skills_pb2.ListSkillsRequest(), timeout=5
        )
        assert list(reply.skills) == []
    async with grpc.aio.insecure_channel(tls_skills.address) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await skills_pb2_grpc.SkillsServiceStub(plaintext).ListSkills(
                skills_pb2.ListSkillsRequest(), timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    monkeypatch.delenv("DUCKLM_GRPC_TOKEN")
    async with open_channel(tls_skills.address) as no_token:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await skills_pb2_grpc.SkillsServiceStub(no_token).ListSkills(
                skills_pb2.ListSkillsRequest(), timeout=5
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_half_a_tls_configuration_is_refused() -> None:
    with pytest.raises(ConfigError, match="both"):
        GrpcSecurity.from_env({"DUCKLM_GRPC_TLS_CERT": "/x.pem"})
    with pytest.raises(ConfigError, match="cannot be read"):
        GrpcSecurity.from_env({"DUCKLM_GRPC_TLS_CA": "/no/such/ca.pem"}).channel_credentials()
