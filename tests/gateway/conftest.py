"""Fixtures for the gateway tests.

`gateway_stack` runs the real DuckLM processes (runtime, tools, skills, memory, gateway) exactly
as `make run` does, with the runtime's `chat` and `embedding` roles pointed at the scripted
model server (tests/scripted_model.py), so a test decides which action the model takes. Every
gRPC service of that stack requires the shared token (DUCKLM_GRPC_TOKEN), so each test also
exercises the gRPC authentication path.

`secured_gateway` is a second gateway process over the same backends, bound to 0.0.0.0 with an
HTTP token. `browser` is headless Debian Chromium driven by Playwright (scripts/install_browser.sh
installs it when missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml

from deploy.stack import LocalStack, StackPorts
from services.common.auth import client_token_interceptors
from services.common.config import repo_root
from services.common.testing import free_port
from services.gateway.app import create_app
from services.gateway.config import Settings
from tests.scripted_model import ScriptedModel

GRPC_TOKEN = "grpc-test-token-0123456789abcdef"
HTTP_TOKEN = "http-test-token-0123456789abcdef"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def write_models_file(path: Path, endpoint: str) -> Path:
    roles = {
        "chat": {"endpoint": endpoint, "model": "scripted", "max_tokens": 256, "timeout_seconds": 30},
        "embedding": {"endpoint": endpoint, "model": "scripted-embed", "timeout_seconds": 30},
    }
    path.write_text(yaml.safe_dump({"roles": roles}))
    return path


@pytest.fixture(scope="session")
async def scripted() -> AsyncIterator[ScriptedModel]:
    model = ScriptedModel()
    await model.start()
    try:
        yield model
    finally:
        await model.stop()


@pytest.fixture(autouse=True)
def _fresh_script(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with an empty script (outputs a failed test left behind are dropped)."""
    model: ScriptedModel | None = (
        request.getfixturevalue("scripted") if "scripted" in request.fixturenames else None
    )
    if model is not None:
        model.outputs.clear()
    yield
    if model is not None:
        model.outputs.clear()


@dataclass
class GatewayStack:
    stack: LocalStack
    model: ScriptedModel

    @property
    def url(self) -> str:
        return self.stack.gateway_url

    @property
    def data_dir(self) -> Path:
        return self.stack.data_dir

    @property
    def workspace(self) -> Path:
        return self.stack.data_dir / "workspace"

    def channel(self, service: str) -> grpc.aio.Channel:
        """A channel to one of the stack's gRPC services, sending the shared token."""
        return grpc.aio.insecure_channel(
            self.stack.address(service), interceptors=client_token_interceptors(GRPC_TOKEN)
        )

    def gateway_env(self) -> dict[str, str]:
        """What a second gateway process over the same backends needs."""
        env = {
            key: value
            for key, value in self.stack.environment(Path("unused")).items()
            if not key.startswith("DUCKLM_GATEWAY_")
        }
        for service in ("runtime", "tools", "skills", "memory"):
            env[f"DUCKLM_GATEWAY_{service.upper()}_ADDRESS"] = self.stack.address(service)
        return env


@contextlib.asynccontextmanager
async def scripted_stack(data_dir: Path, model: ScriptedModel) -> AsyncIterator[GatewayStack]:
    """The real stack as processes, its runtime's model roles pointed at the scripted model."""
    skills_dir = data_dir / "skills"
    shutil.copytree(repo_root() / "skills", skills_dir)  # promotions write here, not into the repo
    extra_env = {
        "DUCKLM_RUNTIME_MODELS_FILE": str(write_models_file(data_dir / "models.yaml", model.endpoint)),
        "DUCKLM_SKILLS_SKILLS_DIR": str(skills_dir),
        "DUCKLM_RUNTIME_APPROVAL_RETRY_SECONDS": "0.1",
        "DUCKLM_GRPC_TOKEN": GRPC_TOKEN,
    }
    stack = LocalStack(
        data_dir=data_dir, ports=StackPorts.free(), log_dir=data_dir / "logs", extra_env=extra_env
    )
    await stack.start(timeout=120.0)
    try:
        yield GatewayStack(stack, model)
    finally:
        await stack.stop()


@pytest.fixture(scope="session")
async def gateway_stack(
    tmp_path_factory: pytest.TempPathFactory, scripted: ScriptedModel
) -> AsyncIterator[GatewayStack]:
    async with scripted_stack(tmp_path_factory.mktemp("gateway-stack"), scripted) as stack:
        yield stack


# What every API client sends (the OpenAI SDKs do): the gateway refuses a change without it.
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
async def api(gateway_stack: GatewayStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_stack.url, timeout=60.0, headers=JSON_HEADERS) as client:
        yield client
        await settle(client)


async def _unsettled(client: httpx.AsyncClient) -> list[str]:
    """Tasks that will still ask the model for something: running ones, and waiting ones whose
    approval a human has already decided (the runtime's approval watcher resumes those)."""
    busy = []
    for status in ("running", "waiting_approval"):
        tasks = (await client.get("/v1/tasks", params={"status": status, "page_size": 500})).json()["tasks"]
        for task in tasks:
            if status == "waiting_approval":
                approval = (await client.get(f"/v1/approvals/{task['pending_approval_id']}")).json()
                if approval.get("state") == "pending":
                    continue
            busy.append(str(task["id"]))
    return busy


async def settle(client: httpx.AsyncClient, timeout: float = 30.0) -> None:
    """Waits until no task of the shared stack will call the scripted model again, so a task a
    test left going cannot take the next test's scripted outputs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while busy := await _unsettled(client):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"tasks still busy {timeout}s after the test: {busy}")
        await asyncio.sleep(0.05)


@dataclass
class SecuredGateway:
    url: str
    token: str


@contextlib.asynccontextmanager
async def gateway_process(env: dict[str, str], port: int) -> AsyncIterator[str]:
    """`python -m services.gateway` with `env`, until it answers on `port`; yields its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.gateway",
        env=env,
        cwd=repo_root(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = asyncio.get_running_loop().time() + 30.0
        async with httpx.AsyncClient() as client:
            while True:
                if process.returncode is not None:
                    errors = await process.stderr.read() if process.stderr else b""
                    raise RuntimeError(
                        f"gateway exited with code {process.returncode}: {errors.decode()[-2000:]}"
                    )
                try:
                    await client.get(f"{url}/healthz", timeout=1.0)
                    break
                except httpx.HTTPError:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                await asyncio.sleep(0.1)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)


@pytest.fixture(scope="session")
async def secured_gateway(gateway_stack: GatewayStack) -> AsyncIterator[SecuredGateway]:
    """A gateway process bound to every address (0.0.0.0), so it must have a token."""
    port = free_port()
    env = {
        **gateway_stack.gateway_env(),
        "DUCKLM_GATEWAY_HOST": "0.0.0.0",
        "DUCKLM_GATEWAY_PORT": str(port),
        "DUCKLM_GATEWAY_TOKEN": HTTP_TOKEN,
    }
    async with gateway_process(env, port) as url:
        yield SecuredGateway(url, HTTP_TOKEN)


def chromium_path() -> str:
    """Debian's Chromium, installed by scripts/install_browser.sh when missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    result = subprocess.run(
        ["bash", str(repo_root() / "scripts" / "install_browser.sh")],
        check=True,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium context with a fresh profile (launch_persistent_context is how
    Playwright takes a --user-data-dir)."""
    from playwright.async_api import async_playwright

    executable = await asyncio.to_thread(chromium_path)
    with tempfile.TemporaryDirectory(prefix="ducklm-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 800},
                env={**os.environ, "TZ": "UTC"},
            )
            try:
                yield context
            finally:
                await context.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh tab; console errors from the page are collected in `page.errors`."""
    tab = await browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.errors = errors
    try:
        yield tab
    finally:
        await tab.close()
        await browser.clear_cookies()


@contextlib.asynccontextmanager
async def gateway_in_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app in this process (lifespan included), for tests that point it at backends
    they start themselves: a dead address, a slow fake, an in-process service."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", timeout=30.0, headers=JSON_HEADERS
        ) as client:
            yield client
