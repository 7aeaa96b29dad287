"""Task and approval ids as people type them: the full id, or any unique start of it (as `git`
takes a short hash). An unknown or ambiguous prefix is an error that says which ids it matched."""

from __future__ import annotations

from collections.abc import Iterable

from ducklm_client.errors import NotFoundError
from ducklm_client.sync import Client

__all__ = ["IdError", "resolve_approval", "resolve_task"]

FULL_ID_CHARS = 32  # DuckLM's ids are uuid4 hex
SEARCHED = 2000  # the newest tasks / approvals a prefix is looked up in


class IdError(NotFoundError):
    """A prefix that names no id, or more than one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="NOT_FOUND")


def _pick(kind: str, given: str, ids: Iterable[str]) -> str:
    matches = sorted({found for found in ids if found.startswith(given)})
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise IdError(f"no {kind} id starts with {given!r}")
    shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
    raise IdError(f"{given!r} matches {len(matches)} {kind} ids ({shown}); type more of it")


def resolve_task(client: Client, given: str, *, known_only: bool = True) -> str:
    """The task id `given` starts. With `known_only` false (a memory scope may name a task the
    runtime never had), a prefix that names no task is kept as it is."""
    given = given.strip()
    if not given or len(given) >= FULL_ID_CHARS:
        return given
    ids = [task.id for task in client.list_tasks(limit=SEARCHED)]
    if not known_only and not any(found.startswith(given) for found in ids):
        return given
    return _pick("task", given, ids)


def resolve_approval(client: Client, given: str) -> str:
    given = given.strip()
    if not given or len(given) >= FULL_ID_CHARS:
        return given
    return _pick("approval", given, (a.id for a in client.list_approvals(state=None, limit=SEARCHED)))
