"""What one doctor check found: a `Check` (its section, name, status, what was seen and the one
line that fixes it) and the `Report` of all of them, which decides the exit status.

This module only holds results; it never probes anything.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["PROBE_DEADLINE", "Check", "Report", "Status"]

# Seconds one probe of a service or port may take. Generous: a dead service refuses at once, and
# a loaded machine (a model busy generating) must not read as a broken one.
PROBE_DEADLINE = 10.0


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    # Not required: DuckLM works, with something missing (the fix line says what).
    WARN = "warn"
    # Not applicable to this set-up (e.g. no llama-server is started by DuckLM).
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    status: Status
    detail: str
    fix: str = ""

    @classmethod
    def passed(cls, section: str, name: str, detail: str) -> Check:
        return cls(section, name, Status.PASS, detail)

    @classmethod
    def failed(cls, section: str, name: str, detail: str, fix: str) -> Check:
        return cls(section, name, Status.FAIL, detail, fix)

    @classmethod
    def warned(cls, section: str, name: str, detail: str, fix: str) -> Check:
        return cls(section, name, Status.WARN, detail, fix)

    @classmethod
    def skipped(cls, section: str, name: str, detail: str) -> Check:
        return cls(section, name, Status.SKIP, detail)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def extend(self, checks: list[Check]) -> None:
        self.checks.extend(checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.status is Status.FAIL]

    @property
    def ok(self) -> bool:
        """Every required check passed (warnings and skips do not count against it)."""
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1
