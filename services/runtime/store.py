"""The runtime's SQLite access layer: tasks and their append-only event logs.

Every event is committed before the loop takes its next step, so a task can be replayed or
resumed from its log. Events and the status change they cause are committed in one transaction
(`transition`), and a status change can be conditional on the status read in the same
transaction (a compare-and-set), so no crash or race leaves a status its log contradicts.
Live subscribers are woken when a task's log grows, after the commit, never before.

Each operation is one transaction run whole on the database thread (sqlite_batches.py), and
transactions that arrive together share one commit: one trip to that thread per operation,
not one per statement.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from services.common.protos import utc_now
from services.runtime.model_text import sanitize
from services.runtime.records import EventRecord, TaskRecord, event_from_row, task_from_row
from services.runtime.sqlite_batches import SqliteBatches
from services.runtime.sqlite_tasks import SCHEMA, Transaction
from services.runtime.states import FINAL_STATES, TaskStatus, check_transition
from services.runtime.store_rules import StatusShortcuts, check_can_continue
from services.runtime.subscribers import Subscribers

__all__ = ["EventRecord", "TaskRecord", "TaskStore"]

T = TypeVar("T")

# How many task logs, and task rows, stay in memory: more logs than tasks run at once, or each
# step of a task whose log was dropped reads it all again.
CACHED_LOGS = 2048
CACHED_TASKS = 4096

class TaskStore(StatusShortcuts):
    """Tasks and events in one SQLite file. Open with `TaskStore.open(path)`."""

    def __init__(self, db: SqliteBatches) -> None:
        self._db = db
        self._live = Subscribers()
        # In-memory copies of the logs of recently active tasks (least recently used dropped
        # first), so each step does not re-read and re-decode the whole log. SQLite stays the
        # source of truth; this process is its only writer.
        self._logs: OrderedDict[str, list[EventRecord]] = OrderedDict()
        # The same for task rows: each transaction that changes one puts the row it committed
        # here, so reading a task's status and usage (every step) needs no trip to the database.
        self._tasks: OrderedDict[str, TaskRecord] = OrderedDict()

    @classmethod
    async def open(cls, path: Path | str) -> TaskStore:
        return cls(await SqliteBatches.open(path, SCHEMA))

    async def close(self) -> None:
        await self._db.close()

    # -- tasks -------------------------------------------------------------------------------

    async def create_task(self, title: str) -> TaskRecord:
        return await self._transaction(lambda tx: tx.insert_task(title))

    async def open_task(self, message: dict[str, Any]) -> tuple[TaskRecord, EventRecord]:
        """Creates a task with its first user message, running, in one transaction.
        Returns the task and the user-message event."""

        def work(tx: Transaction) -> tuple[TaskRecord, EventRecord]:
            task = tx.insert_task(str(message["text"]))
            tx.append(task.id, "task_created", {"message": message["text"]})
            user = tx.append(task.id, "user_message", message)
            tx.change_status(task, TaskStatus.RUNNING, reason="user_message")
            return tx.task(task.id), user

        return await self._transaction(work)

    async def continue_task(self, task_id: str, message: dict[str, Any]) -> tuple[TaskRecord, EventRecord]:
        """Records a new user message and reopens the task, only if it is at rest (completed):
        one compare-and-set, so of two concurrent continuations exactly one wins. The loser (or
        any message while the task runs) gets ABORTED, "the task is busy", and its message is
        not recorded. A task waiting for an approval, failed or cancelled: FAILED_PRECONDITION."""

        def work(tx: Transaction) -> tuple[TaskRecord, EventRecord]:
            task = tx.task(task_id)
            check_can_continue(task)
            user = tx.append(task_id, "user_message", message)
            tx.change_status(task, TaskStatus.RUNNING, reason="user_message")
            return tx.task(task_id), user

        return await self._transaction(work)

    async def transition(
        self,
        task_id: str,
        new: TaskStatus,
        *,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
        expect: Collection[TaskStatus] | None = None,
        reason: str = "",
        error: str = "",
        pending_approval_id: str = "",
    ) -> TaskRecord | None:
        """Appends `events`, then moves the task to `new`, in one transaction. With `expect`,
        only if the task's status (read in the same transaction) is one of them: otherwise
        nothing is written and None is returned."""

        def work(tx: Transaction) -> TaskRecord | None:
            task = tx.task(task_id)
            if expect is not None and task.status not in expect:
                return None
            check_transition(task.status, new)
            for event_type, data in events:
                tx.append(task_id, event_type, data)
            tx.change_status(task, new, reason=reason, error=error, pending_approval_id=pending_approval_id)
            return tx.task(task_id)

        return await self._transaction(work)

    async def get_task(self, task_id: str) -> TaskRecord:
        cached = self._tasks.get(task_id)
        if cached is not None:
            return replace(cached)  # a copy: callers never share the cached record
        return await self._transaction(lambda tx: tx.task(task_id), after=self._keep_task)

    def _keep_task(self, task: TaskRecord) -> None:
        self._tasks[task.id] = replace(task)
        self._tasks.move_to_end(task.id)
        while len(self._tasks) > CACHED_TASKS:
            self._tasks.popitem(last=False)

    async def list_tasks(self, offset: int, limit: int, status: TaskStatus | None = None) -> list[TaskRecord]:
        query, args = "SELECT * FROM tasks", []
        if status is not None:
            query += " WHERE status = ?"
            args.append(status.value)
        query += " ORDER BY create_time DESC, id LIMIT ? OFFSET ?"
        return await self._read_tasks(query, (*args, limit, offset))

    async def tasks_in(self, status: TaskStatus) -> list[TaskRecord]:
        return await self._read_tasks("SELECT * FROM tasks WHERE status = ? ORDER BY create_time", (status.value,))

    async def resumable_tasks(self) -> list[TaskRecord]:
        """Tasks a crash may have caught mid-turn (pending, running or waiting for approval),
        oldest first. A completed task's turn ended in the transaction that completed it."""
        return await self._read_tasks(
            "SELECT * FROM tasks WHERE status IN (?, ?, ?) ORDER BY create_time",
            (TaskStatus.PENDING.value, TaskStatus.RUNNING.value, TaskStatus.WAITING_APPROVAL.value),
        )

    async def _read_tasks(self, query: str, args: Sequence[Any]) -> list[TaskRecord]:
        return await self._transaction(lambda tx: [task_from_row(row) for row in tx.db.execute(query, args).fetchall()])

    async def rename_task(self, task_id: str, title: str) -> TaskRecord:
        def work(tx: Transaction) -> TaskRecord:
            tx.task(task_id)
            tx.db.execute("UPDATE tasks SET title = ? WHERE id = ?", (title[:200], task_id))
            tx.touched.add(task_id)
            return tx.task(task_id)

        return await self._transaction(work)

    async def delete_task(self, task_id: str) -> None:
        """Deletes a task and its event log (the caller checks it is at rest)."""

        def work(tx: Transaction) -> None:
            tx.task(task_id)
            tx.db.execute("DELETE FROM events WHERE task_id = ?", (task_id,))
            tx.db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))

        def forget(_: None) -> None:
            self._logs.pop(task_id, None)
            self._tasks.pop(task_id, None)

        await self._transaction(work, after=forget)

    async def fail_task(self, task_id: str, code: str, message: str) -> None:
        """Records an error event and fails the task, in one transaction; only the error is
        recorded when the task already ended (cancelled)."""

        def work(tx: Transaction) -> None:
            task = tx.task(task_id)
            tx.append(task_id, "error", {"code": code, "message": message})
            if task.status not in FINAL_STATES:
                tx.change_status(task, TaskStatus.FAILED, reason=code, error=message)

        await self._transaction(work)

    async def record_model_call(
        self, task_id: str, data: dict[str, Any], *, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int
    ) -> EventRecord:
        """Appends a model_call event and adds its usage to the task, in one transaction."""

        def work(tx: Transaction) -> EventRecord:
            tx.db.execute(
                "UPDATE tasks SET prompt_tokens = prompt_tokens + ?,"
                " completion_tokens = completion_tokens + ?, cached_prompt_tokens = cached_prompt_tokens + ?,"
                " update_time = ? WHERE id = ?",
                (prompt_tokens, completion_tokens, cached_prompt_tokens, utc_now().isoformat(), task_id),
            )
            tx.touched.add(task_id)
            return tx.append(task_id, "model_call", data)

        return await self._transaction(work)

    async def record_step(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
        """Appends one step of the model (a directive, or an output that was not one) and counts
        it in the task's steps, in one transaction."""

        def work(tx: Transaction) -> EventRecord:
            tx.db.execute(
                "UPDATE tasks SET steps = steps + 1, update_time = ? WHERE id = ?", (utc_now().isoformat(), task_id)
            )
            tx.touched.add(task_id)
            return tx.append(task_id, event_type, data)

        return await self._transaction(work)

    async def complete_turn(self, task_id: str, reply: str, *, final: bool, reason: str) -> TaskRecord:
        """Records the assistant's reply and completes the task, in one transaction."""
        reply = sanitize(reply)

        def work(tx: Transaction) -> TaskRecord:
            task = tx.task(task_id)
            check_transition(task.status, TaskStatus.COMPLETED)
            tx.append(task_id, "assistant_message", {"text": reply, "final": final})
            tx.db.execute("UPDATE tasks SET last_reply = ? WHERE id = ?", (reply, task_id))
            tx.touched.add(task_id)
            tx.change_status(task, TaskStatus.COMPLETED, reason=reason)
            return tx.task(task_id)

        return await self._transaction(work)

    async def record_reflection(self, experience_ids: list[str], outcome: str, proposal_id: str, model_output: str) -> str:
        reflection_id = uuid.uuid4().hex

        def work(tx: Transaction) -> None:
            tx.db.execute(
                "INSERT INTO reflections VALUES (?, ?, ?, ?, ?, ?)",
                (reflection_id, utc_now().isoformat(), json.dumps(experience_ids), outcome, proposal_id,
                 sanitize(model_output)),
            )

        await self._transaction(work)
        return reflection_id

    async def list_reflections(self) -> list[dict[str, Any]]:
        return await self._transaction(
            lambda tx: [dict(row) for row in tx.db.execute("SELECT * FROM reflections ORDER BY create_time").fetchall()]
        )

    # -- events ------------------------------------------------------------------------------

    async def _transaction(
        self, work: Callable[[Transaction], T], *, after: Callable[[T], object] | None = None
    ) -> T:
        """Runs `work` as one transaction on the database thread: committed on success, rolled
        back whole on any error (nothing half written stays for a later commit). Its events
        reach the log cache and subscribers once committed, in commit order; then `after`."""

        def run(db: sqlite3.Connection) -> tuple[T, list[EventRecord], list[TaskRecord]]:
            tx = Transaction(db)
            value = work(tx)
            return value, tx.events, [tx.task(task_id) for task_id in sorted(tx.touched)]

        def committed(outcome: tuple[T, list[EventRecord], list[TaskRecord]]) -> None:
            value, events, tasks = outcome
            for task in tasks:
                self._keep_task(task)
            for event in events:
                cached = self._logs.get(event.task_id)
                if cached is not None:
                    cached.append(event)
            for event in events:
                self._live.publish(event)
            if after is not None:
                after(value)

        value, _, _ = await self._db.run(run, committed)
        return value

    async def append_event(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
        """Appends and commits one event, then wakes the task's live subscribers."""
        return await self._transaction(lambda tx: tx.append(task_id, event_type, data))

    async def hold_log(self, task_id: str) -> None:
        """Keeps the task's log in memory (a task about to run reads it every step)."""
        if task_id in self._logs:
            self._logs.move_to_end(task_id)
            return

        def keep(log: list[EventRecord]) -> None:
            # Read in commit order: no event committed after this read can be missing from it.
            self._logs.setdefault(task_id, log)
            while len(self._logs) > CACHED_LOGS:
                self._logs.popitem(last=False)

        await self._transaction(
            lambda tx: [
                event_from_row(row)
                for row in tx.db.execute("SELECT * FROM events WHERE task_id = ? ORDER BY seq", (task_id,)).fetchall()
            ],
            after=keep,
        )

    async def list_events(self, task_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[EventRecord]:
        cached = self._logs.get(task_id)
        if cached is not None:
            # seq runs 1, 2, 3… without gaps, so list index = seq - 1.
            return cached[after_seq : after_seq + limit]
        return await self._transaction(
            lambda tx: [
                event_from_row(row)
                for row in tx.db.execute(
                    "SELECT * FROM events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?", (task_id, after_seq, limit)
                ).fetchall()
            ]
        )

    # -- live subscription -------------------------------------------------------------------

    def subscribe(self, task_id: str) -> asyncio.Queue[EventRecord]:
        """A queue that receives every event of the task from now on, stored or live-only."""
        return self._live.subscribe(task_id)

    def unsubscribe(self, task_id: str, queue: asyncio.Queue[EventRecord]) -> None:
        self._live.unsubscribe(task_id, queue)

    def publish_live(self, task_id: str, event_type: str, data: dict[str, Any]) -> None:
        """Sends an event to live subscribers without storing it (seq 0): streamed model tokens,
        whose full text is stored once in the model_call event."""
        self._live.publish_live(task_id, event_type, data)
