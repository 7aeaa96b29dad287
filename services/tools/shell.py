"""Runs a checked CommandPlan: execve with no shell (inside the sandbox's command line), in its
own session and process group, with a minimal environment, stdin closed, output capped and a
timeout that kills the whole group (the sandbox dies with it: `--die-with-parent`, and its PID
namespace ends with its first process).

It must never start a shell, inherit the service's environment, or leave a process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.errors import DeadlineExceeded, FailedPrecondition
from services.tools.commands import CommandPlan

__all__ = ["CommandResult", "decode_output", "run_plan"]

_CHUNK = 64 * 1024
# How long to wait for the pipes to close after the group was killed (a process that left the
# group with setsid could hold them open).
_DRAIN_GRACE_SECONDS = 2.0
_EXIT_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    invalid_utf8: bool
    duration_ms: int

    @property
    def truncated(self) -> bool:
        return self.stdout_truncated or self.stderr_truncated


def _drop_partial_tail(data: bytes) -> bytes:
    """`data` without a UTF-8 sequence cut off at its end by the output cap."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for the lead byte
        if byte >= 0xC0:
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if needed > back:
                return data[:-back]
        break
    return data


def decode_output(data: bytes, cut: bool) -> tuple[str, bool]:
    """Output bytes as text, and whether bytes that are not UTF-8 were replaced (U+FFFD)."""
    if cut:
        data = _drop_partial_tail(data)
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), True


async def _drain(stream: asyncio.StreamReader | None, cap: int) -> tuple[bytes, bool]:
    """Reads `stream` to its end, keeping the first `cap` bytes; reports whether it cut any.

    The rest is read and dropped so that the program is never blocked on a full pipe.
    """
    kept = bytearray()
    cut = False
    if stream is None:
        return b"", False
    while chunk := await stream.read(_CHUNK):
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            cut = True
    return bytes(kept), cut


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _exit_code(process: asyncio.subprocess.Process) -> int:
    """Waits for the program itself to exit. `Process.wait()` would also wait for its pipes to
    close, which a child left running in the background can hold open; `returncode` is set as
    soon as the program exits, so it is polled instead."""
    while process.returncode is None:
        await asyncio.sleep(_EXIT_POLL_SECONDS)
    return process.returncode


async def _settle(process: asyncio.subprocess.Process, readers: asyncio.Future[Any]) -> None:
    """After the group was killed: lets the readers finish and the process be reaped. A process
    that escaped the group (setsid) could hold the pipes open; then they are closed here."""
    try:
        async with asyncio.timeout(_DRAIN_GRACE_SECONDS):
            await asyncio.gather(readers, process.wait(), return_exceptions=True)
    except TimeoutError:
        readers.cancel()
        transport = getattr(process, "_transport", None)  # asyncio offers no public close
        if transport is not None:
            transport.close()


async def run_plan(
    plan: CommandPlan,
    env: dict[str, str],
    timeout: float,
    max_output_bytes: int,
    *,
    prefix: Sequence[str] = (),
    pass_fds: Sequence[int] = (),
) -> CommandResult:
    """Runs `plan` (after `prefix`, the sandbox's command line, when given); raises
    DeadlineExceeded (after killing the process group) on timeout."""
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *prefix,
            plan.executable,
            *plan.argv[1:],
            # In the sandbox bwrap enters the working directory itself; outside it, nothing of
            # the host's folders is held as a working directory.
            cwd="/" if prefix else plan.cwd,
            pass_fds=pass_fds,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own session and process group: killpg reaches every child
            close_fds=True,
        )
    except OSError as exc:
        raise FailedPrecondition(
            f"could not start '{plan.argv[0]}': {exc.strerror or exc}", reason="COMMAND_NOT_STARTED"
        ) from None
    # With start_new_session the child is the leader: its process group id is its pid.
    pgid = process.pid
    readers = asyncio.gather(
        _drain(process.stdout, max_output_bytes), _drain(process.stderr, max_output_bytes)
    )
    exited = asyncio.ensure_future(_exit_code(process))
    try:
        async with asyncio.timeout(timeout):
            # Usually the pipes close as the program exits; a child left in the background keeps
            # them open, so the program's own exit is watched too.
            watched: set[asyncio.Future[Any]] = {readers, exited}
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            exit_code = exited.result() if exited.done() else await process.wait()
            # Children still in the group once the program is done are not allowed to linger
            # (and would hold the pipes open); what they already wrote is still read.
            _kill_group(pgid)
            (stdout, out_cut), (stderr, err_cut) = await readers
    except TimeoutError:
        _kill_group(pgid)
        await _settle(process, readers)
        raise DeadlineExceeded(
            f"'{plan.argv[0]}' ran past its {timeout:g}s timeout; its process group was killed",
            reason="COMMAND_TIMEOUT",
        ) from None
    except BaseException:
        # Cancelled (the caller went away, or the service stops): the group dies with the call.
        _kill_group(pgid)
        readers.cancel()
        raise
    finally:
        exited.cancel()
    await _settle(process, readers)
    out_text, out_bad = decode_output(stdout, out_cut)
    err_text, err_bad = decode_output(stderr, err_cut)
    return CommandResult(
        exit_code=exit_code,
        stdout=out_text,
        stderr=err_text,
        stdout_truncated=out_cut,
        stderr_truncated=err_cut,
        invalid_utf8=out_bad or err_bad,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
