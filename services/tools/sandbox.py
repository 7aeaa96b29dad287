"""The kernel sandbox every `run_command` runs in, built with bubblewrap (`bwrap`).

Each command gets new user (no nested ones allowed), mount, PID, IPC, UTS and network
namespaces; the network has only a loopback of its own, so nothing outside can be reached. Its
file system is built from nothing: the system's program folders read-only (/usr, /bin, /lib*,
the policy's search path), `/etc/ld.so.cache` and `/etc/localtime` (no passwd, no group, no other
/etc file), the devices null and urandom, a fresh `/tmp`, and the workspace
at its own path. No /proc, no home folder, no data directory, no checkout. The workspace is
mounted read-only for a command that runs without an approval and read-write only for an
approved one; even then every existing protected path (`.git` and the like, except for
`writes_protected` programs, which keep only `sandbox_read_only` read-only) is mounted read-only
over it, from a descriptor opened by a walk that never follows links, so a link swapped in after
the walk cannot redirect the mount. `prlimit` inside the sandbox caps CPU time, memory, file size
and processes; `--die-with-parent` and `--new-session` tie the command to the service and cut it
off from the terminal.

A sandbox that cannot be created is an error that names its cause; this module never runs a
command unsandboxed. The walk over the workspace is blocking file-system work: callers run it in
a thread.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from dataclasses import dataclass

from services.common.errors import DuckLMError, FailedPrecondition, ResourceExhausted
from services.tools.files import FileTools
from services.tools.globs import matches, split_pattern
from services.tools.policy import Policy
from services.tools.workspace import show

__all__ = ["Launch", "Sandbox", "SandboxLimits", "ServerConfinement", "describe", "sandbox_failure"]

# System folders a program may need; each is mounted read-only where it exists (a link, as on
# merged-/usr systems, is recreated as the same link).
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The only /etc files a command sees: the loader's cache and the local time zone.
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
_TOOL_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
# The only devices: null, and urandom (git needs random bytes). Each mount costs start-up time.
_DEVICES = [arg for name in ("null", "urandom") for arg in ("--dev-bind", f"/dev/{name}", f"/dev/{name}")]
# More protected entries than this in one workspace would mean as many mounts per command.
_MAX_PROTECTED_MOUNTS = 256
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_FAILURE_PREFIX = "bwrap: "
# The /etc files an MCP server allowed the network needs for name lookups and TLS.
_NETWORK_ETC = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl", "/etc/ca-certificates")


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int
    memory_bytes: int
    file_bytes: int
    processes: int
    tmp_bytes: int


@dataclass(frozen=True)
class ServerConfinement:
    """What one MCP server's sandbox holds beyond the system folders (config/mcp.yaml)."""

    read_only: tuple[str, ...]
    writable: tuple[str, ...]
    # "none", "read-only" or "read-write".
    workspace: str
    network: bool
    cwd: str
    env: dict[str, str]


@dataclass(frozen=True)
class Launch:
    """What to execute before the program itself, and the descriptors bwrap must inherit."""

    prefix: list[str]
    pass_fds: tuple[int, ...]

    def close(self) -> None:
        for fd in self.pass_fds:
            os.close(fd)


def sandbox_failure(cause: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"the command sandbox could not be created: {cause}. Commands never run unsandboxed; install "
        "bubblewrap (scripts/install_sandbox.sh), or turn the sandbox off explicitly with "
        "DUCKLM_TOOLS_SANDBOX=false",
        reason="SANDBOX_UNAVAILABLE",
    )


class Sandbox:
    """Builds the bwrap command line for one checked command over one workspace."""

    def __init__(
        self,
        files: FileTools,
        policy: Policy,
        limits: SandboxLimits,
        max_scanned: int,
    ) -> None:
        self.files = files
        self._always = [split_pattern(pattern) for pattern in policy.sandbox_read_only]
        self.root = str(files.workspace.root)
        self.limits = limits
        self.max_scanned = max_scanned
        self.bwrap = shutil.which("bwrap", path=_TOOL_PATH)
        self.prlimit = shutil.which("prlimit", path=_TOOL_PATH)
        self._system, self._search = _system_mounts(policy.search_path)
        self.problem: str | None = None

    async def probe(self) -> str | None:
        """Creates one sandbox running `true`; returns why it failed, or None. Kept in `problem`."""
        self.problem = await self._probe()
        return self.problem

    async def _probe(self) -> str | None:
        # Looked up again: bubblewrap may have been installed since the service started.
        self.bwrap = shutil.which("bwrap", path=_TOOL_PATH)
        self.prlimit = shutil.which("prlimit", path=_TOOL_PATH)
        true = shutil.which("true", path=_TOOL_PATH)
        if self.bwrap is None:
            return "bwrap is not installed"
        if self.prlimit is None or true is None:
            return "prlimit (util-linux) is not installed"
        launch = self.launch(writable=False, cwd=self.root)
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.prefix,
                true,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env={"PATH": _TOOL_PATH},
                close_fds=True,
            )
        except OSError as exc:
            return f"bwrap could not be started: {exc.strerror or exc}"
        _, stderr = await process.communicate()
        if process.returncode != 0:
            text = stderr.decode("utf-8", "replace").strip() or f"bwrap exited with {process.returncode}"
            return text.removeprefix(_FAILURE_PREFIX)
        return None

    def failure(self, exit_code: int, stdout: str, stderr: str) -> FailedPrecondition | None:
        """The error for a run whose sandbox failed to start (bwrap itself said why), or None."""
        if exit_code == 1 and not stdout and stderr.startswith(_FAILURE_PREFIX):
            return sandbox_failure(stderr.strip().removeprefix(_FAILURE_PREFIX))
        return None

    def launch(self, *, writable: bool, cwd: str, writes_protected: bool = False) -> Launch:
        """The bwrap + prlimit prefix for a command in `cwd` (blocking: walks the workspace when
        `writable`); close it once the command has started. With `writes_protected`, only the
        `sandbox_read_only` paths are mounted read-only, else the protected paths too. Raises
        FailedPrecondition (SANDBOX_UNAVAILABLE) when bwrap or prlimit is missing."""
        if self.bwrap is None:
            raise sandbox_failure("bwrap is not installed")
        if self.prlimit is None:
            raise sandbox_failure("prlimit (util-linux) is not installed")
        mounts = self._protected(writes_protected) if writable else []
        args = [
            self.bwrap,
            "--unshare-user",
            # No nested user namespace: nothing inside can gain the capabilities to remount.
            "--disable-userns",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
            *self._system,
            *_DEVICES,
            "--size",
            str(self.limits.tmp_bytes),
            "--tmpfs",
            "/tmp",
            *self._search,
            "--bind" if writable else "--ro-bind",
            self.root,
            self.root,
        ]
        for fd, path in mounts:
            args += ["--ro-bind-fd", str(fd), path]
        limits = self.limits
        args += [
            # The sandbox's own root (a tmpfs bwrap builds) takes no writes.
            "--remount-ro",
            "/",
            "--chdir",
            cwd,
            "--",
            self.prlimit,
            f"--cpu={limits.cpu_seconds}",
            f"--as={limits.memory_bytes}",
            f"--fsize={limits.file_bytes}",
            f"--nproc={limits.processes}",
            "--core=0",
            "--",
        ]
        return Launch(args, tuple(fd for fd, _ in mounts))

    def server_prefix(self, confinement: ServerConfinement) -> list[str]:
        """The bwrap + prlimit prefix of a long-running MCP server: the same namespaces and system
        folders as a command, plus its own /proc, only its declared folders, the workspace if
        declared, the network (and the /etc files name lookups need) only if allowed, exactly
        `confinement.env`, and no CPU-time limit (a server lives as long as the service)."""
        if self.bwrap is None:
            raise sandbox_failure("bwrap is not installed")
        if self.prlimit is None:
            raise sandbox_failure("prlimit (util-linux) is not installed")
        args = [self.bwrap, "--unshare-user", "--disable-userns", "--unshare-ipc", "--unshare-pid"]
        if not confinement.network:
            args.append("--unshare-net")
        args += [
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
            "--clearenv",
            *self._system,
            *_DEVICES,
            "--proc",
            "/proc",
            "--size",
            str(self.limits.tmp_bytes),
            "--tmpfs",
            "/tmp",
            *self._search,
        ]
        if confinement.network:
            args += [arg for name in _NETWORK_ETC for arg in ("--ro-bind-try", name, name)]
        for path in confinement.read_only:
            args += ["--ro-bind", path, path]
        for path in confinement.writable:
            args += ["--bind", path, path]
        if confinement.workspace != "none":
            args += ["--bind" if confinement.workspace == "read-write" else "--ro-bind", self.root, self.root]
        for name, value in sorted(confinement.env.items()):
            args += ["--setenv", name, value]
        limits = self.limits
        args += [
            "--remount-ro",
            "/",
            "--chdir",
            confinement.cwd,
            "--",
            self.prlimit,
            f"--as={limits.memory_bytes}",
            f"--fsize={limits.file_bytes}",
            f"--nproc={limits.processes}",
            "--core=0",
            "--",
        ]
        return args

    def _read_only(self, parts: tuple[str, ...], writes_protected: bool) -> bool:
        if any(matches(pattern, parts) for pattern in self._always):
            return True
        return not writes_protected and self.files.is_protected(parts)

    def _protected(self, writes_protected: bool) -> list[tuple[int, str]]:
        """Descriptors (O_PATH) of every existing protected entry, found by a walk that never
        follows a link, and each one's path; a protected folder is not walked further."""
        found: list[tuple[int, str]] = []
        scanned = 0
        pending: list[tuple[int, tuple[str, ...]]] = [
            (os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), ())
        ]
        try:
            while pending:
                dir_fd, parts = pending.pop()
                try:
                    with os.scandir(dir_fd) as entries:
                        names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
                    for name, is_dir in names:
                        scanned += 1
                        if scanned > self.max_scanned:
                            raise ResourceExhausted(
                                f"the workspace has more than {self.max_scanned} entries; the sandbox "
                                "cannot find every protected path in it (config max_find_scanned)"
                            )
                        where = (*parts, name)
                        if self._read_only(where, writes_protected):
                            self._add_protected(found, dir_fd, where)
                        elif is_dir:
                            try:
                                pending.append((os.open(name, _DIR_FLAGS, dir_fd=dir_fd), where))
                            except OSError:
                                continue  # gone or swapped since the listing: nothing to protect there
                finally:
                    os.close(dir_fd)
        except BaseException:
            for fd, _ in pending:
                os.close(fd)
            for fd, _ in found:
                os.close(fd)
            raise
        return found

    def _add_protected(self, found: list[tuple[int, str]], dir_fd: int, parts: tuple[str, ...]) -> None:
        try:
            fd = os.open(parts[-1], _PATH_FLAGS, dir_fd=dir_fd)
        except OSError:
            return  # gone since the listing
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            # A mount cannot sit on a link: what the link leads to inside the workspace is
            # mounted read-only instead (a link that leads out leads to nothing in the sandbox).
            os.close(fd)
            target = self._link_target(parts)
            if target is None:
                return
            fd, parts = target
        found.append((fd, self.files.workspace.real_path(parts)))
        if len(found) > _MAX_PROTECTED_MOUNTS:
            raise ResourceExhausted(
                f"the workspace holds more than {_MAX_PROTECTED_MOUNTS} protected entries (first: "
                f"'{show('/'.join(parts))}'); narrow protected_paths"
            )

    def _link_target(self, parts: tuple[str, ...]) -> tuple[int, tuple[str, ...]] | None:
        """An O_PATH descriptor of the real entry a protected link leads to, and its parts."""
        try:
            with self.files.workspace.locate("/".join(parts), follow_final=True) as where:
                if where.stat is None or not where.name:
                    return None
                return os.open(where.name, _PATH_FLAGS, dir_fd=where.dir_fd), where.parts
        except (DuckLMError, OSError):
            return None  # leads out of the workspace, loops, or is gone: nothing to mount


def _system_mounts(search_path: str) -> tuple[list[str], list[str]]:
    """bwrap arguments for the read-only system folders and /etc files, and (to come after the
    fresh /tmp, which would hide one under it) for the search path folders they do not cover."""
    system: list[str] = []
    covered: list[str] = []
    for folder in _SYSTEM_DIRS:
        if os.path.islink(folder):
            system += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            system += ["--ro-bind", folder, folder]
            covered.append(folder)
    for name in _ETC_FILES:
        system += ["--ro-bind-try", name, name]
    extra: list[str] = []
    for folder in search_path.split(":"):
        real = os.path.realpath(folder)
        if os.path.isdir(real) and not any(_under(real, done) for done in covered):
            extra += ["--ro-bind", real, real]
            covered.append(real)
    return system, extra


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def describe(enabled: bool) -> str:
    """One line for the catalogue and the logs: how commands are confined."""
    if enabled:
        return (
            "Commands run in a sandbox: they see only the workspace (read-only unless approved) and "
            "the system's programs, with no network."
        )
    return "WARNING: the command sandbox is turned off (sandbox=false); commands run unsandboxed."
