"""Soak run under faults: many multi-step tasks (a read-only step, an approved command, an
answer) while the runtime, tools, skills and model server are SIGKILLed and restarted at random.
Prints each count next to its target:

    .venv/bin/python scripts/soak/faults.py --tasks 200 --kills 30

Targets: 0 lost events, 0 duplicate side effects, 0 stuck tasks, 0 approvals used twice, and at
most 2% of tasks failed by a peer restart shorter than 5 s (the default `--down` keeps every
restart under 5 s). Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[2] / "gen" / "python")]

from tests.runtime.chaos import run_chaos


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--services", default="runtime,tools,skills,model")
    parser.add_argument("--gap", type=float, nargs=2, default=(1.0, 4.0), help="seconds between kills (range)")
    parser.add_argument("--down", type=float, nargs=2, default=(0.1, 4.0), help="seconds a service stays down")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as root:
        report = await run_chaos(
            Path(root), tasks=args.tasks, kills=args.kills, concurrency=args.concurrency, seed=args.seed,
            services=tuple(args.services.split(",")), gap=tuple(args.gap), down=tuple(args.down),
            settle_seconds=max(120.0, args.tasks * 3.0),
        )
    for line in report.lines():
        print(line)
    failed_share = len(report.failed) / report.tasks if report.tasks else 0.0
    print(f"failed by a peer restart: {100 * failed_share:.1f}% (target <= 2%)")
    print(f"wall time: {time.monotonic() - started:.0f} s")
    missed = (report.lost_events or report.duplicate_side_effects or report.stuck_tasks or report.approvals_reused
              or report.inconsistent or failed_share > 0.02)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
