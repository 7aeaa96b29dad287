"""The file tools: read, write (atomic), list, stat, make a directory, find by glob.

Every path goes through `Workspace.locate`, so nothing here can reach outside the root. Beyond
confinement these tools refuse: device files, FIFOs and sockets; files with more than one hard
link (another name of the same file may live outside the workspace); files over the size cap;
writing through a symbolic link; writing under a protected path (config `protected_paths`).
A write goes to a temporary file in the same directory, is flushed to disk, then renamed over
the target, so a reader sees the old file or the new one, never half of one.

All of it is blocking file-system work: callers run it in a thread.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.tools.globs import matches, split_pattern
from services.tools.workspace import Located, Workspace, safe_name, show

__all__ = ["FileLimits", "FileTools", "decode_text"]

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class FileLimits:
    max_file_bytes: int
    max_read_bytes: int
    max_list_entries: int
    max_find_scanned: int


def decode_text(data: bytes) -> tuple[str, bool]:
    """`data` as text, and whether bytes that are not UTF-8 were replaced (U+FFFD)."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), True


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special"


def _symlink_refusal(path: str) -> PermissionDenied:
    return PermissionDenied(
        f"'{show(path)}' is a symbolic link; file tools never write through links "
        "(write to the file it names instead)",
        reason="SYMLINK",
    )


def _check_plain_file(path: str, entry: os.stat_result, limit: int) -> None:
    """Refuses what a file tool must not touch: special files, hard links, oversized files."""
    if stat.S_ISDIR(entry.st_mode):
        raise FailedPrecondition(f"'{show(path)}' is a directory; use list_dir", reason="NOT_A_FILE")
    if not stat.S_ISREG(entry.st_mode):
        raise PermissionDenied(
            f"'{show(path)}' is a device, FIFO or socket; only regular files are read or written",
            reason="SPECIAL_FILE",
        )
    if entry.st_nlink > 1:
        raise PermissionDenied(
            f"'{show(path)}' has {entry.st_nlink} hard links; another name of it may be outside the "
            "workspace, so it is refused",
            reason="HARD_LINK",
        )
    if entry.st_size > limit:
        raise PermissionDenied(
            f"'{show(path)}' is {entry.st_size} bytes, over the {limit}-byte cap", reason="FILE_TOO_LARGE"
        )


class FileTools:
    """The file tools over one workspace."""

    def __init__(self, workspace: Workspace, limits: FileLimits, protected_paths: Sequence[str]) -> None:
        self.workspace = workspace
        self.limits = limits
        self._protected = [split_pattern(pattern) for pattern in protected_paths]

    def is_protected(self, parts: Sequence[str]) -> bool:
        return any(matches(pattern, parts) for pattern in self._protected)

    def check_writable(self, path: str) -> None:
        """Refuses, before any approval is asked, a write path that leads outside, is protected,
        or names something a write must not replace (a link, a special or hard-linked file)."""
        self._refuse_protected(path, self.workspace.lexical_parts(path))
        try:
            with self.workspace.locate(path, follow_final=False) as where:
                self._refuse_protected(path, where.parts)
                entry = where.stat
        except NotFound:
            return  # missing folders are created by the write itself
        if entry is None or stat.S_ISDIR(entry.st_mode):
            return
        if stat.S_ISLNK(entry.st_mode):
            raise _symlink_refusal(path)
        _check_plain_file(path, entry, self.limits.max_file_bytes)

    def _refuse_protected(self, path: str, parts: Sequence[str]) -> None:
        if self.is_protected(parts):
            raise PermissionDenied(
                f"'{show(path)}' is a protected path (config protected_paths); file tools never write there",
                reason="PROTECTED_PATH",
            )

    def read_file(self, path: str, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
        """Lines [offset, offset + limit) of a text file, cut at the read cap."""
        with self.workspace.locate(path, follow_final=True) as where:
            if where.stat is None:
                raise NotFound(f"'{show(path)}' does not exist")
            if not where.name:
                raise FailedPrecondition(f"'{show(path)}' is a directory; use list_dir", reason="NOT_A_FILE")
            _check_plain_file(path, where.stat, self.limits.max_file_bytes)
            fd = os.open(where.name, _READ_FLAGS, dir_fd=where.dir_fd)
            try:
                # Checked again on the open file: the entry may have been swapped since the lstat.
                _check_plain_file(path, os.fstat(fd), self.limits.max_file_bytes)
                data = _read_at_most(fd, self.limits.max_file_bytes + 1)
            finally:
                os.close(fd)
            relative = where.relative
        if len(data) > self.limits.max_file_bytes:
            raise PermissionDenied(
                f"'{show(path)}' grew over the {self.limits.max_file_bytes}-byte cap", reason="FILE_TOO_LARGE"
            )
        text, replaced = decode_text(data)
        lines = text.splitlines(keepends=True)
        end = len(lines) if limit is None else offset + limit
        chosen = lines[offset:end]
        content = "".join(chosen)
        returned = len(chosen)
        cut = False
        encoded = content.encode("utf-8")
        if len(encoded) > self.limits.max_read_bytes:
            # Keep whole lines where there is at least one; the caller continues at next_offset.
            content = encoded[: self.limits.max_read_bytes].decode("utf-8", "ignore")
            if "\n" in content:
                content = content[: content.rindex("\n") + 1]
            returned = content.count("\n") or 1
            cut = True
        more = offset + returned < len(lines)
        result: dict[str, Any] = {
            "path": relative,
            "content": content,
            "offset": offset,
            "lines_returned": returned if chosen else 0,
            "total_lines": len(lines),
            "size": len(data),
            "truncated": more or cut,
            "invalid_utf8": replaced,
        }
        if more:
            result["next_offset"] = offset + returned
        return result

    def check_content(self, content: str) -> bytes:
        """The bytes to write, or the refusal if they are over the size cap."""
        data = content.encode("utf-8")
        if len(data) > self.limits.max_file_bytes:
            raise PermissionDenied(
                f"content is {len(data)} bytes, over the {self.limits.max_file_bytes}-byte cap",
                reason="FILE_TOO_LARGE",
            )
        return data

    def write_file(self, path: str, content: str) -> dict[str, Any]:
        """Replaces (or creates) a file with `content`, atomically; creates missing parents."""
        data = self.check_content(content)
        self._refuse_protected(path, self.workspace.lexical_parts(path))
        with self.workspace.locate(
            path, follow_final=False, create_dirs=lambda parts: self._refuse_protected(path, parts)
        ) as where:
            self._refuse_protected(path, where.parts)
            if not where.name:
                raise FailedPrecondition(f"'{show(path)}' is a directory", reason="NOT_A_FILE")
            mode = 0o644
            if where.stat is not None:
                if stat.S_ISLNK(where.stat.st_mode):
                    raise _symlink_refusal(path)
                _check_plain_file(path, where.stat, self.limits.max_file_bytes)
                mode = stat.S_IMODE(where.stat.st_mode) & 0o777
            _replace_atomically(where, data, mode)
            return {"path": where.relative, "bytes_written": len(data), "created": where.stat is None}

    def make_dir(self, path: str) -> dict[str, Any]:
        """Creates a directory and any missing parents; fine if it already exists."""
        self._refuse_protected(path, self.workspace.lexical_parts(path))
        with self.workspace.locate(
            path, follow_final=True, create_dirs=lambda parts: self._refuse_protected(path, parts)
        ) as where:
            self._refuse_protected(path, where.parts)
            if where.stat is not None:
                if stat.S_ISDIR(where.stat.st_mode):
                    return {"path": where.relative, "created": False}
                raise AlreadyExists(f"'{show(path)}' exists and is not a directory")
            os.mkdir(where.name, 0o755, dir_fd=where.dir_fd)
            return {"path": where.relative, "created": True}

    def stat_path(self, path: str) -> dict[str, Any]:
        """What an entry is (a final symbolic link is described, not followed)."""
        with self.workspace.locate(path, follow_final=False) as where:
            if where.stat is None:
                raise NotFound(f"'{show(path)}' does not exist")
            entry = where.stat
            return {
                "path": where.relative,
                "type": _kind(entry.st_mode),
                "size": entry.st_size,
                "mode": f"{stat.S_IMODE(entry.st_mode):04o}",
                "modified": datetime.fromtimestamp(entry.st_mtime, UTC).isoformat(),
                "hard_links": entry.st_nlink,
            }

    def list_dir(self, path: str = ".") -> dict[str, Any]:
        """The entries of a directory, sorted by name; links are described, not followed."""
        with self.workspace.locate(path or ".", follow_final=True) as where:
            fd = self._open_dir(path, where)
            try:
                names = sorted(os.listdir(fd))
                entries = []
                for name in names[: self.limits.max_list_entries]:
                    entries.append(_describe(name, fd))
            finally:
                os.close(fd)
            return {
                "path": where.relative,
                "entries": entries,
                "total": len(names),
                "truncated": len(names) > self.limits.max_list_entries,
            }

    def find_files(self, pattern: str, path: str = ".") -> dict[str, Any]:
        """Entries under `path` whose path relative to it matches the glob `pattern`."""
        if "\x00" in pattern:
            raise InvalidArgument("patterns must not contain NUL characters")
        if pattern.startswith("/"):
            raise PermissionDenied(
                "glob patterns are relative to the search folder, not absolute", reason="OUTSIDE_WORKSPACE"
            )
        segments = split_pattern(pattern)
        if ".." in segments:
            raise PermissionDenied("glob patterns must not contain '..'", reason="OUTSIDE_WORKSPACE")
        if not segments:
            raise InvalidArgument("the glob pattern is empty")
        with self.workspace.locate(path or ".", follow_final=True) as where:
            top = self._open_dir(path, where)
            found, truncated = self._walk(top, segments)
            return {"path": where.relative, "pattern": pattern, "matches": found, "truncated": truncated}

    def _walk(self, top: int, segments: list[str]) -> tuple[list[str], bool]:
        """Depth-first walk from the open directory `top` (closed here); links never entered."""
        found: list[str] = []
        scanned = 0
        stack: list[tuple[int, tuple[str, ...]]] = [(top, ())]
        try:
            while stack:
                fd, prefix = stack.pop()
                try:
                    with os.scandir(fd) as listing:
                        entries = sorted(listing, key=lambda e: e.name, reverse=True)
                    subdirs = []
                    for entry in entries:
                        scanned += 1
                        if scanned > self.limits.max_find_scanned:
                            return sorted(found), True
                        parts = (*prefix, entry.name)
                        if matches(segments, parts):
                            found.append(safe_name("/".join(parts))[0])
                            if len(found) >= self.limits.max_list_entries:
                                return sorted(found), True
                        if entry.is_dir(follow_symlinks=False):
                            subdirs.append(entry.name)
                    for name in subdirs:
                        try:
                            child = os.open(
                                name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                            )
                        except OSError:
                            continue  # vanished or swapped for a link since the scan: skip it
                        stack.append((child, (*prefix, name)))
                finally:
                    os.close(fd)
        finally:
            for fd, _ in stack:
                os.close(fd)
        return sorted(found), False

    def _open_dir(self, path: str, where: Located) -> int:
        """A new descriptor of the directory `where` names; refuses anything else."""
        if not where.name:
            return os.dup(where.dir_fd)
        if where.stat is None:
            raise NotFound(f"'{show(path)}' does not exist")
        if not stat.S_ISDIR(where.stat.st_mode):
            raise FailedPrecondition(f"'{show(path)}' is not a directory", reason="NOT_A_DIRECTORY")
        return os.open(
            where.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=where.dir_fd
        )


def _describe(name: str, dir_fd: int) -> dict[str, Any]:
    text, is_utf8 = safe_name(name)
    entry: dict[str, Any] = {"name": text}
    if not is_utf8:
        entry["name_not_utf8"] = True
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        entry["type"] = "missing"
        return entry
    entry["type"] = _kind(info.st_mode)
    if stat.S_ISREG(info.st_mode):
        entry["size"] = info.st_size
    return entry


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _replace_atomically(where: Located, data: bytes, mode: int) -> None:
    """Writes `data` to a fresh temporary file beside the target, syncs it, renames it over."""
    temp = f".{where.name[:180]}.{secrets.token_hex(6)}.ducklm-tmp"
    fd = os.open(temp, _CREATE_FLAGS, 0o600, dir_fd=where.dir_fd)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, where.name, src_dir_fd=where.dir_fd, dst_dir_fd=where.dir_fd)
    except BaseException:
        try:
            os.unlink(temp, dir_fd=where.dir_fd)
        except OSError:
            pass
        raise
    os.fsync(where.dir_fd)
