"""`make bench`: runs every benchmark under scripts/bench/ in turn and prints their figures.

Each benchmark is its own script (runnable alone); this runs them one after another so they do
not compete for the machine's cores. The memory benchmark gets a runtime serving the real
embedding model, so embedding time is measured apart from search time.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from deploy.stack import LocalStack, StackPorts

HERE = Path(__file__).parent
# all-MiniLM-L6-v2 (the default embedding model) gives 384-dimensional vectors.
EMBEDDING_DIMENSION = 384


def run(script: str, *args: str) -> bool:
    print(f"\n######## {script} {' '.join(args)} ########", flush=True)
    return subprocess.run([sys.executable, str(HERE / script), *args], check=False).returncode == 0


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
    results = {"runtime_bench.py": run("runtime_bench.py"), "memory_bench.py": asyncio.run(memory_bench())}
    results["sandbox_bench.py"] = run("sandbox_bench.py")
    results["skills_bench.py"] = run("skills_bench.py")
    results["webchat_bench.py"] = run("webchat_bench.py")
    results["bench_mcp.py"] = run("bench_mcp.py")
    failed = [name for name, ok in results.items() if not ok]
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
