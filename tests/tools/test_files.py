"""The file tools at the domain level: atomic writes, reading in pieces, listing and finding, and
symlink races (a folder or file swapped for a link while a tool walks the path)."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path

import pytest

from services.common.errors import DuckLMError, PermissionDenied, ResourceExhausted
from services.tools.files import FileLimits, FileTools
from services.tools.workspace import Workspace

from .support import SECRET

LIMITS = FileLimits(max_file_bytes=1 << 20, max_read_bytes=4096, max_list_entries=5, max_find_scanned=1000)


@pytest.fixture
def tools(tmp_path: Path) -> FileTools:
    workspace = Workspace(tmp_path / "ws")
    workspace.ensure()
    return FileTools(workspace, LIMITS, ["**/.git/**"])


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "inner.txt").write_text(SECRET)
    return folder


def leftovers(root: Path) -> list[str]:
    return [name for name in os.listdir(root) if name.endswith(".ducklm-tmp")]


def test_write_creates_parents_and_replaces_atomically(tools: FileTools) -> None:
    root = tools.workspace.root
    assert tools.write_file("a/b/c.txt", "one") == {"path": "a/b/c.txt", "bytes_written": 3, "created": True}
    os.chmod(root / "a/b/c.txt", 0o640)
    assert tools.write_file("a/b/c.txt", "two!")["created"] is False
    assert (root / "a/b/c.txt").read_text() == "two!"
    assert (root / "a/b/c.txt").stat().st_mode & 0o777 == 0o640  # the mode is kept
    assert leftovers(root / "a/b") == []


def test_failed_write_leaves_the_old_file_and_no_temp(
    tools: FileTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tools.workspace.root
    tools.write_file("keep.txt", "old content")
    real_write = os.write

    def half_then_full_disk(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full_disk)
    with pytest.raises(ResourceExhausted):
        tools.write_file("keep.txt", "new content that never fully lands")
    monkeypatch.undo()
    assert (root / "keep.txt").read_text() == "old content"
    assert leftovers(root) == []


def test_readers_never_see_half_a_write(tools: FileTools) -> None:
    root = tools.workspace.root
    size = 200_000
    tools.write_file("big.txt", "A" * size)
    seen: set[str] = set()
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            data = (root / "big.txt").read_text()
            seen.add("ok" if data in ("A" * size, "B" * size) else f"torn:{len(data)}")

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for index in range(40):
            tools.write_file("big.txt", ("B" if index % 2 == 0 else "A") * size)
    finally:
        stop.set()
        reader.join()
    assert seen == {"ok"}


def test_read_in_pieces(tools: FileTools) -> None:
    tools.write_file("lines.txt", "".join(f"{i}\n" for i in range(10)))
    first = tools.read_file("lines.txt", 0, 4)
    assert (first["content"], first["next_offset"], first["truncated"]) == ("0\n1\n2\n3\n", 4, True)
    last = tools.read_file("lines.txt", 8, 4)
    assert (last["content"], last["truncated"], "next_offset" in last) == ("8\n9\n", False, False)
    assert tools.read_file("lines.txt", 50)["content"] == ""


def test_read_cap_keeps_whole_lines(tools: FileTools) -> None:
    tools.write_file("wide.txt", "".join(f"{i:09d}\n" for i in range(1000)))  # 10 bytes a line
    part = tools.read_file("wide.txt")
    assert part["truncated"] is True and len(part["content"]) <= 4096 and part["content"].endswith("\n")
    rest = tools.read_file("wide.txt", part["next_offset"], 1)
    assert rest["content"] == f"{part['next_offset']:09d}\n"


def test_list_and_find_are_capped_and_sorted(tools: FileTools) -> None:
    for index in range(8):
        tools.write_file(f"src/f{index}.py", "")
    tools.write_file("src/deep/x/y.py", "")
    tools.write_file("README.md", "")
    listing = tools.list_dir("src")
    assert [entry["name"] for entry in listing["entries"]] == ["deep", "f0.py", "f1.py", "f2.py", "f3.py"]
    assert (listing["total"], listing["truncated"]) == (9, True)
    assert tools.find_files("**/y.py") == {
        "path": ".",
        "pattern": "**/y.py",
        "matches": ["src/deep/x/y.py"],
        "truncated": False,
    }
    assert tools.find_files("*.md")["matches"] == ["README.md"]
    capped = tools.find_files("**/*.py")
    assert capped["truncated"] is True and len(capped["matches"]) == 5
    assert tools.find_files("x/*", "src/deep")["matches"] == ["x/y.py"]


def test_make_dir_and_stat(tools: FileTools) -> None:
    assert tools.make_dir("a/b/c") == {"path": "a/b/c", "created": True}
    assert tools.make_dir("a/b/c") == {"path": "a/b/c", "created": False}
    described = tools.stat_path("a/b")
    assert (described["type"], described["mode"], described["hard_links"]) == ("directory", "0755", 3)


def _race(
    flip: Callable[[], None], attempt: Callable[[], str], seconds: float = 0.6,
    wanted: Collection[str] = (), most_seconds: float = 20.0,
) -> list[str]:
    """Runs `attempt` for a while as another thread keeps calling `flip`; returns what it saw.
    It goes on past `seconds` (up to `most_seconds`) until every outcome in `wanted` was seen,
    so a loaded machine that schedules the threads unevenly still exercises both states."""
    stop = threading.Event()

    def flipper() -> None:
        while not stop.is_set():
            flip()

    thread = threading.Thread(target=flipper)
    thread.start()
    outcomes: list[str] = []
    deadline = time.monotonic() + seconds
    try:
        last = time.monotonic() + most_seconds
        while time.monotonic() < deadline or (not set(wanted) <= set(outcomes) and time.monotonic() < last):
            outcomes.append(attempt())
    finally:
        stop.set()
        thread.join()
    return outcomes


def _outcome(call: Callable[[], dict[str, object]]) -> str:
    try:
        result = call()
    except DuckLMError as exc:
        return f"{type(exc).__name__}:{exc.reason}"
    return str(result.get("content", "ok"))


def _retargeting_link(root: Path, secret_dir: Path) -> Callable[[], None]:
    """A flip that atomically points the link "d" at "real" (inside) or at the secret folder."""
    state = {"out": False}

    def flip() -> None:
        state["out"] = not state["out"]
        os.symlink(secret_dir if state["out"] else "real", root / "d.new")
        os.replace(root / "d.new", root / "d")

    return flip


def test_race_link_retargeted_between_inside_and_outside(tools: FileTools, secret_dir: Path) -> None:
    root = tools.workspace.root
    (root / "real").mkdir()
    (root / "real/inner.txt").write_text("inside")
    os.symlink("real", root / "d")
    seen = _race(
        _retargeting_link(root, secret_dir), lambda: _outcome(lambda: tools.read_file("d/inner.txt")),
        wanted=("inside", "PermissionDenied:OUTSIDE_WORKSPACE"),
    )
    assert SECRET not in seen
    assert set(seen) == {"inside", "PermissionDenied:OUTSIDE_WORKSPACE"}, set(seen)


def test_race_folder_swapped_for_link_out(tools: FileTools, secret_dir: Path) -> None:
    root = tools.workspace.root
    (root / "d").mkdir()
    (root / "d/inner.txt").write_text("inside")
    state = {"out": False}

    def flip() -> None:
        if state["out"]:
            os.unlink(root / "d")
            os.rename(root / "d.away", root / "d")
        else:
            os.rename(root / "d", root / "d.away")
            os.symlink(secret_dir, root / "d")
        state["out"] = not state["out"]

    both = ("inside", "PermissionDenied:OUTSIDE_WORKSPACE")
    seen = _race(flip, lambda: _outcome(lambda: tools.read_file("d/inner.txt")), wanted=both)
    assert SECRET not in seen
    assert "inside" in seen and "PermissionDenied:OUTSIDE_WORKSPACE" in seen
    # NOT_A_DIRECTORY: the walk met the link where a folder stood and refused to follow it.
    allowed = {
        "inside", "PermissionDenied:OUTSIDE_WORKSPACE", "PermissionDenied:PATH_CHANGED", "NotFound:",
        "FailedPrecondition:NOT_A_DIRECTORY",
    }
    assert set(seen) <= allowed, set(seen)


def test_race_file_swapped_for_link_out(tools: FileTools, secret_dir: Path) -> None:
    root = tools.workspace.root
    (root / "f.txt").write_text("inside")
    state = {"out": False}

    def flip() -> None:
        state["out"] = not state["out"]
        if state["out"]:
            os.symlink(secret_dir / "inner.txt", root / "f.tmp")
        else:
            (root / "f.tmp").write_text("inside")
        os.replace(root / "f.tmp", root / "f.txt")

    seen = _race(flip, lambda: _outcome(lambda: tools.read_file("f.txt")),
                 wanted=("inside", "PermissionDenied:OUTSIDE_WORKSPACE"))
    assert SECRET not in seen
    assert "inside" in seen and "PermissionDenied:OUTSIDE_WORKSPACE" in seen
    assert set(seen) <= {"inside", "PermissionDenied:OUTSIDE_WORKSPACE", "PermissionDenied:PATH_CHANGED"}, (
        set(seen)
    )


def test_race_write_never_lands_outside(tools: FileTools, secret_dir: Path) -> None:
    root = tools.workspace.root
    (root / "real").mkdir()
    os.symlink("real", root / "d")
    seen = _race(
        _retargeting_link(root, secret_dir), lambda: _outcome(lambda: tools.write_file("d/new.txt", "x")),
        wanted=("ok", "PermissionDenied:OUTSIDE_WORKSPACE"),
    )
    assert sorted(os.listdir(secret_dir)) == ["inner.txt"]
    assert (secret_dir / "inner.txt").read_text() == SECRET
    assert set(seen) == {"ok", "PermissionDenied:OUTSIDE_WORKSPACE"}, set(seen)
    assert (root / "real/new.txt").read_text() == "x"


def test_hard_link_refusal_is_documented_in_the_error(tools: FileTools, secret_dir: Path) -> None:
    os.link(secret_dir / "inner.txt", tools.workspace.root / "h.txt")
    with pytest.raises(PermissionDenied) as refused:
        tools.read_file("h.txt")
    assert refused.value.reason == "HARD_LINK" and "outside the workspace" in refused.value.message
