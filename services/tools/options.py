"""A program's options as the program itself will read them: the allowlist (`allowed_options`)
parsed into option specs, and a parser that splits an argv into options, option values and
operands the way GNU `getopt_long` (and git's parse-options, and tar's argp) does.

What it guarantees, before anything is decided about an argument:
- a long option given as a unique prefix (`--comp`) is resolved to its full name among the
  allowed options and *rewritten to that name* in the argv the program gets, so the program can
  never resolve it to another option; an ambiguous prefix is refused, and so is any option that
  is not allowed;
- inside a short cluster (`-pf/etc/passwd`) a value-taking letter ends the cluster and the rest
  is its value, which is reported like every other value so that it is checked as a path;
- `--opt=value` and `--opt value` give the same value; a separate value that starts with '-' is
  refused (give it glued), so a wrong spec cannot make the program read it as an option.

This module only parses text; it never looks at the file system.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.common.errors import PermissionDenied
from services.tools.workspace import show

__all__ = ["OptionSet", "OptionSpec", "Parsed", "Style", "ValueKind", "parse_spec"]

_SPEC = re.compile(
    r"^(?P<name>--?[A-Za-z0-9][A-Za-z0-9_-]*|-[A-Za-z0-9?])"
    r"(?:(?P<required>[= ]VALUE)|(?P<optional>\[=?VALUE\]))?$"
)
_NUMBER = "-NUM"


class ValueKind(enum.Enum):
    NONE = "none"
    REQUIRED = "required"
    # Only glued: `--color=always`, `-uno`.
    OPTIONAL = "optional"


class Style(enum.Enum):
    # getopt_long: short clusters, `--long` with unique prefixes, `--` ends the options.
    GNU = "gnu"
    # find's expression words: `-name VALUE`, exact words only, no clusters, no prefixes.
    WORDS = "words"


@dataclass(frozen=True)
class OptionSpec:
    name: str
    value: ValueKind


def parse_spec(text: str) -> OptionSpec:
    """One `allowed_options` entry: `-x`, `-x VALUE`, `-x[VALUE]`, `--name`, `--name=VALUE`,
    `--name[=VALUE]`; `-NUM` allows `-5` style numbers. Raises ValueError for anything else."""
    if text == _NUMBER:
        return OptionSpec(_NUMBER, ValueKind.NONE)
    match = _SPEC.match(text)
    if match is None:
        raise ValueError(
            f"option spec {text!r} must look like -x, -x VALUE, -x[VALUE], --name, --name=VALUE or "
            "--name[=VALUE]"
        )
    kind = ValueKind.NONE
    if match["required"]:
        kind = ValueKind.REQUIRED
    elif match["optional"]:
        kind = ValueKind.OPTIONAL
    return OptionSpec(match["name"], kind)


@dataclass(frozen=True)
class Parsed:
    """An argv after parsing: what the program gets, and every string it may take as a path."""

    argv: list[str]
    # Option values and operands, in order: each is checked as a path.
    values: list[str] = field(default_factory=list)


def _refused(message: str) -> PermissionDenied:
    return PermissionDenied(message, reason="ARGUMENT_NOT_ALLOWED")


class OptionSet:
    """The allowed options of one program (or subcommand) and the parser over them."""

    def __init__(self, program: str, specs: Sequence[OptionSpec], style: Style) -> None:
        self.program = program
        self.style = style
        self.numbers = any(spec.name == _NUMBER for spec in specs)
        self.long = {spec.name: spec for spec in specs if spec.name.startswith("--")}
        self.short = {
            spec.name[1]: spec
            for spec in specs
            if len(spec.name) == 2 and spec.name != _NUMBER and not spec.name.startswith("--")
        }
        self.words = {spec.name: spec for spec in specs if spec.name != _NUMBER}

    def parse(self, args: Sequence[str]) -> Parsed:
        """Splits `args`; raises PermissionDenied (ARGUMENT_NOT_ALLOWED) for any option not allowed."""
        if self.style is Style.WORDS:
            return self._parse_words(args)
        out: list[str] = []
        values: list[str] = []
        index = 0
        options_done = False
        while index < len(args):
            arg = args[index]
            index += 1
            if options_done or arg == "-" or not arg.startswith("-"):
                out.append(arg)
                values.append(arg)
            elif arg == "--":
                options_done = True
                out.append(arg)
            elif arg.startswith("--"):
                index = self._long(arg, args, index, out, values)
            else:
                index = self._cluster(arg, args, index, out, values)
        return Parsed(out, values)

    def _next_value(self, option: str, args: Sequence[str], index: int) -> str:
        if index >= len(args):
            raise _refused(f"'{self.program}' option '{show(option)}' needs a value")
        value = args[index]
        if value.startswith("-") and value != "-":
            raise _refused(
                f"'{self.program}' option '{show(option)}' is followed by '{show(value)}', which looks "
                f"like an option; give the value glued ('{show(option)}=...' or '-x...')"
            )
        return value

    def resolve_long(self, name: str) -> OptionSpec:
        """The allowed long option `name` stands for: itself, or the one it uniquely abbreviates."""
        exact = self.long.get(name)
        if exact is not None:
            return exact
        candidates = sorted(full for full in self.long if full.startswith(name))
        if len(candidates) == 1:
            return self.long[candidates[0]]
        if candidates:
            raise _refused(
                f"'{self.program}' option '{show(name)}' is ambiguous: it abbreviates "
                f"{', '.join(candidates)}; write the option out in full"
            )
        raise _refused(f"'{self.program}' option '{show(name)}' is not in its allowed options")

    def _long(self, arg: str, args: Sequence[str], index: int, out: list[str], values: list[str]) -> int:
        name, glued, value = arg.partition("=")
        spec = self.resolve_long(name)
        if spec.value is ValueKind.NONE:
            if glued:
                raise _refused(f"'{self.program}' option '{spec.name}' takes no value, got '{show(arg)}'")
            out.append(spec.name)
        elif glued:
            out.append(f"{spec.name}={value}")
            values.append(value)
        elif spec.value is ValueKind.REQUIRED:
            value = self._next_value(name, args, index)
            out += [spec.name, value]
            values.append(value)
            index += 1
        else:
            out.append(spec.name)
        return index

    def _cluster(self, arg: str, args: Sequence[str], index: int, out: list[str], values: list[str]) -> int:
        if self.numbers and arg[1:].isdigit():
            out.append(arg)
            return index
        out.append(arg)
        for position in range(1, len(arg)):
            letter = arg[position]
            spec = self.short.get(letter)
            if spec is None:
                where = f" (in '{show(arg)}')" if len(arg) > 2 else ""
                raise _refused(
                    f"'{self.program}' option '-{show(letter)}'{where} is not in its allowed options"
                )
            if spec.value is ValueKind.NONE:
                continue
            rest = arg[position + 1 :]
            if rest:
                values.append(rest)
            elif spec.value is ValueKind.REQUIRED:
                value = self._next_value(f"-{letter}", args, index)
                out.append(value)
                values.append(value)
                index += 1
            break
        return index

    def _parse_words(self, args: Sequence[str]) -> Parsed:
        out: list[str] = []
        values: list[str] = []
        index = 0
        while index < len(args):
            arg = args[index]
            index += 1
            out.append(arg)
            if arg == "-" or not arg.startswith("-"):
                values.append(arg)
                continue
            spec = self.words.get(arg)
            if spec is None:
                raise _refused(f"'{self.program}' option '{show(arg)}' is not in its allowed options")
            if spec.value is not ValueKind.NONE:
                if index >= len(args):
                    raise _refused(f"'{self.program}' option '{show(arg)}' needs a value")
                # find reads the next word as the value whatever it looks like (`-mtime -5`).
                out.append(args[index])
                values.append(args[index])
                index += 1
        return Parsed(out, values)
