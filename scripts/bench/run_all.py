"""`make bench`: runs every benchmark under scripts/bench/ in turn and prints their figures.

Each benchmark is its own script (runnable alone); this runs them one after another so they do
not compete for the machine's cores. The memory benchmark gets a runtime serving the real
embedding model, so embedding time is measured apart from search time. At the end it prints
every figure that has a target, next to it; `--record docs/bench.md` also writes them there with
the date and the machine (`make bench BENCH_ARGS="--record docs/bench.md"`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from deploy.stack import LocalStack, StackPorts

HERE = Path(__file__).parent
# all-MiniLM-L6-v2 (the default embedding model) gives 384-dimensional vectors.
EMBEDDING_DIMENSION = 384


# Each benchmark's output lines, in the order they ran.
OUTPUTS: dict[str, list[str]] = {}


def run(script: str, *args: str) -> bool:
    """Runs one benchmark, echoing its output as it comes and keeping it for the summary."""
    print(f"\n######## {script} {' '.join(args)} ########", flush=True)
    lines = OUTPUTS.setdefault(script, [])
    with subprocess.Popen([sys.executable, str(HERE / script), *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
    return process.returncode == 0


def figures() -> list[tuple[str, str]]:
    """(benchmark, line) for every output line that states a target."""
    return [(script, line.strip()) for script, lines in OUTPUTS.items() for line in lines if "target" in line.lower()]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def record(path: Path, failed: list[str]) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [f"# Benchmark figures ({now})", "", f"Measured by `make bench` on: {machine()}.", "",
            ("Each figure as its benchmark printed it, next to its target (`NOT REACHED` where it is missed). "
             "Timings move with whatever else the machine runs: compare figures measured on one machine."), ""]
    if failed:
        text += [f"These benchmarks failed to run: {', '.join(failed)}.", ""]
    text += ["| benchmark | figure and target |", "|---|---|"]
    text += [f"| `{script}` | {line.replace('|', '/')} |" for script, line in figures()]
    text += ["", "## Full output", ""]
    for script, lines in OUTPUTS.items():
        text += [f"### `{script}`", "", "```", *lines, "```", ""]
    path.write_text("\n".join(text))
    print(f"\nwrote {path}")


async def memory_bench() -> bool:
    with tempfile.TemporaryDirectory() as data:
        stack = LocalStack(data_dir=Path(data), ports=StackPorts.free(), services=("runtime",), with_gateway=False,
                           extra_env={"DUCKLM_RUNTIME_STANDALONE": "true"})
        await stack.start(timeout=240)
        try:
            searched = await asyncio.to_thread(
                run, "memory_bench.py", "--dim", str(EMBEDDING_DIMENSION), "--runtime-address", stack.address("runtime")
            )
            return await asyncio.to_thread(run, "memory_eval.py", "--runtime-address", stack.address("runtime")) and searched
        finally:
            await stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", type=Path, help="also write the figures to this Markdown file")
    parser.add_argument("--only", default="", help="run only these benchmarks (comma-separated script names)")
    args = parser.parse_args()
    benches: dict[str, Callable[[], bool]] = {
        "runtime_bench.py": lambda: run("runtime_bench.py"),
        "memory_bench.py": lambda: asyncio.run(memory_bench()),
        "sandbox_bench.py": lambda: run("sandbox_bench.py"),
        "skills_bench.py": lambda: run("skills_bench.py"),
        "webchat_bench.py": lambda: run("webchat_bench.py"),
        "bench_throughput.py": lambda: run("bench_throughput.py"),
        "recall_bench.py": lambda: run("recall_bench.py"),
        "bench_cache.py": lambda: run("bench_cache.py"),
        "bench_postgres.py": lambda: run("bench_postgres.py"),
        "bench_mcp.py": lambda: run("bench_mcp.py"),
    }
    chosen = [name for name in args.only.split(",") if name] or list(benches)
    unknown = [name for name in chosen if name not in benches]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {list(benches)}")
    results = {name: benches[name]() for name in chosen}
    failed = [name for name, ok in results.items() if not ok]
    print("\n######## every figure next to its target ########")
    for script, line in figures():
        print(f"{script:<20} {line}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    if args.record is not None:
        record(args.record, failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
