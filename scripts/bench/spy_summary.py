"""Samples a process with py-spy (a PyPI package, in requirements-dev.txt) and summarises where its
time went: per thread, the functions most often on top of the stack, and DuckLM's own share.

Used by bench_throughput.py's `--py-spy`; it must never be needed for a benchmark's figures.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Profile", "SpySummary", "record_profile", "summarise"]

# "thread (1234): MainThread;frame (file:line);frame (file:line) 17"
_LINE = re.compile(r"^thread \((?P<tid>[^)]*)\): (?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+):\d+\)$")
OWN_FOLDERS = ("/services/", "/deploy/", "/gen/python/")


@dataclass
class SpySummary:
    samples: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)
    # Samples whose top frame is DuckLM's own code, and samples with DuckLM's code anywhere on the stack.
    ducklm_self: int = 0
    ducklm_inclusive: int = 0

    def print(self, top: int = 15) -> None:
        if not self.samples:
            print("py-spy took no samples (is ptrace allowed here?)")
            return
        print(f"{self.samples} samples (idle threads not counted)")
        for name, count in self.threads.most_common():
            print(f"  thread {name}: {100 * count / self.samples:.1f}%")
        print(f"  DuckLM's own code on top of the stack: {100 * self.ducklm_self / self.samples:.1f}%; "
              f"anywhere on the stack: {100 * self.ducklm_inclusive / self.samples:.1f}%")
        print(f"  the {top} functions most often on top:")
        for leaf, count in self.leaves.most_common(top):
            print(f"    {100 * count / self.samples:5.1f}%  {leaf}")


def _short(frame: str) -> tuple[str, bool]:
    """The frame as `function (file)` with the file shortened, and whether it is DuckLM's code."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, False
    path = match["file"]
    ours = any(folder in path for folder in OWN_FOLDERS) and "site-packages" not in path
    for marker in ("site-packages/", "/lib/python3", *OWN_FOLDERS):
        if marker in path:
            path = path.split(marker, 1)[1] if marker != "/services/" else "services/" + path.split(marker, 1)[1]
            break
    return f"{match['function']} ({path})", ours


def summarise(raw: str) -> SpySummary:
    summary = SpySummary()
    for line in raw.splitlines():
        match = _LINE.match(line.strip())
        if match is None:
            continue
        count = int(match["count"])
        thread, *frames = match["stack"].split(";")
        summary.samples += count
        summary.threads[thread] += count
        if not frames:
            continue
        shortened = [_short(frame) for frame in frames]
        leaf, leaf_ours = shortened[-1]
        summary.leaves[leaf] += count
        if leaf_ours:
            summary.ducklm_self += count
        if any(ours for _, ours in shortened):
            summary.ducklm_inclusive += count
    return summary


@dataclass
class Profile:
    """A py-spy recording under way; `finish()` stops it and returns the summary."""

    process: subprocess.Popen[bytes] | None
    output: Path
    keep: Path | None

    def finish(self) -> SpySummary | None:
        if self.process is None:
            return None
        self.process.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
        self.process.wait(timeout=60)
        raw = self.output.read_text() if self.output.exists() else ""
        if self.keep is not None:
            self.keep.write_text(raw)
        return summarise(raw)


def record_profile(pid: int, keep: Path | None = None, rate: int = 200) -> Profile:
    """Starts py-spy on `pid` (all threads, full file names, without pausing the process)."""
    output = Path(tempfile.mkdtemp()) / "py-spy.txt"
    executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(executable).exists():
        print("py-spy is not installed (pip install py-spy): no profile")
        return Profile(None, output, keep)
    process = subprocess.Popen(
        [executable, "record", "--pid", str(pid), "--format", "raw", "--threads", "--full-filenames",
         "--nonblocking", "--rate", str(rate), "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return Profile(process, output, keep)
