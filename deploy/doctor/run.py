"""Runs the doctor's checks on a `Setup`, by section, and collects them into a `Report`.

Sections: `config` (settings and models.yaml load), `models` (each role against its server),
`services` (each gRPC service), `machine` (ports, sandbox, folders, disk, binaries). The order
of the report is fixed, whatever finishes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from deploy.doctor.checks import Check, Report
from deploy.doctor.embedding import check_collections, embedding_dimension, existing_collections
from deploy.doctor.machine import check_binaries, check_disk, check_folders, check_sandbox
from deploy.doctor.models import check_chat_role, check_endpoint
from deploy.doctor.ports import check_port
from deploy.doctor.services import check_service
from deploy.doctor.setup import GRPC_SERVICES, Setup
from services.memory.config import Settings as MemorySettings
from services.runtime.models_config import RoleConfig

__all__ = ["SECTIONS", "run_doctor"]

SECTIONS = ("config", "models", "services", "machine")


def _config_checks(setup: Setup) -> list[Check]:
    checks = []
    for service, problem in setup.settings_errors.items():
        checks.append(
            Check.failed("config", f"{service} settings", problem, "fix the variable it names (.env.example lists them all)")
        )
    for variable, value in setup.address_problems().items():
        checks.append(Check.failed("config", variable, f"{value!r} is not HOST:PORT", f"set {variable} to e.g. 127.0.0.1:50051"))
    if not setup.settings_errors:
        checks.append(Check.passed("config", "settings", "every service's DUCKLM_* settings load"))
    if setup.models_error:
        checks.append(
            Check.failed(
                "config", "models.yaml", setup.models_error,
                "fix the file at the line named (the comments at its top describe every key)",
            )
        )
    elif setup.models is not None:
        roles = ", ".join(setup.models.roles)
        checks.append(Check.passed("config", "models.yaml", f"{setup.models_file} loads (roles: {roles})"))
    return checks


async def _role_checks(setup: Setup, name: str, role: RoleConfig, environ: dict[str, str]) -> list[Check]:
    section = f"models.{name}"
    async with httpx.AsyncClient(timeout=role.timeout_seconds) as http:
        checks, answered = await check_endpoint(http, section, role, setup.models_file)
        if not answered:
            return checks
        if name != "embedding":
            return checks + await check_chat_role(http, section, role, setup.models_file)
        dimension_check, dimension = await embedding_dimension(http, role)
        checks.append(dimension_check)
    memory = setup.settings.get("memory")
    if isinstance(memory, MemorySettings) and dimension:
        collections, source = await existing_collections(memory, environ)
        checks += check_collections(collections, dimension, role.model, source)
    return checks


async def _model_checks(setup: Setup, only_roles: Sequence[str] | None) -> list[Check]:
    if setup.models is None:
        return [Check.skipped("models", "roles", "models.yaml did not load (see config)")]
    roles = [(n, r) for n, r in setup.models.roles.items() if only_roles is None or n in only_roles]
    if "embedding" not in setup.models.roles and only_roles is None:
        extra = [Check.warned("models.embedding", "role", "no embedding role", "memory is disabled; add an `embedding` role to models.yaml to enable it")]
    else:
        extra = []
    found = await asyncio.gather(*(_role_checks(setup, n, r, setup.environ) for n, r in roles))
    return [check for checks in found for check in checks] + extra


async def _service_checks(setup: Setup) -> list[Check]:
    found = await asyncio.gather(
        *(check_service(service, setup.address(service), setup.environ) for service in GRPC_SERVICES)
    )
    return [check for checks in found for check in checks]


async def _machine_checks(setup: Setup) -> list[Check]:
    ports = list(await asyncio.gather(*(check_port(port, setup.environ) for port in setup.ports())))
    return [*ports, await check_sandbox(), *check_folders(setup), check_disk(setup), *check_binaries(setup)]


async def run_doctor(
    setup: Setup, sections: Sequence[str] = SECTIONS, *, only_roles: Sequence[str] | None = None
) -> Report:
    """Every check of `sections`; `only_roles` limits the models section to those roles."""
    report = Report()
    if "config" in sections:
        report.extend(_config_checks(setup))
    if "models" in sections:
        report.extend(await _model_checks(setup, only_roles))
    if "services" in sections:
        report.extend(await _service_checks(setup))
    if "machine" in sections:
        report.extend(await _machine_checks(setup))
    return report
