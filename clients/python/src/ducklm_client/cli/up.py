"""`ducklm up`: the same as `make run` — build llama-server and fetch the model if this machine
has not yet (showing progress: the build takes minutes), then start the whole stack with
`python -m deploy.stack` from the DuckLM checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

__all__ = ["Progress", "find_checkout", "prepare", "run_setup_script", "up"]

# cmake's build lines start with a percentage: "[ 45%] Building CXX object ...".
_PERCENT = re.compile(r"^\[\s*(\d{1,3})%\]")


def find_checkout(start: Path | None = None) -> Path:
    """The DuckLM repository: $DUCKLM_HOME, the current folder or a parent of it, or the checkout
    this package was installed from (editable)."""
    candidates: list[Path] = []
    if os.environ.get("DUCKLM_HOME"):
        candidates.append(Path(os.environ["DUCKLM_HOME"]))
    here = (start or Path.cwd()).resolve()
    candidates.extend([here, *here.parents])
    candidates.extend(Path(__file__).resolve().parents)
    for candidate in candidates:
        if (candidate / "deploy" / "stack.py").is_file() and (candidate / "scripts").is_dir():
            return candidate
    raise FileNotFoundError("cannot find the DuckLM checkout: run `ducklm up` inside it, or set DUCKLM_HOME")


class Progress:
    """Shows a long step on one line: on a terminal it is redrawn in place (stage, percentage,
    elapsed time); elsewhere each stage and every tenth percent is printed once."""

    def __init__(self, title: str, out: TextIO) -> None:
        self.title = title
        self.out = out
        self.tty = out.isatty()
        self.started = time.monotonic()
        self.stage = "starting"
        self.percent: int | None = None
        self._last_reported = -10

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}m{seconds % 60:02d}s"

    def line(self, text: str) -> None:
        """Takes one line of the script's stderr."""
        text = text.rstrip()
        if text.startswith(">> "):
            self.stage = text[3:]
            self.percent = None
            self._draw(force=True)
            return
        match = _PERCENT.match(text)
        if match:
            self.percent = int(match.group(1))
            self._draw(force=False)

    def _draw(self, *, force: bool) -> None:
        percent = f" {self.percent:3d}%" if self.percent is not None else ""
        status = f"{self.title}: {self.stage}{percent} ({self._elapsed()})"
        if self.tty:
            self.out.write("\r\033[K" + status)
        elif force or (self.percent is not None and self.percent >= self._last_reported + 10):
            if self.percent is not None:
                self._last_reported = self.percent
            self.out.write(status + "\n")
        self.out.flush()

    def done(self, result: str) -> None:
        end = "\r\033[K" if self.tty else ""
        self.out.write(f"{end}{self.title}: {result} ({self._elapsed()})\n")
        self.out.flush()


def run_setup_script(script: Path, title: str, out: TextIO, env: dict[str, str] | None = None) -> Path:
    """Runs a scripts/ set-up script, showing its stderr as progress; returns the path it prints
    on its last stdout line. Raises RuntimeError with the script's last output when it fails."""
    progress = Progress(title, out)
    tail: list[str] = []
    with subprocess.Popen(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        assert process.stderr is not None and process.stdout is not None
        for line in process.stderr:
            progress.line(line)
            tail = (tail + [line.rstrip()])[-20:]
        stdout = process.stdout.read()
        code = process.wait()
    if code != 0 or not stdout.strip():
        out.write("\n")
        raise RuntimeError(f"{script.name} failed with exit code {code}:\n" + "\n".join(tail))
    path = Path(stdout.strip().splitlines()[-1])
    progress.done(f"ready: {path}")
    return path


def prepare(checkout: Path, out: TextIO) -> dict[str, str]:
    """Builds/fetches what the stack needs (once per machine; cached after) and returns the
    environment that tells the launcher where they are."""
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)
    if not env.get("DUCKLM_LLAMA_SERVER"):
        env["DUCKLM_LLAMA_SERVER"] = str(
            run_setup_script(checkout / "scripts" / "build_llama_server.sh", "llama-server", out, env)
        )
    if not env.get("DUCKLM_MODEL_PATH"):
        env["DUCKLM_MODEL_PATH"] = str(
            run_setup_script(checkout / "scripts" / "fetch_model.sh", "model", out, env)
        )
    if not env.get("DUCKLM_EMBEDDING_MODEL_PATH"):
        env["DUCKLM_EMBEDDING_MODEL_PATH"] = str(
            run_setup_script(checkout / "scripts" / "fetch_embedding_model.sh", "embedding model", out, env)
        )
    return env


def up(arguments: Sequence[str], out: TextIO) -> int:
    """Prepares, then runs `python -m deploy.stack ARGUMENTS` in the checkout until it exits."""
    checkout = find_checkout()
    env = prepare(checkout, out)
    command = [sys.executable, "-m", "deploy.stack", *arguments]
    # The launcher handles Ctrl-C itself (it stops every service); wait for it to finish.
    with subprocess.Popen(command, cwd=checkout, env=env) as process:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                continue
