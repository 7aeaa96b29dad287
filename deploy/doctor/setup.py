"""The set-up the doctor checks, read the way the services read it: each service's settings from
`DUCKLM_<SERVICE>_*`, the models file, and every port the stack binds (with the variable that
moves it). Reading never raises: a setting or file that does not load becomes an error string
that the checks report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from services.common.config import ConfigError, load_settings, repo_root
from services.gateway.config import Settings as GatewaySettings
from services.memory.config import Settings as MemorySettings
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.models_config import ModelsConfig, load_models_config
from services.skills.config import Settings as SkillsSettings
from services.tools.config import Settings as ToolsSettings

__all__ = ["GRPC_SERVICES", "SETTINGS_MODELS", "Port", "Setup"]

GRPC_SERVICES = ("runtime", "tools", "skills", "memory")
SETTINGS_MODELS: dict[str, type[BaseModel]] = {
    "runtime": RuntimeSettings,
    "tools": ToolsSettings,
    "skills": SkillsSettings,
    "memory": MemorySettings,
    "gateway": GatewaySettings,
}


@dataclass(frozen=True)
class Port:
    """A TCP port the stack binds: who binds it, and the variable (or file key) that moves it."""

    owner: str
    host: str
    port: int
    kind: str  # "grpc", "http" (the gateway), "llama" (a llama-server) or "metrics"
    moved_by: str


@dataclass
class Setup:
    environ: dict[str, str]
    settings: dict[str, BaseModel] = field(default_factory=dict)
    settings_errors: dict[str, str] = field(default_factory=dict)
    models_file: Path = field(default_factory=lambda: repo_root() / "config" / "models.yaml")
    models: ModelsConfig | None = None
    models_error: str = ""

    @classmethod
    def load(cls, environ: Mapping[str, str]) -> Setup:
        setup = cls(environ=dict(environ))
        with _data_dir_of(setup.environ):
            for name, model in SETTINGS_MODELS.items():
                try:
                    setup.settings[name] = load_settings(model, name, setup.environ)
                except ConfigError as exc:
                    setup.settings_errors[name] = str(exc)
        runtime = setup.settings.get("runtime")
        if isinstance(runtime, RuntimeSettings):
            setup.models_file = runtime.models_file
        try:
            setup.models = load_models_config(setup.models_file, setup.environ)
        except ConfigError as exc:
            setup.models_error = str(exc)
        return setup

    @property
    def data_dir(self) -> Path:
        return Path(self.environ.get("DUCKLM_DATA_DIR", "data")).resolve()

    def address(self, service: str) -> str:
        settings = self.settings.get(service)
        default = {"runtime": 50051, "tools": 50052, "skills": 50053, "memory": 50054}[service]
        return str(getattr(settings, "address", f"127.0.0.1:{default}"))

    def address_problems(self) -> dict[str, str]:
        """Variable -> value, for every address that is not HOST:PORT (those have no port to check)."""
        problems = {}
        for service in GRPC_SERVICES:
            for variable, value in (
                (f"DUCKLM_{service.upper()}_ADDRESS", self.address(service)),
                (f"DUCKLM_{service.upper()}_METRICS_ADDRESS", self.environ.get(f"DUCKLM_{service.upper()}_METRICS_ADDRESS", "").strip()),
            ):
                if value and _split_address(value) is None:
                    problems[variable] = value
        return problems

    def ports(self) -> list[Port]:
        found: list[Port] = []
        for service in GRPC_SERVICES:
            address = _split_address(self.address(service))
            if address is not None:
                found.append(Port(service, *address, "grpc", f"DUCKLM_{service.upper()}_ADDRESS"))
            metrics = _split_address(self.environ.get(f"DUCKLM_{service.upper()}_METRICS_ADDRESS", "").strip())
            if metrics is not None:
                found.append(Port(f"{service} metrics", *metrics, "metrics", f"DUCKLM_{service.upper()}_METRICS_ADDRESS"))
        gateway = self.settings.get("gateway")
        if isinstance(gateway, GatewaySettings):
            found.append(Port("gateway", gateway.host, gateway.port, "http", "DUCKLM_GATEWAY_PORT"))
        if self.models is not None:
            for name, server in self.models.servers.items():
                found.append(
                    Port(f"llama-server {name}", "127.0.0.1", server.port, "llama", f"servers.{name}.port in {self.models_file}")
                )
        return found


def _split_address(address: str) -> tuple[str, int] | None:
    """("::1", 50051) from "[::1]:50051"; None when there is no numeric port."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


@contextmanager
def _data_dir_of(environ: Mapping[str, str]) -> Iterator[None]:
    """The settings' path defaults come from `data_dir()`, which reads this process's
    environment; while they are built, it says what the checked environment says."""
    saved = os.environ.get("DUCKLM_DATA_DIR")
    wanted = environ.get("DUCKLM_DATA_DIR")
    if wanted is None:
        os.environ.pop("DUCKLM_DATA_DIR", None)
    else:
        os.environ["DUCKLM_DATA_DIR"] = wanted
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("DUCKLM_DATA_DIR", None)
        else:
            os.environ["DUCKLM_DATA_DIR"] = saved
