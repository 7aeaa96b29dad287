"""Checks every service's DUCKLM_* settings and config/models.yaml load (naming the file, line
and key of any problem).

One section of `ducklm doctor`; `make verify` runs every script here. Extra arguments (e.g.
`--json`) go to the doctor. Exits 0 only if every required check passes.
"""

import sys

from deploy.doctor.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["--only", "config", *sys.argv[1:]]))
