"""The workspace's paths as the staged decision offers them for a path argument, built from the
tools service's recursive listing. Plain values only; never reads the file system itself."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkspaceEntry", "workspace_entries"]


@dataclass(frozen=True)
class WorkspaceEntry:
    """One workspace path, as the staged decision offers it for a path argument."""

    path: str
    is_dir: bool


def workspace_entries(matches: list[str]) -> list[WorkspaceEntry]:
    """Entries from a recursive listing of paths: a path is a folder when another lies inside it."""
    folders = {match.rsplit("/", 1)[0] for match in matches if "/" in match}
    for folder in list(folders):
        parts = folder.split("/")
        folders.update("/".join(parts[:index]) for index in range(1, len(parts)))
    return [WorkspaceEntry(path=match, is_dir=match in folders) for match in sorted(set(matches) | folders)]
