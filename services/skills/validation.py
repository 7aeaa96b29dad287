"""Parses and validates a SKILL.md text in the Agent Skills format. Pure: text in, problems out.

A SKILL.md is YAML front matter between two `---` lines, then a Markdown body. The registry, the
ValidateSkill RPC, the `validate` CLI and proposal promotion all use `parse_skill_md`, so a skill
is judged by one set of rules everywhere. This module must never read files or log.

Two modes. Strict: every rule of the Agent Skills spec is an error. Lenient (the default): what
other agents add on top of the spec loads with a warning instead — front-matter keys outside the
spec (Claude Code's `argument-hint`, `disable-model-invocation`…) are kept aside and ignored, and
a skill whose `name` differs from its folder loads under the folder's name. What the spec truly
forbids (a bad name, a missing or over-long description, malformed YAML) is an error in both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from services.skills.tool_names import map_allowed_tools, split_allowed_tools

__all__ = [
    "COMPATIBILITY_MAX",
    "DESCRIPTION_MAX",
    "NAME_MAX",
    "Problem",
    "SkillDocument",
    "check_name",
    "declared_name",
    "parse_skill_md",
    "split_front_matter",
]

NAME_MAX = 64
DESCRIPTION_MAX = 1024
COMPATIBILITY_MAX = 500
KNOWN_FIELDS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
_NAME_CHARS = re.compile(r"[a-z0-9-]+")


@dataclass(frozen=True)
class Problem:
    """One rule a skill breaks: `field` is a front-matter key, "frontmatter" or "SKILL.md"."""

    field: str
    message: str


@dataclass(frozen=True)
class SkillDocument:
    """A SKILL.md that passed every rule."""

    name: str
    description: str
    body: str
    license: str = ""
    compatibility: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # As written in `allowed-tools`: tools the spec calls pre-approved while the skill is in use.
    allowed_tools: tuple[str, ...] = ()
    # `allowed_tools` mapped to DuckLM tool names (tool_names.py).
    pre_approved_tools: tuple[str, ...] = ()
    # Front-matter keys outside the spec (lenient mode), their values as YAML text.
    extra_fields: dict[str, str] = field(default_factory=dict)
    # What lenient mode let through, and names in `allowed-tools` that map to no DuckLM tool.
    warnings: tuple[Problem, ...] = ()


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (plain PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str):
                if key in seen:
                    raise _DuplicateKey(key)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_skill_md(
    text: str, folder_name: str | None = None, *, strict: bool = False
) -> tuple[SkillDocument | None, list[Problem]]:
    """Parses `text`; returns the document and no problems, or None and every problem found.
    Warnings (lenient mode) travel in `SkillDocument.warnings`.

    `folder_name` is the folder the skill lives in (the name must equal it, or in lenient mode
    the skill takes the folder's name); None skips that rule, for drafts that have no folder yet.
    """
    split = _split_front_matter(text)
    if isinstance(split, Problem):
        return None, [split]
    raw_yaml, body = split
    try:
        data = yaml.load(raw_yaml, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except _DuplicateKey as exc:
        return None, [Problem(exc.key, "is given more than once in the front matter")]
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at front-matter line {where.line + 1}" if where is not None else ""
        detail = getattr(exc, "problem", None) or str(exc)
        return None, [Problem("frontmatter", f"is not valid YAML{line}: {detail}")]
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a YAML {type(data).__name__}"
        return None, [Problem("frontmatter", f"must be a YAML mapping of fields, but it is {kind}")]

    problems: list[Problem] = []
    warnings: list[Problem] = []
    extra_fields: dict[str, str] = {}
    for key in data:
        if key in KNOWN_FIELDS:
            continue
        if strict or not isinstance(key, str):
            problems.append(
                Problem(
                    str(key),
                    "is not an Agent Skills field (allowed: " + ", ".join(KNOWN_FIELDS) + "); "
                    "put extra information under `metadata`",
                )
            )
        else:
            extra_fields[key] = _yaml_text(data[key])
            warnings.append(
                Problem(key, "is not an Agent Skills field; kept and ignored (strict mode rejects it)")
            )
    # No length limit here: check_name reports the length along with the other name rules.
    name = _required_text(data, "name", None, problems)
    if name is not None:
        name_problems = check_name(name)
        problems.extend(name_problems)
        if not name_problems and folder_name is not None and name != folder_name:
            message = f"is {name!r} but the skill's folder is {folder_name!r}"
            if strict or check_name(folder_name):
                problems.append(Problem("name", message + "; they must be equal"))
            else:
                warnings.append(Problem("name", message + f"; loaded as {folder_name!r}"))
                name = folder_name
    description = _required_text(data, "description", DESCRIPTION_MAX, problems)
    license_ = _optional_text(data, "license", None, problems)
    compatibility = _optional_text(data, "compatibility", COMPATIBILITY_MAX, problems)
    metadata = _metadata(data, problems)
    allowed_tools = _allowed_tools(data, problems)
    mapping = map_allowed_tools(allowed_tools)
    if mapping.unknown:
        warnings.append(
            Problem(
                "allowed-tools",
                "names no DuckLM tool for " + ", ".join(repr(name) for name in mapping.unknown)
                + "; those are ignored (see docs/skills.md for the names DuckLM maps)",
            )
        )
    if problems or name is None or description is None:
        return None, problems
    document = SkillDocument(
        name=name,
        description=description,
        body=body,
        license=license_ or "",
        compatibility=compatibility or "",
        metadata=metadata,
        allowed_tools=allowed_tools,
        pre_approved_tools=mapping.tools,
        extra_fields=extra_fields,
        warnings=tuple(warnings),
    )
    return document, []


def check_name(name: str) -> list[Problem]:
    """The rules for a skill name, each broken rule as its own problem (empty when valid)."""
    if not name:
        return [Problem("name", "must not be empty")]
    problems: list[Problem] = []
    if len(name) > NAME_MAX:
        problems.append(Problem("name", f"is {len(name)} characters; the most is {NAME_MAX}"))
    if any(ch.isupper() for ch in name):
        problems.append(Problem("name", f"{name!r} has upper-case letters; use lower case only"))
    others = sorted({ch for ch in name.lower() if not _NAME_CHARS.fullmatch(ch)})
    if others:
        shown = " ".join(repr(ch) for ch in others)
        problems.append(Problem("name", f"{name!r} has characters other than a-z, 0-9 and '-': {shown}"))
    if name.startswith("-") or name.endswith("-"):
        problems.append(Problem("name", f"{name!r} must not start or end with a hyphen"))
    if "--" in name:
        problems.append(Problem("name", f"{name!r} must not contain consecutive hyphens ('--')"))
    return problems


def declared_name(text: str) -> str:
    """The `name` a SKILL.md text declares, or "" if it declares none readable (for labelling
    drafts, valid or not)."""
    split = _split_front_matter(text)
    if isinstance(split, Problem):
        return ""
    try:
        data = yaml.load(split[0], Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except (_DuplicateKey, yaml.YAMLError):
        return ""
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else ""


def split_front_matter(text: str) -> tuple[str, str] | None:
    """(front-matter YAML, body) of a SKILL.md text, or None when it has no closed front matter."""
    split = _split_front_matter(text)
    return None if isinstance(split, Problem) else split


def _split_front_matter(text: str) -> tuple[str, str] | Problem:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return Problem(
            "frontmatter", "SKILL.md must start with a '---' line that opens the YAML front matter"
        )
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            raw_yaml = "\n".join(lines[1:index])
            body = "\n".join(lines[index + 1 :]).lstrip("\n")
            return raw_yaml, body
    return Problem("frontmatter", "is not closed: add a '---' line after the last front-matter field")


def _required_text(
    data: dict[Any, Any], key: str, maximum: int | None, problems: list[Problem]
) -> str | None:
    if key not in data:
        problems.append(Problem(key, "is required"))
        return None
    return _text(data[key], key, maximum, problems)


def _optional_text(
    data: dict[Any, Any], key: str, maximum: int | None, problems: list[Problem]
) -> str | None:
    if key not in data:
        return None
    return _text(data[key], key, maximum, problems)


def _text(value: Any, key: str, maximum: int | None, problems: list[Problem]) -> str | None:
    if not isinstance(value, str):
        problems.append(Problem(key, f"must be a string, not {_kind(value)} (quote it in the YAML)"))
        return None
    if not value.strip():
        problems.append(Problem(key, "must not be empty"))
        return None
    if maximum is not None and len(value) > maximum:
        problems.append(Problem(key, f"is {len(value)} characters; the most is {maximum}"))
        return None
    return value


def _metadata(data: dict[Any, Any], problems: list[Problem]) -> dict[str, str]:
    value = data.get("metadata")
    if value is None:
        if "metadata" in data:
            problems.append(
                Problem("metadata", "must be a mapping of string keys to string values, not empty")
            )
        return {}
    if not isinstance(value, dict):
        problems.append(
            Problem("metadata", f"must be a mapping of string keys to string values, not {_kind(value)}")
        )
        return {}
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(Problem("metadata", f"key {key!r} must be a string, not {_kind(key)}"))
        elif not isinstance(item, str):
            problems.append(
                Problem(
                    "metadata", f"value of {key!r} must be a string, not {_kind(item)} (quote it in the YAML)"
                )
            )
        else:
            result[key] = item
    return result


def _allowed_tools(data: dict[Any, Any], problems: list[Problem]) -> tuple[str, ...]:
    """`allowed-tools` is a space-separated string in the spec; a YAML list of names is accepted."""
    if "allowed-tools" not in data:
        return ()
    value = data["allowed-tools"]
    if isinstance(value, str):
        tools = split_allowed_tools(value)
    elif isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            bad = next(item for item in value if not isinstance(item, str))
            problems.append(
                Problem("allowed-tools", f"list items must be tool names (strings), not {_kind(bad)}")
            )
            return ()
        tools = [item.strip() for item in value]
        if any(not tool for tool in tools):
            problems.append(Problem("allowed-tools", "list items must not be empty"))
            return ()
    else:
        problems.append(
            Problem(
                "allowed-tools",
                f"must be a space-separated string of tool names (or a list), not {_kind(value)}",
            )
        )
        return ()
    if not tools:
        problems.append(Problem("allowed-tools", "must name at least one tool when given"))
        return ()
    return tuple(dict.fromkeys(tools))


def _yaml_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip().removesuffix("...").strip()


def _kind(value: Any) -> str:
    if value is None:
        return "empty (null)"
    names = {
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a mapping",
    }
    return names.get(type(value), f"a {type(value).__name__}")
