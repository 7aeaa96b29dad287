"""How the command line looks on a terminal: colour (off with NO_COLOR, on with FORCE_COLOR, else
only on a terminal that is not TERM=dumb) and a live status line (a spinner with the time spent)
while DuckLM works. Pipes and files get plain text and no status line.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Spinner", "Style"]

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _is_terminal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and environ.get("TERM", "") != "dumb"


@dataclass(frozen=True)
class Style:
    colour: bool = False
    live: bool = False

    @classmethod
    def for_stream(cls, stream: TextIO, environ: Mapping[str, str] | None = None) -> Style:
        env = os.environ if environ is None else environ
        forced = bool(env.get("FORCE_COLOR"))
        terminal = _is_terminal(stream, env)
        # https://no-color.org: any non-empty NO_COLOR turns colour off, whatever else is set.
        return cls(colour=(terminal or forced) and not env.get("NO_COLOR"), live=terminal or forced)

    def paint(self, text: str, *styles: str) -> str:
        if not self.colour or not styles:
            return text
        return f"\x1b[{';'.join(_CODES[name] for name in styles)}m{text}\x1b[0m"


class Spinner:
    """A status line on `stream` ("⠹ thinking… 4s"), redrawn by a thread while DuckLM works.
    Call `clear()` before writing anything else to the terminal; `stop()` at the end."""

    def __init__(self, stream: TextIO, style: Style, interval: float = 0.1) -> None:
        self._stream = stream
        self._style = style
        self._interval = interval
        self._label = ""
        self._started = time.monotonic()
        self._shown = False
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, label: str) -> None:
        self._label = label
        if not self._style.live or self._thread is not None:
            return
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="ducklm-spinner", daemon=True)
        self._thread.start()

    def status(self, label: str) -> None:
        self._label = label

    def clear(self) -> None:
        with self._lock:
            if self._shown:
                self._stream.write("\r\x1b[K")
                self._stream.flush()
                self._shown = False

    def pause(self) -> None:
        """Stops drawing (and clears the line) until `start` is called again."""
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.clear()

    def _run(self) -> None:
        frame = 0
        while not self._stopped.wait(self._interval):
            with self._lock:
                if not self._label:
                    continue
                seconds = int(time.monotonic() - self._started)
                line = f"{_FRAMES[frame % len(_FRAMES)]} {self._label} {seconds}s"
                self._stream.write("\r\x1b[K" + self._style.paint(line, "dim"))
                self._stream.flush()
                self._shown = True
            frame += 1
