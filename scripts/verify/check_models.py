"""Checks each role in config/models.yaml against its server (endpoint, model, json_schema,
streaming, context window, /tokenize, timings) and the embedding dimension against the memory
collections.

One section of `ducklm doctor`; `make verify` runs every script here. Extra arguments (e.g.
`--json`) go to the doctor. Exits 0 only if every required check passes.
"""

import sys

from deploy.doctor.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["--only", "models", *sys.argv[1:]]))
