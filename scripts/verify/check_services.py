"""Checks every gRPC service: health SERVING, reflection lists its services, and it serves the
client's protos.

One section of `ducklm doctor`; `make verify` runs every script here. Extra arguments (e.g.
`--json`) go to the doctor. Exits 0 only if every required check passes.
"""

import sys

from deploy.doctor.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["--only", "services", *sys.argv[1:]]))
