"""The schema one small-model fill generates a tool's arguments under.

A tool's own arguments schema admits far more than a 135M model can be trusted to write. For
one fill it is narrowed to what the step needs: paths limited to entries that exist (of the kind
the tool reads) and narrowed to the ones the request names, a new entry's name the one the
request gives, a glob that searches every folder, a file's content one of the texts the request
states, a command one the request types out, every other string capped. Pure functions of the
schema, the workspace listing and the request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from services.runtime.intents import names_given
from services.runtime.peers import ToolSpec, WorkspaceEntry
from services.runtime.schema_caps import cap_sizes, without_annotations

__all__ = ["PATH_KIND_KEY", "file_named_in", "fill_schema", "required_path_kind"]

# The tool catalogue marks path arguments with what they name: "file" (an existing file), "dir"
# (an existing folder), "any" (an existing entry), "new" (a path that may not exist yet) or
# "glob" (a pattern of paths).
PATH_KIND_KEY = "x-ducklm-path"
# Longest enum of workspace paths put in a grammar; past it, paths are a capped string.
MAX_PATH_CHOICES = 300
# A path that may not exist yet: plain relative names, no '..' segments, no leading '/', at most
# three levels of at most 32 characters. The bounds are in the pattern itself, because a grammar
# made from a schema follows a string's pattern and not its maxLength: an unbounded pattern lets
# a small model write until the token budget runs out.
NEW_PATH_PATTERN = r"^(\.|[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}){0,2})$"
NEW_PATH_MAX_CHARS = 98
# A glob searches every folder ("**/*.csv", never a bare "*.csv" that sees only the workspace
# root): path characters and wildcards after "**/", no spaces, at most 40 characters.
GLOB_PATTERN = r"^\*\*/[A-Za-z0-9_.*?/\[\]-]{1,37}$"
GLOB_MAX_CHARS = 40
# A glob written out in a request: "*.log", "src/*.txt".
_GLOB_IN_REQUEST = re.compile(r"(?<![\w*/.-])((?:[\w.-]+/)*\*[\w*.?-]*)")
# The catalogue marks a file's new content: where the request states the text, it is a choice.
CONTENT_KEY = "x-ducklm-content"
# ... and a command line: where the request types one out, it is a choice.
ARGV_KEY = "x-ducklm-argv"
# Each item of an argument list (a command's argv); how many of them is MAX_ARRAY_ITEMS.
ARG_ITEM_CHARS = 80


def _named_in(path: str, request: str) -> bool:
    """`path` (or, for a nested path, its last part) appears in `request` as a whole name."""
    for name in {path, path.rsplit("/", 1)[-1]}:
        if len(name) >= 3 and re.search(rf"(?<![\w./-]){re.escape(name)}(?![\w/-]|\.\w)", request):
            return True
    return False


def required_path_kind(tool: ToolSpec) -> str | None:
    properties = tool.arguments_schema.get("properties") or {}
    for name in tool.arguments_schema.get("required") or ():
        spec = properties.get(name)
        if isinstance(spec, dict) and spec.get(PATH_KIND_KEY):
            return str(spec[PATH_KIND_KEY])
    return None


def file_named_in(path: str, request: str) -> bool:
    """The request names this file: by path, by name, or by its name without the extension
    ("the README", "my todo list") where that is a word of four letters or more."""
    if _named_in(path, request):
        return True
    stem = path.rsplit("/", 1)[-1].split(".", 1)[0]
    return len(stem) >= 4 and re.search(rf"(?<![\w./-]){re.escape(stem)}(?![\w/-])", request, re.IGNORECASE) is not None


def _glob_schema(workspace: Sequence[WorkspaceEntry] | None, request: str) -> dict[str, Any]:
    """A glob: the patterns the request writes out, and one per kind of file the workspace holds
    ("**/*.py", "**/*.csv"), so "find the Python files" is a choice among what can match; with
    no listing, a bounded pattern."""
    written = [glob if glob.startswith("**/") else f"**/{glob}" for glob in _GLOB_IN_REQUEST.findall(request)]
    kinds = sorted({f"**/*{PurePosixPath(entry.path).suffix}" for entry in workspace or ()
                    if not entry.is_dir and PurePosixPath(entry.path).suffix})
    choices = [glob for glob in dict.fromkeys([*written, *kinds]) if re.fullmatch(GLOB_PATTERN, glob)]
    if workspace is None or not choices or len(choices) > MAX_PATH_CHOICES:
        return {"type": "string", "minLength": 4, "maxLength": GLOB_MAX_CHARS, "pattern": GLOB_PATTERN}
    return {"enum": choices}


def _path_schema(kind: str, workspace: Sequence[WorkspaceEntry] | None, request: str) -> dict[str, Any]:
    """A path argument's schema: an entry that exists (of the kind the tool reads), narrowed to
    the ones the request names when it names any; a folder argument with no folder named is the
    workspace root. A path that may not exist yet is a safe pattern."""
    if kind == "glob":
        return _glob_schema(workspace, request)
    pattern = {"type": "string", "minLength": 1, "maxLength": NEW_PATH_MAX_CHARS, "pattern": NEW_PATH_PATTERN}
    if kind == "new":
        # The file the request names, where it names one that is a safe new path.
        named_files = [name for name in names_given(request) if re.fullmatch(NEW_PATH_PATTERN, name)]
        return {"enum": named_files} if named_files else pattern
    if workspace is None:
        return pattern
    if kind == "dir":
        choices = [entry.path for entry in workspace if entry.is_dir]
    elif kind == "file":
        choices = [entry.path for entry in workspace if not entry.is_dir]
    else:
        choices = [entry.path for entry in workspace]
    named = [path for path in choices if _named_in(path, request)]
    whole = [path for path in named if path in request]
    if whole or named:
        return {"enum": whole or named}
    if kind == "dir":
        return {"enum": ["."]}
    if not choices or len(choices) > MAX_PATH_CHOICES:
        return pattern
    return {"enum": choices}


def fill_schema(
    arguments_schema: dict[str, Any], workspace: Sequence[WorkspaceEntry] | None, text_chars: int, request: str = "",
    write_choices: Sequence[str] = (), command_choices: Sequence[Sequence[str]] = (),
) -> dict[str, Any]:
    """A tool's arguments schema narrowed for one small-model fill: the required arguments and
    the path arguments only (all required), paths limited to what exists where the tool reads,
    a file's content one of the texts the request states and a command one the request types
    out (where it does), every other string capped."""
    properties: dict[str, Any] = arguments_schema.get("properties") or {}
    required = set(arguments_schema.get("required") or [])
    narrowed: dict[str, Any] = {}
    for name, spec in properties.items():
        kind = spec.get(PATH_KIND_KEY) if isinstance(spec, dict) else None
        # An optional path is asked for only where nothing is required (list_dir's folder).
        if kind and (name in required or not required):
            narrowed[name] = _path_schema(str(kind), workspace, request)
        elif isinstance(spec, dict) and spec.get(CONTENT_KEY) and name in required and write_choices:
            narrowed[name] = {"enum": list(write_choices)}
        elif isinstance(spec, dict) and spec.get(ARGV_KEY) and name in required and command_choices:
            narrowed[name] = {"enum": [list(argv) for argv in command_choices]}
        elif name in required:
            capped = without_annotations(spec, descriptions=False)
            cap_sizes(capped, text_chars, ARG_ITEM_CHARS)
            narrowed[name] = capped
    if not properties:
        return {"type": "object"}
    return {"type": "object", "properties": narrowed, "required": list(narrowed), "additionalProperties": False}

