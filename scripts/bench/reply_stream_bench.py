"""How the streamed-reply extractor scales with output size: it must be linear (the same time
per megabyte at any size), so a huge output cannot freeze the runtime's event loop.

    .venv/bin/python scripts/bench/reply_stream_bench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.runtime.reply_stream import ReplyExtractor


def seconds_for(size: int, piece: int = 8) -> float:
    text = '{"action": "respond", "message": "' + ("ab\\n" * (size // 4 + 1))[:size] + '"}'
    extractor = ReplyExtractor()
    started = time.perf_counter()
    for start in range(0, len(text), piece):
        extractor.feed(text[start : start + piece])
    return time.perf_counter() - started


def main() -> None:
    rates = []
    for size in (200_000, 400_000, 4_000_000):
        took = seconds_for(size)
        rates.append(took / size * 1_000_000)
        print(f"{size // 1000:>5} KB in 8-character deltas: {took * 1000:7.1f} ms ({rates[-1] * 1000:.0f} ms per MB)")
    print(f"time per MB at 4 MB / at 200 KB: {rates[-1] / rates[0]:.2f} (target: about 1, i.e. linear; "
          "before: 200 KB took 4 s and 400 KB 16 s)")


if __name__ == "__main__":
    main()
