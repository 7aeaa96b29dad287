"""ExecuteTool from end to end: look the tool up, canonicalise and validate its arguments, apply
the policy (refusals come before any approval is asked), compute the action hash, take the
approval if the action is gated (or, where none covers it, request one and return it), then run it.

The gate is here, in the tools service, so no caller can skip it: a gated action runs only after
`ApprovalBook.admit` accepted an approval for its exact hash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common.config import ConfigError
from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.tools.approvals import ApprovalBook
from services.tools.canonical import Action, action_of, canonical_value
from services.tools.catalogue import TOOLS, Risk, ToolSpec, validate_arguments
from services.tools.commands import CommandChecker, CommandPlan
from services.tools.files import FileTools
from services.tools.patterns import Pattern, pattern_of
from services.tools.policy import Policy
from services.tools.sandbox import Sandbox, describe, sandbox_failure
from services.tools.shell import CommandResult, run_plan
from services.tools.store import ApprovalRecord

if TYPE_CHECKING:
    from services.tools.mcp_tools import McpTools

__all__ = ["CommandLimits", "Outcome", "Prepared", "ToolInfo", "ToolRunner"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandLimits:
    timeout_seconds: float
    max_output_bytes: int


@dataclass(frozen=True)
class ToolInfo:
    spec: ToolSpec
    requires_approval: bool
    description: str


@dataclass(frozen=True)
class Prepared:
    """A call that passed every check but the approval: its action and how to run it."""

    action: Action
    needs_approval: bool
    run: Callable[[], Awaitable[dict[str, Any]]]
    # For run_command: the pattern a TASK_PATTERN grant would cover.
    pattern: Pattern | None = None


@dataclass(frozen=True)
class Outcome:
    """How one ExecuteTool ended: the tool ran (`result`), or, with `approval_required`, nothing
    ran and the call waits for a human on that pending approval."""

    result: dict[str, Any]
    truncated: bool
    action_hash: str
    approval_required: ApprovalRecord | None = None


class ToolRunner:
    """The catalogue, the policy and the gate, over one workspace."""

    def __init__(
        self,
        policy: Policy,
        files: FileTools,
        book: ApprovalBook,
        limits: CommandLimits,
        sandbox: Sandbox | None,
        mcp: McpTools | None = None,
    ) -> None:
        unknown = set(policy.tools) - {spec.name for spec in TOOLS}
        if unknown:
            raise ConfigError(f"the policy names unknown tools: {', '.join(sorted(unknown))}")
        self.policy = policy
        self.files = files
        self.commands = CommandChecker(policy, files)
        self.book = book
        self.limits = limits
        # None only when the setting turns the sandbox off; never as a fallback.
        self.sandbox = sandbox
        # The configured MCP servers' tools (services/tools/mcp_tools.py), named `server.tool`.
        self.mcp = mcp
        self._specs = {spec.name: spec for spec in TOOLS}

    def catalogue(self) -> list[ToolInfo]:
        """The enabled tools, in catalogue order, with approval needs after config."""
        tools = []
        for spec in TOOLS:
            override = self.policy.tools.get(spec.name)
            if override is not None and not override.enabled:
                continue
            description = spec.description
            if spec.name == "run_command":
                description = f"{description} {describe(self.sandbox is not None)}"
            tools.append(
                ToolInfo(
                    spec, self._requires_approval(spec, default=spec.risk is not Risk.READ_ONLY), description
                )
            )
        if self.mcp is not None:
            tools.extend(ToolInfo(tool.spec, tool.requires_approval, tool.spec.description) for tool in self.mcp.tools())
        return tools

    def _requires_approval(self, spec: ToolSpec, *, default: bool) -> bool:
        override = self.policy.tools.get(spec.name)
        if override is not None and override.requires_approval is not None:
            return override.requires_approval
        return default

    async def prepare(self, tool_name: str, arguments: dict[str, Any]) -> Prepared:
        """Checks a call without running it; raises the refusal if the policy forbids it."""
        spec = self._specs.get(tool_name)
        if spec is None and self.mcp is not None and "." in tool_name:
            call = self.mcp.prepare(tool_name, arguments)
            return Prepared(call.action, call.needs_approval, call.run, call.pattern)
        if spec is None:
            raise NotFound(f"unknown tool '{tool_name}'; ListTools gives the catalogue")
        override = self.policy.tools.get(tool_name)
        if override is not None and not override.enabled:
            raise PermissionDenied(f"tool '{tool_name}' is disabled by the policy", reason="TOOL_DISABLED")
        args = canonical_value(arguments)
        validate_arguments(tool_name, args)
        root = str(self.files.workspace.root)
        if tool_name == "run_command":
            # Blocking: the path checks of the arguments touch the file system.
            plan = await asyncio.to_thread(self.commands.plan, args["argv"], args.get("cwd", "."))
            needs = self._requires_approval(spec, default=not plan.read_only)
            action = action_of(tool_name, args, plan.cwd, self.policy.version)
            pattern = self._pattern(args, plan)
            # The workspace is writable in the sandbox only for a command that ran under an approval.
            return Prepared(action, needs, lambda: self._run_command(plan, args, writable=needs), pattern)
        if tool_name == "write_file":
            self.files.check_content(args["content"])
        if tool_name in ("write_file", "make_dir"):
            # Blocking: refuses a write that could never run before a human is asked to approve it.
            await asyncio.to_thread(self.files.check_writable, args["path"])
        elif "path" in args:
            self.files.workspace.lexical_parts(args["path"])
        needs = self._requires_approval(spec, default=spec.risk is not Risk.READ_ONLY)
        action = action_of(tool_name, args, root, self.policy.version)
        return Prepared(action, needs, lambda: self._run_file_tool(tool_name, args))

    def _pattern(self, args: dict[str, Any], plan: CommandPlan) -> Pattern:
        rule = self.policy.commands.get(args["argv"][0])
        workspace = self.files.workspace

        def is_protected(operand: str) -> bool:
            return self.files.is_protected(workspace.lexical_parts(operand, plan.cwd_parts))

        return pattern_of(
            args,
            has_subcommands=bool(rule is not None and rule.subcommands),
            cwd=plan.cwd,
            display_cwd="./" + "/".join(plan.cwd_parts),
            policy_version=self.policy.version,
            is_protected=is_protected,
        )

    async def execute(
        self, tool_name: str, arguments: dict[str, Any], task_id: str, approval_id: str
    ) -> Outcome:
        """Runs a call if the policy allows it and, when gated, an approval covers it exactly; a
        gated call nothing covers comes back with its pending approval. Prepared (checked and
        canonicalised) once: the approval, if one is requested, is for that same action."""
        prepared = await self.prepare(tool_name, arguments)
        if prepared.needs_approval:
            admission = await self.book.admit(approval_id, prepared.action, task_id, prepared.pattern)
            approval = admission.approval
            if not admission.admitted:
                log.info("%s waits for approval %s", tool_name, approval.id, extra={"task_id": task_id})
                return Outcome({}, False, prepared.action.hash, approval_required=approval)
            log.info(
                "running %s under approval %s (%s)",
                tool_name,
                approval.id,
                approval.scope,
                extra={"task_id": task_id},
            )
        result = await prepared.run()
        return Outcome(result, bool(result.get("truncated", False)), prepared.action.hash)

    async def _run_file_tool(self, tool_name: str, args: dict[str, Any]) -> dict[str, Any]:
        files = self.files
        # Blocking file-system work runs in a thread.
        if tool_name == "read_file":
            return await asyncio.to_thread(
                files.read_file, args["path"], args.get("offset", 0), args.get("limit")
            )
        if tool_name == "write_file":
            return await asyncio.to_thread(files.write_file, args["path"], args["content"])
        if tool_name == "list_dir":
            return await asyncio.to_thread(files.list_dir, args.get("path", "."))
        if tool_name == "stat_path":
            return await asyncio.to_thread(files.stat_path, args["path"])
        if tool_name == "make_dir":
            return await asyncio.to_thread(files.make_dir, args["path"])
        if tool_name == "find_files":
            return await asyncio.to_thread(files.find_files, args["pattern"], args.get("path", "."))
        raise NotFound(f"unknown tool '{tool_name}'")

    async def _run_command(
        self, plan: CommandPlan, args: dict[str, Any], *, writable: bool
    ) -> dict[str, Any]:
        timeout = min(
            float(args.get("timeout_seconds", self.limits.timeout_seconds)), self.limits.timeout_seconds
        )
        root = self.files.workspace.root
        env = {
            "PATH": self.policy.search_path,
            "HOME": str(root),
            "LANG": "C.UTF-8",
            # git must not find a repository above the workspace (e.g. the checkout holding data/).
            "GIT_CEILING_DIRECTORIES": str(root.parent),
            **plan.env,
        }
        if self.sandbox is None:
            done = await run_plan(plan, env, timeout, self.limits.max_output_bytes)
        else:
            done = await self._run_sandboxed(self.sandbox, plan, env, timeout, writable)
        return {
            "argv": plan.argv,
            "exit_code": done.exit_code,
            "stdout": done.stdout,
            "stderr": done.stderr,
            "truncated": done.truncated,
            "stdout_truncated": done.stdout_truncated,
            "stderr_truncated": done.stderr_truncated,
            "timed_out": False,
            "invalid_utf8": done.invalid_utf8,
            "duration_ms": done.duration_ms,
            "sandboxed": self.sandbox is not None,
        }

    async def _run_sandboxed(
        self, sandbox: Sandbox, plan: CommandPlan, env: dict[str, str], timeout: float, writable: bool
    ) -> CommandResult:
        if sandbox.problem is not None and await sandbox.probe() is not None:
            raise sandbox_failure(sandbox.problem)
        if writable:
            # Blocking: an approved command's launch walks the workspace for protected paths.
            launch = await asyncio.to_thread(
                sandbox.launch, writable=True, cwd=plan.cwd, writes_protected=plan.writes_protected
            )
        else:
            launch = sandbox.launch(writable=False, cwd=plan.cwd)
        try:
            done = await run_plan(
                plan,
                env,
                timeout,
                self.limits.max_output_bytes,
                prefix=launch.prefix,
                pass_fds=launch.pass_fds,
            )
        except FailedPrecondition as exc:
            if exc.reason == "COMMAND_NOT_STARTED":  # bwrap itself could not be executed
                raise sandbox_failure(f"bwrap could not be started ({exc.message})") from None
            raise
        finally:
            launch.close()
        failure = sandbox.failure(done.exit_code, done.stdout, done.stderr)
        if failure is not None:
            raise failure
        return done
