"""The doctor's command line: check this set-up and print a checklist (or `--json`); exit 0
only if every required check passes. `python -m deploy.doctor`, `ducklm doctor` and the
scripts under scripts/verify/ (`make verify`) all end here."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from deploy.doctor.render import print_checklist, print_json
from deploy.doctor.run import SECTIONS, run_doctor
from deploy.doctor.setup import Setup
from services.common.config import apply_env_file

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ducklm doctor", description="Check the DuckLM set-up: models, services and this machine."
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the checklist")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable; default: all)"
    )
    parser.add_argument("--role", action="append", help="with the models section, only this role (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    apply_env_file()
    setup = Setup.load(os.environ)
    report = asyncio.run(run_doctor(setup, args.only or SECTIONS, only_roles=args.role))
    if args.json:
        print_json(report, sys.stdout)
    else:
        print_checklist(report, sys.stdout)
    return report.exit_code
