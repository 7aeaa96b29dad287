"""The option parser over `allowed_options`, and the shipped allowlist checked against the
installed programs' own --help, so that every allowed name is one the program really has (a
written-out abbreviation must be an exact match for the program too)."""

from __future__ import annotations

import re
import subprocess

import pytest

from services.common.errors import PermissionDenied
from services.tools.options import OptionSet, Style, parse_spec
from services.tools.policy import CommandRule, load_policy

from .support import DEFAULT_POLICY


def _set(*specs: str, style: Style = Style.GNU) -> OptionSet:
    return OptionSet("prog", [parse_spec(spec) for spec in specs], style)


def test_prefixes_are_written_out_and_values_found() -> None:
    options = _set("-n VALUE", "--lines=VALUE", "-q", "--quiet", "--color[=VALUE]")
    parsed = options.parse(["--lin=3", "--qu", "-qn5", "--col", "--color=always", "f", "--", "-x"])
    assert parsed.argv == ["--lines=3", "--quiet", "-qn5", "--color", "--color=always", "f", "--", "-x"]
    assert parsed.values == ["3", "5", "always", "f", "-x"]
    assert options.parse(["--lines", "7", "-n", "8"]).values == ["7", "8"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--l"], "ambiguous"),
        (["--output=x"], "not in its allowed options"),
        (["-qx"], "'-x' (in '-qx')"),
        (["--quiet=1"], "takes no value"),
        (["-n"], "needs a value"),
        (["-n", "--quiet"], "looks like an option"),
        (["--lines", "-5"], "looks like an option"),
        (["-5"], "'-5'"),
    ],
)
def test_refusals(args: list[str], message: str) -> None:
    options = _set("-n VALUE", "--lines=VALUE", "--list", "-q", "--quiet")
    with pytest.raises(PermissionDenied, match=re.escape(message)):
        options.parse(args)


def test_short_values_end_a_cluster_and_optional_values_are_glued_only() -> None:
    options = _set("-p", "-f VALUE", "-u[VALUE]", "-NUM")
    assert options.parse(["-pf/etc/passwd"]).values == ["/etc/passwd"]
    assert options.parse(["-pf", "x"]).values == ["x"]
    assert options.parse(["-uno", "y"]).values == ["no", "y"]
    assert options.parse(["-u", "y"]).values == ["y"]
    assert options.parse(["-12"]).argv == ["-12"]


def test_words_are_exact_and_take_the_next_argument() -> None:
    options = _set("-name VALUE", "-mtime VALUE", "-print", style=Style.WORDS)
    parsed = options.parse([".", "-mtime", "-5", "-name", "*.py", "-print"])
    assert parsed.values == [".", "-5", "*.py"]
    with pytest.raises(PermissionDenied):
        options.parse([".", "-nam", "x"])


@pytest.mark.parametrize("spec", ["x", "--", "-x VALUE VALUE", "--a b", "--x=VAL"])
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="option spec"):
        parse_spec(spec)


def _gnu_programs() -> list[tuple[str, CommandRule]]:
    policy = load_policy(DEFAULT_POLICY)
    skipped = {
        "git",
        "find",
        "echo",
        "pwd",
    }  # git and find have no getopt --help; echo, pwd are builtins-like
    return [(name, rule) for name, rule in policy.commands.items() if name not in skipped]


@pytest.mark.parametrize(
    "program, rule", _gnu_programs(), ids=lambda value: value if isinstance(value, str) else ""
)
def test_allowed_long_options_exist_in_the_program(program: str, rule: CommandRule) -> None:
    help_text = subprocess.run([program, "--help"], capture_output=True, text=True, check=False).stdout
    for text in rule.allowed_options:
        spec = parse_spec(text)
        if spec.name.startswith("--"):
            assert re.search(re.escape(spec.name) + r"(?![A-Za-z0-9-])", help_text), (
                f"{program}: {spec.name} is not in its --help"
            )
