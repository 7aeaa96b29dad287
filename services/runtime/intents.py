"""Requests that say outright which step they want: "run wc -l notes.txt", "make a folder called
old", "find the CSV files", "create hello.txt saying hi", "use find_files".

A small model ranks such a request's step no better than any other, and a wrong first step there
costs the user most (a listing instead of the folder they asked for). When the request's own
words name the step, the runtime takes that step and leaves only its arguments to the model.
Anything less plain is left to the model's choice. A pure function of the request, the steps on
offer and the workspace; nothing here calls a model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.runtime.peers import WorkspaceEntry

__all__ = [
    "asks_about_content", "asks_for_change", "explicit_step", "file_names_in", "mentions_change", "names_given",
    "stated_commands",
]

_POLITE = r"^\s*(?:please\s+|can you\s+|could you\s+)?"
_RUN = re.compile(_POLITE + r"(?:run|execute)\b(?!\s+(?:away|out|into|through)\b)", re.IGNORECASE)
_COMMAND = re.compile(_POLITE + r"use\s+(?:the\s+)?(?:[\w.-]+\s+)?command\b", re.IGNORECASE)
_MAKE_FOLDER = re.compile(
    _POLITE + r"(?:make|create|add)\s+(?:a\s+|an\s+|the\s+)?(?:new\s+|empty\s+)?(?:folder|directory|dir)\b",
    re.IGNORECASE,
)
_FIND = re.compile(
    _POLITE + r"(?:find|search|locate|look\s+for)\b(?!\s+out\b)|\banywhere\b"
    r"|^\s*(?:is|are)\s+there\s+(?:an?|any)\s+(?:[\w.-]+\s+)?files?\b",
    re.IGNORECASE,
)
# "a folder called archive", "a file named 'to do.txt'": the name that follows.
_CALLED = re.compile(r"\b(?:called|named)\s+['\"‘“]?([\w][\w./-]*?)['\"’”]?(?=[\s,;:!?]|\.(?:\s|$)|$)", re.IGNORECASE)
_WRITE = re.compile(_POLITE + r"(?:create|write|save|make|put|store)\b", re.IGNORECASE)
# Verbs of a change to the workspace.
_CHANGE_VERBS = (
    r"add|append|insert|write|save|update|change|replace|edit|fix|rename|remove|delete|put|create|copy|move|make"
)
_CHANGE = re.compile(_POLITE + rf"(?:{_CHANGE_VERBS})\b", re.IGNORECASE)
_CHANGE_WORD = re.compile(rf"\b(?:{_CHANGE_VERBS}|store|overwrite|new)\b", re.IGNORECASE)
# A file name as people write one: a name and a short extension.
_FILE_NAME = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.[A-Za-z0-9]{1,6})(?![\w/-])")


def _names_only_new_files(request: str, workspace: Sequence[WorkspaceEntry]) -> bool:
    """The request names a file that does not exist yet, and none that does (a request that
    names an existing one, "a summary of notes.txt in summary.md", needs it read first)."""
    existing = {entry.path for entry in workspace} | {entry.path.rsplit("/", 1)[-1] for entry in workspace}
    names = _FILE_NAME.findall(request)
    return bool(names) and not any(name in existing for name in names)


def explicit_step(request: str, steps: Sequence[str], workspace: Sequence[WorkspaceEntry] | None) -> str | None:
    """The step the request names in so many words, if it is on offer; else None."""
    named = [step for step in steps if "_" in step and re.search(rf"\b{re.escape(step)}\b", request)]
    if len(named) == 1:
        return named[0]
    candidates: list[tuple[bool, str]] = [
        (bool(_RUN.search(request) or _COMMAND.search(request)), "run_command"),
        (bool(_MAKE_FOLDER.search(request)), "make_dir"),
        (bool(_FIND.search(request)), "find_files"),
        (bool(_WRITE.search(request)) and workspace is not None and _names_only_new_files(request, workspace),
         "write_file"),
    ]
    return next((step for matched, step in candidates if matched and step in steps), None)


def asks_for_change(request: str) -> bool:
    """The request asks for something in the workspace to change ("add a line to todo.md"), so
    reading a file is a step on the way, not the whole job."""
    return _CHANGE.search(request) is not None


def file_names_in(request: str) -> list[str]:
    """The file names the request writes out ("hello.txt", "notes/today.md"), in order."""
    names: list[str] = []
    for name in _FILE_NAME.findall(request):
        if name not in names:
            names.append(name)
    return names


def names_given(request: str) -> list[str]:
    """The names the request gives a new entry: its file names, else what follows 'called' or
    'named' ("make a directory called backups")."""
    return file_names_in(request) or list(dict.fromkeys(_CALLED.findall(request)))


# Where a typed command stops: a conjunction, a purpose, or the end of the sentence.
_COMMAND_END = re.compile(r"\s+(?:and|then|to|so|for|in\s+order|please)\b|[,;!?]|\.(?=\s|$)|$", re.IGNORECASE)
_RUN_TEXT = re.compile(_POLITE + r"(?:run|execute)\s+(?:the\s+command\s+|the\s+)?[`'\"]?(.+)", re.IGNORECASE)
# Words that start a description, not a command ("run a quick check").
_NOT_PROGRAMS = frozenset(["a", "an", "the", "my", "some", "this", "that", "it", "all", "any", "every"])
_USE_COMMAND = re.compile(_POLITE + r"use\s+(?:the\s+)?[`'\"]?([\w.-]+)[`'\"]?\s+command\b", re.IGNORECASE)


def stated_commands(request: str, paths: Sequence[str] = ()) -> list[list[str]]:
    """The commands the request types out, as argv lists: "run wc -l notes.txt" gives
    ["wc", "-l", "notes.txt"]; "use the ls command on the project folder" gives ["ls"] and, with
    a workspace path it names, ["ls", "project"]. Empty where it types none."""
    found: list[list[str]] = []
    if (run := _RUN_TEXT.search(request)) is not None:
        text = run.group(1)
        end = _COMMAND_END.search(text)
        argv = [part.strip("`'\"") for part in text[: end.start() if end else len(text)].split()]
        if argv and all(argv) and argv[0].lower() not in _NOT_PROGRAMS:
            found.append(argv)
    if (use := _USE_COMMAND.search(request)) is not None:
        program = use.group(1)
        found.append([program])
        found += [[program, path] for path in paths if re.search(rf"(?<![\w./-]){re.escape(path)}(?![\w/-])", request)]
    unique: list[list[str]] = []
    for argv in found:
        if argv not in unique:
            unique.append(argv)
    return unique


def mentions_change(request: str) -> bool:
    """The request speaks of changing something anywhere in it ("I want a new file"), so a tool
    that creates or writes an entry may be offered; a greeting or a question never gets one."""
    return _CHANGE_WORD.search(request) is not None


_CONTENT_QUESTION = re.compile(
    r"\b(?:what|which|who|whom|whose|when|how\s+(?:many|much|long|often)|contents?|says?|said|lines?|"
    r"summari[sz]e|summary|items?|inside|read|open)\b",
    re.IGNORECASE,
)


def asks_about_content(request: str) -> bool:
    """The request asks about what files hold, not only where they are ("find the CSV file and
    tell me which product sold most", against "find all Python files")."""
    return _CONTENT_QUESTION.search(request) is not None
