"""The workspace: the one folder the tools may touch, and the walk that keeps every path in it.

A path is resolved one component at a time from an open descriptor of the root, the way
openat2(RESOLVE_BENEATH) does: each directory is opened with O_NOFOLLOW relative to the one
before, `..` pops back to the previous real directory (never above the root), and a symbolic link
is never followed by the kernel: its target is read and walked by the same rules, so a link may
point anywhere inside the workspace but a link that leads out is refused. Because every step
opens relative to a descriptor with O_NOFOLLOW, swapping a directory for a link mid-walk makes
the open fail instead of escaping.

This module must never open, create or follow anything outside the root, and never block on a
FIFO or a device. All of it is blocking file-system work: callers run it in a thread.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.common.errors import (
    AlreadyExists,
    DuckLMError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)

__all__ = ["Located", "Workspace", "os_error", "safe_name", "show"]

# Like the kernel's MAXSYMLINKS: more links than this in one path is a loop.
_MAX_LINKS = 40
_MAX_PATH_CHARS = 4096
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def show(text: str) -> str:
    """`text` safe for a message: bytes that are not UTF-8 appear as `\\xNN` escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def safe_name(name: str) -> tuple[str, bool]:
    """A file name as valid UTF-8 text, and whether it already was (if not: bytes replaced)."""
    raw = name.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), False


def os_error(exc: OSError, path: str) -> DuckLMError:
    """The DuckLM error for an OS error met while working on `path`."""
    where = f"'{show(path)}'"
    code = exc.errno
    if code == errno.ENOENT:
        return NotFound(f"{where} does not exist")
    if code == errno.ENOTDIR:
        return FailedPrecondition(f"{where}: a component is not a directory", reason="NOT_A_DIRECTORY")
    if code == errno.EISDIR:
        return FailedPrecondition(f"{where} is a directory", reason="NOT_A_FILE")
    if code == errno.ELOOP:
        return _changed(path)
    if code == errno.EEXIST:
        return AlreadyExists(f"{where} already exists")
    if code == errno.ENAMETOOLONG:
        return InvalidArgument(f"{where}: a name is too long")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(f"{where}: the operating system refused access", reason="OS_DENIED")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return ResourceExhausted(f"{where}: no space left")
    return FailedPrecondition(f"{where}: {exc.strerror or 'operating system error'}", reason="OS_ERROR")


def _changed(path: str) -> PermissionDenied:
    return PermissionDenied(
        f"'{show(path)}' changed while it was being resolved (a link swapped in or out); "
        "nothing was opened through it",
        reason="PATH_CHANGED",
    )


def _outside(path: str, detail: str = "") -> PermissionDenied:
    suffix = f" ({detail})" if detail else ""
    return PermissionDenied(
        f"'{show(path)}' is outside the workspace{suffix}; paths are relative to the workspace root",
        reason="OUTSIDE_WORKSPACE",
    )


@dataclass
class Located:
    """Where a path led: the open real directory holding the final entry, and that entry.

    `name` is "" when the path names the directory `dir_fd` itself (the root, or `a/..`).
    `parts` are the real components from the root to the entry; `stat` is the entry's lstat,
    None when it does not exist.
    """

    dir_fd: int
    name: str
    parts: tuple[str, ...]
    stat: os.stat_result | None

    @property
    def relative(self) -> str:
        """The real path of the entry relative to the root ("." for the root)."""
        return show("/".join(self.parts)) or "."


class Workspace:
    """The workspace root and confined resolution of paths inside it."""

    def __init__(self, root: Path) -> None:
        self.configured_root = Path(os.path.abspath(root))
        self.root = root.resolve()

    def ensure(self) -> None:
        """Creates the root folder if it is missing."""
        self.root.mkdir(parents=True, exist_ok=True)

    def real_path(self, parts: Sequence[str]) -> str:
        """The absolute path of real components `parts` under the root."""
        return os.path.join(str(self.root), *parts) if parts else str(self.root)

    def relative_parts(self, path: str) -> list[str]:
        """The components of an argument path relative to the root, `..` kept, `.` dropped.

        Absolute paths are accepted only when they lie lexically under the root.
        Raises InvalidArgument for malformed text and PermissionDenied for outside paths.
        """
        if "\x00" in path:
            raise InvalidArgument("paths must not contain NUL characters")
        if len(path) > _MAX_PATH_CHARS:
            raise InvalidArgument(f"paths must be at most {_MAX_PATH_CHARS} characters")
        if path.startswith("/"):
            for root in (str(self.root), str(self.configured_root)):
                if path == root or path.startswith(root.rstrip("/") + "/"):
                    return _split(path[len(root) :])
            raise _outside(path, "absolute path")
        return _split(path)

    def lexical_parts(self, path: str, base: Sequence[str] = ()) -> list[str]:
        """The path's components after resolving `..` by text alone, relative to the root.

        Raises PermissionDenied when `..` climbs above the root.
        """
        stack = [] if path.startswith("/") else list(base)
        for part in self.relative_parts(path):
            if part == "..":
                if not stack:
                    raise _outside(path, "'..' climbs above the root")
                stack.pop()
            else:
                stack.append(part)
        return stack

    @contextmanager
    def locate(
        self,
        path: str,
        *,
        follow_final: bool,
        base: Sequence[str] = (),
        create_dirs: Callable[[Sequence[str]], None] | None = None,
    ) -> Iterator[Located]:
        """Resolves `path` (relative to the real directory `base` under the root) inside the root.

        Links in the middle are always resolved (and refused if they lead out); the final
        component is resolved only with `follow_final`. With `create_dirs`, missing directories
        on the way are created after `create_dirs(parts)` accepts them (it raises to refuse).
        The yielded `dir_fd` is closed when the block ends.
        """
        relative = self.relative_parts(path)
        pending: deque[str] = deque(relative if path.startswith("/") else [*base, *relative])
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds = [root_fd]
        names: list[str] = []
        links = 0
        try:
            located: Located | None = None
            while pending:
                part = pending.popleft()
                if part == "..":
                    if not names:
                        raise _outside(path, "'..' climbs above the root")
                    names.pop()
                    os.close(fds.pop())
                    continue
                last = not pending
                try:
                    entry = os.stat(part, dir_fd=fds[-1], follow_symlinks=False)
                except FileNotFoundError:
                    if last:
                        located = Located(fds[-1], part, (*names, part), None)
                        break
                    if create_dirs is None:
                        raise NotFound(
                            f"'{show(path)}': directory '{show('/'.join((*names, part)))}' does not exist"
                        ) from None
                    create_dirs((*names, part))
                    try:
                        os.mkdir(part, 0o755, dir_fd=fds[-1])
                    except FileExistsError:
                        pass  # made by someone else meanwhile; the open below checks what it is
                    entry = os.stat(part, dir_fd=fds[-1], follow_symlinks=False)
                if stat.S_ISLNK(entry.st_mode) and (follow_final or not last):
                    links += 1
                    if links > _MAX_LINKS:
                        raise InvalidArgument(f"'{show(path)}': too many symbolic links (a loop?)")
                    try:
                        target = os.readlink(part, dir_fd=fds[-1])
                    except OSError as exc:
                        if exc.errno != errno.EINVAL:
                            raise
                        raise _changed(path) from None  # no longer a link since the lstat
                    if target.startswith("/"):
                        inside = self._inside_root(target)
                        if inside is None:
                            link = show("/".join((*names, part)))
                            raise _outside(path, f"symbolic link '{link}' points to '{show(target)}'")
                        while len(fds) > 1:
                            os.close(fds.pop())
                        names.clear()
                        pending.extendleft(reversed(inside))
                    else:
                        pending.extendleft(reversed(_split(target)))
                    continue
                if last:
                    located = Located(fds[-1], part, (*names, part), entry)
                    break
                if not stat.S_ISDIR(entry.st_mode):
                    raise FailedPrecondition(
                        f"'{show(path)}': '{show('/'.join((*names, part)))}' is not a directory",
                        reason="NOT_A_DIRECTORY",
                    )
                fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
                names.append(part)
            if located is None:
                located = Located(fds[-1], "", tuple(names), os.fstat(fds[-1]))
            yield located
        except OSError as exc:
            raise os_error(exc, path) from None
        finally:
            for fd in fds:
                os.close(fd)

    def _inside_root(self, target: str) -> list[str] | None:
        """The components under the root of an absolute link target, or None if it is outside."""
        for root in (str(self.root), str(self.configured_root)):
            if target == root or target.startswith(root.rstrip("/") + "/"):
                return _split(target[len(root) :])
        return None


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]
