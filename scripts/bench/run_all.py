"""`make bench`: runs every benchmark under scripts/bench/ in turn and prints their figures.

Each benchmark is its own script (runnable alone); this only runs them one after another so
they do not compete for the machine's cores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = ["runtime_bench.py", "memory_bench.py"]


def main() -> int:
    here = Path(__file__).parent
    failed = []
    for name in BENCHES:
        print(f"\n######## {name} ########", flush=True)
        if subprocess.run([sys.executable, str(here / name)], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
