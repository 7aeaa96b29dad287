"""Checks this machine: ports free or held by DuckLM, a trial bwrap run, writable workspace and
data folders, free disk, llama-server and the model in the cache.

One section of `ducklm doctor`; `make verify` runs every script here. Extra arguments (e.g.
`--json`) go to the doctor. Exits 0 only if every required check passes.
"""

import sys

from deploy.doctor.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["--only", "machine", *sys.argv[1:]]))
