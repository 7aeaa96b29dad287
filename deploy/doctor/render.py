"""Prints a doctor `Report`: a checklist for people (one line per check, the fix indented
under each failure or warning), or one JSON object for machines."""

from __future__ import annotations

import json
from typing import TextIO

from deploy.doctor.checks import Check, Report, Status

__all__ = ["check_line", "print_checklist", "print_json"]

_MARKS = {Status.PASS: "ok  ", Status.FAIL: "FAIL", Status.WARN: "warn", Status.SKIP: "skip"}


def check_line(check: Check) -> str:
    """`[FAIL] models.chat  json_schema: the reply ignores the schema` (+ `fix:` line)."""
    line = f"[{_MARKS[check.status]}] {check.name}: {check.detail}"
    if check.fix and check.status in (Status.FAIL, Status.WARN):
        line += f"\n         fix: {check.fix}"
    return line


def print_checklist(report: Report, out: TextIO, *, failures_only: bool = False) -> None:
    section = ""
    for check in report.checks:
        if failures_only and check.status is not Status.FAIL:
            continue
        if check.section != section:
            section = check.section
            out.write(f"{section}\n")
        out.write(f"  {check_line(check)}\n")
    failed = len(report.failures)
    warned = sum(1 for check in report.checks if check.status is Status.WARN)
    if failures_only:
        return
    if failed:
        out.write(f"\n{failed} required check(s) failed, {warned} warning(s): fix the FAIL lines above.\n")
    else:
        out.write(f"\nAll required checks pass ({warned} warning(s)).\n")


def print_json(report: Report, out: TextIO) -> None:
    json.dump({"ok": report.ok, "checks": [check.as_dict() for check in report.checks]}, out, indent=2)
    out.write("\n")
