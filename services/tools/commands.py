"""Checks a run_command argv against the allowlist and turns it into a plan to execute.

The argv is never given to a shell: `;`, `&&`, `|`, `$(...)`, backticks and the like reach the
program as plain text. What is checked here, before any approval is asked:
- argv[0] is a bare program name in the allowlist (no path, no `NAME=value` assignment); the
  program is looked up in the policy's search path only, never in the workspace;
- every option is in the program's (and subcommand's) `allowed_options`, parsed as the program
  parses it (services/tools/options.py): abbreviations resolved and written out in full, values
  inside short clusters found; this is where argument injection (`find -exec`, `git -c`,
  `tar --to-command`, `sort --compress-program`) is stopped;
- every operand and every option value stays inside the workspace: no absolute path outside it,
  no `..` above the root, no link that resolves outside, no hard-linked or special file, and no
  protected path (read-only commands included).

This is defence in depth: the sandbox (services/tools/sandbox.py) is what bounds a command.

Blocking file-system work (the path checks): callers run it in a thread.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.tools.files import FileTools
from services.tools.policy import PROGRAM_NAME, Policy
from services.tools.workspace import show

__all__ = ["BASE_ENV_KEYS", "CommandChecker", "CommandPlan"]

_MAX_ARGS = 256
_MAX_ARGV_CHARS = 64 * 1024
BASE_ENV_KEYS = ("PATH", "HOME", "LANG")


@dataclass(frozen=True)
class CommandPlan:
    """A checked invocation: what to execute, where, with which environment."""

    executable: str
    argv: list[str]
    cwd: str
    cwd_parts: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    # The sandbox may leave existing protected paths writable (policy `writes_protected`).
    writes_protected: bool = False


def _not_allowed(message: str) -> PermissionDenied:
    return PermissionDenied(message, reason="COMMAND_NOT_ALLOWED")


def _bad_argument(message: str) -> PermissionDenied:
    return PermissionDenied(message, reason="ARGUMENT_NOT_ALLOWED")


class CommandChecker:
    """Applies the policy's allowlist to argv lists."""

    def __init__(self, policy: Policy, files: FileTools) -> None:
        self.policy = policy
        self.files = files
        self.workspace = files.workspace

    def plan(self, argv: Sequence[str], cwd: str = ".") -> CommandPlan:
        """The plan for `argv` run in `cwd`, or the error that refuses it."""
        _check_shape(argv)
        program = argv[0]
        if not PROGRAM_NAME.match(program):
            hint = ""
            if " " in program:
                hint = "; give each argument as its own list item"
            elif "=" in program:
                hint = "; environment assignments are not accepted"
            elif "/" in program:
                hint = "; name the program, not a path to it"
            raise _not_allowed(
                f"argv[0] must be the bare name of an allowlisted program, not '{show(program)}'{hint}"
            )
        rule = self.policy.commands.get(program)
        if rule is None:
            allowed = ", ".join(sorted(self.policy.commands)) or "none"
            raise _not_allowed(f"program '{program}' is not in the allowlist (allowed: {allowed})")
        args = list(argv[1:])
        env = dict(rule.env)
        inherited: list[str] = []
        prefix: list[str] = []
        writes_protected = rule.writes_protected
        if rule.subcommands is not None:
            if not args or args[0] not in rule.subcommands:
                given = f"'{show(args[0])}'" if args else "nothing"
                names = ", ".join(sorted(rule.subcommands))
                raise _not_allowed(f"'{program}' needs one of the subcommands {names} first, got {given}")
            subcommand = args.pop(0)
            prefix = [subcommand]
            inherited = rule.allowed_options
            rule = rule.subcommands[subcommand]
            env.update(rule.env)
            writes_protected = writes_protected or rule.writes_protected
        if rule.options_first and args and not args[0].startswith("-"):
            raise _bad_argument(
                f"'{program}' needs its first argument to be an option (old-style '{show(args[0])}' is refused)"
            )
        name = " ".join([program, *prefix])
        parsed = rule.option_set(name, inherited).parse(args)
        cwd_parts = self._cwd(cwd)
        for value in parsed.values:
            self._check_path_argument(program, value, cwd_parts)
        executable = shutil.which(program, path=self.policy.search_path)
        if executable is None:
            raise FailedPrecondition(
                f"program '{program}' is allowlisted but not installed in {self.policy.search_path}",
                reason="PROGRAM_NOT_INSTALLED",
            )
        return CommandPlan(
            executable=executable,
            argv=[program, *prefix, *rule.prepend_args, *parsed.argv],
            cwd=self.workspace.real_path(cwd_parts),
            cwd_parts=cwd_parts,
            env=env,
            read_only=rule.read_only,
            writes_protected=writes_protected,
        )

    def _cwd(self, cwd: str) -> tuple[str, ...]:
        """The real components of the working directory, which must be a directory inside."""
        with self.workspace.locate(cwd or ".", follow_final=True) as where:
            if where.name:
                if where.stat is None:
                    raise NotFound(f"working directory '{show(cwd)}' does not exist")
                if not stat.S_ISDIR(where.stat.st_mode):
                    raise FailedPrecondition(
                        f"working directory '{show(cwd)}' is not a directory", reason="NOT_A_DIRECTORY"
                    )
            return where.parts

    def _check_path_argument(self, program: str, candidate: str, cwd_parts: tuple[str, ...]) -> None:
        if not candidate:
            return
        try:
            parts = self.workspace.lexical_parts(candidate, cwd_parts)
        except InvalidArgument:
            return  # longer than any path the kernel opens (PATH_MAX): plain text
        if self.files.is_protected(parts):
            raise PermissionDenied(
                f"'{program}' argument '{show(candidate)}' names a protected path (config protected_paths)",
                reason="PROTECTED_PATH",
            )
        try:
            with self.workspace.locate(candidate, follow_final=True, base=cwd_parts) as where:
                entry = where.stat
                resolved = where.parts
        except (NotFound, FailedPrecondition, InvalidArgument):
            # Not an existing path (missing, through a file, a name over NAME_MAX, a link
            # loop): the program gets the same error from the kernel.
            return
        if self.files.is_protected(resolved):
            raise PermissionDenied(
                f"'{program}' argument '{show(candidate)}' leads to a protected path (config protected_paths)",
                reason="PROTECTED_PATH",
            )
        if entry is None or stat.S_ISDIR(entry.st_mode):
            return
        if not stat.S_ISREG(entry.st_mode):
            raise PermissionDenied(
                f"'{program}' argument '{show(candidate)}' is a device, FIFO or socket", reason="SPECIAL_FILE"
            )
        if entry.st_nlink > 1:
            raise PermissionDenied(
                f"'{program}' argument '{show(candidate)}' is a file with {entry.st_nlink} hard links; another "
                "name of it may be outside the workspace",
                reason="HARD_LINK",
            )


def _check_shape(argv: Sequence[str]) -> None:
    if not argv:
        raise InvalidArgument("argv must name a program")
    if len(argv) > _MAX_ARGS:
        raise InvalidArgument(f"argv has {len(argv)} items; at most {_MAX_ARGS} are accepted")
    if sum(len(arg) for arg in argv) > _MAX_ARGV_CHARS:
        raise InvalidArgument(f"argv is longer than {_MAX_ARGV_CHARS} characters")
    for arg in argv:
        if not isinstance(arg, str):
            raise InvalidArgument("every argv item must be a string")
        if "\x00" in arg:
            raise InvalidArgument("argv items must not contain NUL characters")
