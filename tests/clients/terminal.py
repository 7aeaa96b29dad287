"""A program run in a pseudo-terminal, driven like a person at the keyboard: wait for text to
appear, then type. Used to test `ducklm chat`'s interactive approval prompt for real."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import termios
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Terminal"]


class Terminal:
    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self._master = master
        self._seen = ""
        self._position = 0
        self._more = asyncio.Event()
        asyncio.get_running_loop().add_reader(master, self._read)

    @classmethod
    async def spawn(cls, argv: list[str], *, env: Mapping[str, str], cwd: Path) -> Terminal:
        master, slave = pty.openpty()
        # No echo: the transcript then holds only what the program wrote.
        attributes = termios.tcgetattr(slave)
        attributes[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
        process = await asyncio.create_subprocess_exec(
            *argv,
            env={**env, "TERM": "dumb"},
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        return cls(process, master)

    def _read(self) -> None:
        try:
            chunk = os.read(self._master, 65536)
        except OSError:  # the program closed the terminal
            chunk = b""
        if not chunk:
            asyncio.get_running_loop().remove_reader(self._master)
        self._seen += chunk.decode(errors="replace").replace("\r\n", "\n")
        self._more.set()

    @property
    def transcript(self) -> str:
        return self._seen

    async def expect(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Waits until `pattern` (a regex) appears after what earlier expects consumed."""
        compiled = re.compile(pattern)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            match = compiled.search(self._seen, self._position)
            if match:
                self._position = match.end()
                return match
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or self.process.returncode is not None and not self._more.is_set():
                raise AssertionError(f"never saw {pattern!r}; the terminal shows:\n{self._seen}")
            self._more.clear()
            try:
                await asyncio.wait_for(self._more.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass

    def type(self, text: str) -> None:
        os.write(self._master, text.encode())

    async def wait(self, timeout: float = 30.0) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        finally:
            self.close()

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._master)
        if self.process.returncode is None:
            self.process.kill()
        try:
            os.close(self._master)
        except OSError:
            pass
