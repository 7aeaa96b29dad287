"""Approvals: a human's permission bound to one exact action (its SHA-256), one task, and a time.

Lifecycle: PENDING -> APPROVED | DENIED; APPROVED -> USED (single-use, on execution) or EXPIRED
(when its time passes). A task-scope grant stays APPROVED until it expires and covers the exact
action any number of times, for its own task only. A TASK_PATTERN grant covers, the same way,
every run_command call of the pattern shown on the approval (services/tools/patterns.py), each
use logged with the exact action that ran. The requester may withdraw a pending request (it
ends DENIED); only a human (the caller names who, from the credential) decides. A gated call that
nothing covers gets a pending request of its own (`admit`), and every approval created, decided
or used is published, once committed, on the book's feed (WatchApprovals).

This module must never let an approval cover anything but the exact action hash (or, for a
pattern grant, the pattern hash) it was asked for, a different task, or a time after its expiry.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.task_trace import record_task_span
from services.tools.approval_storage import ApprovalStorage
from services.tools.canonical import Action
from services.tools.feed import ApprovalFeed
from services.tools.patterns import Pattern
from services.tools.store import ApprovalRecord

__all__ = ["SCOPES", "STATES", "WITHDRAWN_BY", "Admission", "ApprovalBook"]

STATES = ("PENDING", "APPROVED", "DENIED", "USED", "EXPIRED")
SCOPES = ("ONCE", "TASK", "TASK_PATTERN")
# Who a withdrawn request is recorded as decided by.
WITHDRAWN_BY = "requester (withdrawn)"


def _refused(message: str, reason: str, action_hash: str) -> FailedPrecondition:
    return FailedPrecondition(f"{message} (action hash {action_hash})", reason=reason)


@dataclass(frozen=True)
class Admission:
    """What the gate decided for one gated call."""

    approval: ApprovalRecord
    # False: nothing covers the call, and `approval` is the pending request it now waits on.
    admitted: bool


class ApprovalBook:
    """Requests, decisions, checks and uses of approvals."""

    def __init__(
        self,
        store: ApprovalStorage,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        feed: ApprovalFeed | None = None,
    ) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self.feed = feed or ApprovalFeed()

    async def request(self, action: Action, task_id: str, pattern: Pattern | None = None) -> ApprovalRecord:
        """A PENDING approval for `action` in `task_id` (the existing one if already pending),
        showing the pattern a TASK_PATTERN grant of it would cover."""
        if not task_id:
            raise InvalidArgument("task_id is required: an approval belongs to one task")
        record = ApprovalRecord(
            id=uuid.uuid4().hex,
            task_id=task_id,
            tool_name=action.tool_name,
            arguments=action.arguments,
            canonical_action=action.canonical,
            action_hash=action.hash,
            working_directory=action.working_directory,
            policy_version=action.policy_version,
            state="PENDING",
            scope="ONCE",
            create_time=self._clock(),
            decide_time=None,
            expire_time=None,
            use_time=None,
            decided_by="",
            reason="",
            pattern=pattern.text if pattern else "",
            pattern_hash=pattern.hash if pattern else "",
        )
        pending = await self.store.insert_pending(record, actor=task_id)
        if pending is record:
            self.feed.publish(record)
        return pending

    async def get(self, approval_id: str) -> ApprovalRecord:
        await self.store.expire_due(self._clock())
        record = await self.store.get(approval_id)
        if record is None:
            raise NotFound(f"approval '{approval_id}' does not exist")
        return record

    async def page(self, state: str, task_id: str, offset: int, limit: int) -> list[ApprovalRecord]:
        await self.store.expire_due(self._clock())
        return await self.store.page(state, task_id, offset, limit)

    async def approve(
        self,
        approval_id: str,
        *,
        scope: str,
        ttl_seconds: int,
        decided_by: str,
        reason: str,
        policy_version: str,
    ) -> ApprovalRecord:
        """A human allows the pending action: once (default), for the rest of its task, or, with
        TASK_PATTERN, every call of its pattern for the rest of its task."""
        if scope not in SCOPES:
            raise InvalidArgument(f"scope must be one of {', '.join(SCOPES)}")
        if ttl_seconds < 0:
            raise InvalidArgument("ttl_seconds must not be negative (0 means the configured default)")
        record = await self._pending(approval_id, decided_by)
        if scope == "TASK_PATTERN" and not record.pattern_hash:
            raise InvalidArgument(
                f"approval '{approval_id}' has no pattern (only run_command calls do); approve it once "
                "or for the task"
            )
        if record.policy_version != policy_version:
            raise FailedPrecondition(
                f"approval '{approval_id}' was requested under another policy version; request it again",
                reason="APPROVAL_POLICY_CHANGED",
            )
        ttl = min(ttl_seconds or self.ttl_seconds, self.ttl_seconds)
        now = self._clock()
        decided = await self.store.decide(
            approval_id,
            state="APPROVED",
            scope=scope,
            now=now,
            expire_time=now + ttl,
            decided_by=decided_by,
            reason=reason,
        )
        return await self._decided(approval_id, decided)

    async def deny(self, approval_id: str, *, decided_by: str, reason: str) -> ApprovalRecord:
        """A human refuses the pending action."""
        return await self._refuse(approval_id, decided_by, reason)

    async def withdraw(self, approval_id: str, *, reason: str) -> ApprovalRecord:
        """The requester takes back a pending request: it ends DENIED and allows nothing."""
        return await self._refuse(approval_id, WITHDRAWN_BY, reason, event="withdrawn")

    async def _refuse(self, approval_id: str, decided_by: str, reason: str, *, event: str = "") -> ApprovalRecord:
        """Ends a pending approval DENIED (the audit event: `event`, or "denied")."""
        await self._pending(approval_id, decided_by)
        decided = await self.store.decide(
            approval_id,
            state="DENIED",
            scope="ONCE",
            now=self._clock(),
            expire_time=None,
            decided_by=decided_by,
            reason=reason,
            event=event,
        )
        return await self._decided(approval_id, decided)

    async def _pending(self, approval_id: str, decided_by: str) -> ApprovalRecord:
        if not decided_by.strip():
            raise InvalidArgument("decided_by is required: every decision records who made it")
        record = await self.get(approval_id)
        if record.state != "PENDING":
            raise FailedPrecondition(
                f"approval '{approval_id}' is {record.state}, not PENDING; decisions are final",
                reason="APPROVAL_ALREADY_DECIDED",
            )
        return record

    async def _decided(self, approval_id: str, decided: ApprovalRecord | None) -> ApprovalRecord:
        if decided is None:
            raise FailedPrecondition(
                f"approval '{approval_id}' was decided by someone else meanwhile",
                reason="APPROVAL_ALREADY_DECIDED",
            )
        self.feed.publish(decided)
        # The wait for the decision, as a span of the task's trace (where the turn stood still).
        record_task_span(f"await_approval {decided.tool_name}", decided.task_id, {
            "gen_ai.tool.name": decided.tool_name, "gen_ai.conversation.id": decided.task_id,
            "ducklm.approval.id": decided.id, "ducklm.approval.state": decided.state.lower(),
            "ducklm.approval.scope": decided.scope.lower(),
        }, start_s=decided.create_time, end_s=decided.decide_time or decided.create_time)
        return decided

    async def check(
        self, approval_id: str, action: Action, task_id: str, pattern: Pattern | None = None
    ) -> tuple[bool, str]:
        """Whether the approval (or, without an id, a task grant) covers the action; uses nothing."""
        record: ApprovalRecord | None
        try:
            if approval_id:
                record = await self._usable(approval_id, action, task_id, pattern)
            else:
                record = await self._grant(action, task_id, pattern)
        except FailedPrecondition as exc:
            return False, exc.message
        if record is None:
            return False, "no approval given and no task grant covers this exact action"
        return True, f"approval '{record.id}' ({record.scope}) covers this action"

    async def _grant(self, action: Action, task_id: str, pattern: Pattern | None) -> ApprovalRecord | None:
        """The task's exact grant for the action, else its pattern grant for the call's pattern
        (never for a call touching a protected path)."""
        now = self._clock()
        grant = await self.store.find_grant(task_id, action.hash, now)
        if grant is None and pattern is not None and pattern.clear_of_protected:
            grant = await self.store.find_pattern_grant(task_id, pattern.hash, now)
        return grant

    async def _record_use(self, grant: ApprovalRecord, action: Action, task_id: str) -> None:
        note = f"action {action.hash}: {action.canonical}" if grant.scope == "TASK_PATTERN" else ""
        await self.store.record_use(grant.id, task_id, self._clock(), note)

    async def admit(
        self, approval_id: str, action: Action, task_id: str, pattern: Pattern | None = None
    ) -> Admission:
        """Uses the approval for one execution of `action`; without an id and without a task
        grant that covers it, requests one instead (the call waits for a human, nothing runs).
        An approval id that cannot cover the action raises FAILED_PRECONDITION saying why.

        A single-use approval is marked USED by the same statement that checks it, before the
        tool runs. Without an id, only a task-scope grant of this task can cover the action: its
        exact action, or (`pattern`, for run_command) a pattern grant of the call's pattern.
        """
        if not approval_id:
            if not task_id:
                raise InvalidArgument(
                    f"'{action.tool_name}' needs a human approval for this exact action, and an approval "
                    f"belongs to one task: give a task_id (action hash {action.hash})"
                )
            grant = await self._grant(action, task_id, pattern)
            if grant is None:
                return Admission(await self.request(action, task_id, pattern), admitted=False)
            await self._record_use(grant, action, task_id)
            return Admission(grant, admitted=True)
        return Admission(await self._consume(approval_id, action, task_id, pattern), admitted=True)

    async def _consume(
        self, approval_id: str, action: Action, task_id: str, pattern: Pattern | None
    ) -> ApprovalRecord:
        record = await self._usable(approval_id, action, task_id, pattern)
        if record.scope in ("TASK", "TASK_PATTERN"):
            await self._record_use(record, action, task_id)
            return record
        used = await self.store.consume_once(approval_id, task_id, action.hash, self._clock())
        if used is None:
            # Lost a race with another use (or its time ran out in between): say which.
            await self._usable(approval_id, action, task_id, pattern)
            raise _refused(f"approval '{approval_id}' is no longer usable", "APPROVAL_USED", action.hash)
        self.feed.publish(used)
        return used

    async def _usable(
        self, approval_id: str, action: Action, task_id: str, pattern: Pattern | None = None
    ) -> ApprovalRecord:
        """The approval if it could cover `action` for `task_id` now; otherwise why not."""
        now = self._clock()
        await self.store.expire_due(now)
        record = await self.store.get(approval_id)
        if record is None:
            raise _refused(f"approval '{approval_id}' does not exist", "APPROVAL_NOT_FOUND", action.hash)
        if record.task_id != task_id:
            raise _refused(
                f"approval '{approval_id}' belongs to another task", "APPROVAL_WRONG_TASK", action.hash
            )
        if record.action_hash != action.hash and not _pattern_covers(record, pattern):
            if record.policy_version != action.policy_version:
                raise _refused(
                    f"approval '{approval_id}' was given under another policy version; request a new one",
                    "APPROVAL_POLICY_CHANGED",
                    action.hash,
                )
            raise _refused(
                f"approval '{approval_id}' covers another action (hash {record.action_hash}); any change to "
                "the tool, its arguments or the working directory needs a new approval",
                "APPROVAL_MISMATCH",
                action.hash,
            )
        problems = {
            "PENDING": ("is still waiting for a human decision", "APPROVAL_PENDING"),
            "DENIED": (
                f"was denied by {record.decided_by}: {record.reason or 'no reason given'}",
                "APPROVAL_DENIED",
            ),
            "USED": ("was single-use and has already been used", "APPROVAL_USED"),
            "EXPIRED": ("has expired", "APPROVAL_EXPIRED"),
        }
        if record.state in problems:
            what, reason = problems[record.state]
            raise _refused(f"approval '{approval_id}' {what}", reason, action.hash)
        return record


def _pattern_covers(record: ApprovalRecord, pattern: Pattern | None) -> bool:
    """Whether `record` is a pattern grant whose pattern is the call's, and the call keeps clear
    of protected paths."""
    return (
        pattern is not None
        and pattern.clear_of_protected
        and bool(record.pattern_hash)
        and record.pattern_hash == pattern.hash
        and record.scope == "TASK_PATTERN"
    )
