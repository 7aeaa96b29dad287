"""The runtime's PostgreSQL access layer: tasks, their append-only event logs and reflections,
for a runtime configured with `DUCKLM_RUNTIME_DATABASE_URL=postgresql://…`.

It keeps every promise of the SQLite store (store.py), against a database other processes may
share: every write is one transaction that first takes the task's row lock (`UPDATE … RETURNING`
or `SELECT … FOR UPDATE`), so a task's events get gap-free seqs and a status change is a
compare-and-set on the status read under that lock. Events reach live subscribers only after
their commit, and subscribers on other replicas through LISTEN/NOTIFY (pg_events.py). Every
write is one transaction (or one statement, which is its own), and a database that goes away mid-call surfaces as `Unavailable`
with nothing half-written (PostgreSQL rolls the transaction back).

Several runtime replicas may share the database: a running turn is owned by one replica at a
time through a lease (owner, lease_token, lease_expire on the task's row). Moving a task into
running takes the lease and a new token; leaving running releases it and bumps the token. Every
write of a task this replica holds checks the token under the row lock (the fence), so a
replica whose lease was taken over cannot append: it gets `Aborted` with reason LEASE_LOST.
Renewing and taking over expired leases is leases.py's job, through `renew_leases` and
`claim_expired`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections import OrderedDict
from collections.abc import Collection, Sequence
from typing import Any

from services.common.errors import DuckLMError, NotFound
from services.common.postgres import Pool, open_pool
from services.common.protos import utc_now
from services.runtime.model_text import sanitize
from services.runtime.pg_events import LiveEvents
from services.runtime.pg_leases import CLAIM, LEASE_LOST, RENEW
from services.runtime.pg_schema import MIGRATIONS, TASK_COLUMNS, task_from_row, text_value
from services.runtime.pg_writes import PostgresWrites
from services.runtime.records import EventRecord, TaskRecord
from services.runtime.states import FINAL_STATES, TaskStatus, check_transition
from services.runtime.store_rules import StatusShortcuts, check_can_continue

__all__ = ["LEASE_LOST", "MIGRATIONS", "PostgresTaskStore"]


class PostgresTaskStore(PostgresWrites, StatusShortcuts):
    """Tasks and events in PostgreSQL. Open with `PostgresTaskStore.open(dsn)`."""

    def __init__(self, pool: Pool, dsn: str, *, replica_id: str, lease_seconds: float) -> None:
        self._pool = pool
        self._dsn = dsn
        self.replica_id = replica_id
        self.lease_seconds = lease_seconds
        # The leases this replica holds: task id -> fencing token.
        self._held: dict[str, int] = {}
        self._records: dict[str, TaskRecord] = {}
        self.live = LiveEvents(dsn, lambda task_id, seq: self._read_events(task_id, seq, 1_000_000), self._heard)
        # The newest seq this replica committed of each task it keeps copies of.
        self._written: dict[str, int] = {}
        # Logs of recently run tasks, as in store.py, read from only while this replica holds
        # the task (only a holder's copy can be complete). An event committed here extends its
        # cached log only when it follows the cached tail; otherwise the copy is dropped. A copy
        # kept from an earlier turn is checked against the row's last_seq when the lease is
        # taken again (`_locked_task`), so another replica's turn in between is never missed.
        self._logs: OrderedDict[str, list[EventRecord]] = OrderedDict()

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 10, replica_id: str = "",
                   lease_seconds: float = 15.0) -> PostgresTaskStore:
        pool = await open_pool(dsn, MIGRATIONS, component="runtime", max_size=pool_size)
        store = cls(pool, dsn, replica_id=replica_id or uuid.uuid4().hex, lease_seconds=lease_seconds)
        store.live.start()
        return store

    async def close(self) -> None:
        """Gives up the leases still held (their turns were stopped by the runner's shutdown),
        so other replicas take the tasks over at once rather than when the leases expire."""
        await self.live.stop()
        if self._held:
            with contextlib.suppress(DuckLMError):
                await self._rows(
                    "UPDATE tasks AS t SET lease_expire = now() FROM unnest(%s::text[], %s::bigint[]) AS h (id, token)"
                    " WHERE t.id = h.id AND t.lease_token = h.token RETURNING t.id",
                    (list(self._held), list(self._held.values())),
                )
        await self._pool.close()

    # -- tasks -------------------------------------------------------------------------------

    async def create_task(self, title: str) -> TaskRecord:
        async with self._transaction() as tx:
            return await self._insert_task(tx, title)

    async def open_task(self, message: dict[str, Any]) -> tuple[TaskRecord, EventRecord]:
        """Creates a task with its first user message, running, in one transaction."""
        async with self._transaction() as tx:
            task = await self._insert_task(tx, str(message["text"]))
            await self._append(tx, task.id, "task_created", {"message": message["text"]})
            user = await self._append(tx, task.id, "user_message", message)
            task = await self._change_status(tx, task, TaskStatus.RUNNING, reason="user_message")
        return task, user

    async def continue_task(self, task_id: str, message: dict[str, Any]) -> tuple[TaskRecord, EventRecord]:
        """Records a new user message and reopens the task only if it is completed (a
        compare-and-set under the row lock); otherwise ABORTED or FAILED_PRECONDITION, as in
        store.py, with nothing recorded."""
        reopened = await self._turn_edge(task_id, TaskStatus.COMPLETED, TaskStatus.RUNNING, "user_message", message,
                                         reason="user_message", token=None)
        if reopened is not None:
            return reopened
        async with self._transaction() as tx:
            task = await self._locked_task(tx, task_id)
            check_can_continue(task)
            user = await self._append(tx, task_id, "user_message", message)
            task = await self._change_status(tx, task, TaskStatus.RUNNING, reason="user_message")
        return task, user

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
        """Appends `events`, then moves the task to `new`, in one transaction; with `expect`,
        only if the status read under the row lock is one of them (else None, nothing written)."""
        async with self._transaction() as tx:
            task = await self._locked_task(tx, task_id)
            if expect is not None and task.status not in expect:
                return None
            check_transition(task.status, new)
            for event_type, data in events:
                await self._append(tx, task_id, event_type, data)
            return await self._change_status(
                tx, task, new, reason=reason, error=error, pending_approval_id=pending_approval_id
            )

    async def fail_task(self, task_id: str, code: str, message: str) -> None:
        """Records an error event and fails the task, in one transaction; only the error is
        recorded when the task already ended (cancelled)."""
        async with self._transaction() as tx:
            task = await self._locked_task(tx, task_id)
            await self._append(tx, task_id, "error", {"code": code, "message": message})
            if task.status not in FINAL_STATES:
                await self._change_status(tx, task, TaskStatus.FAILED, reason=code, error=message)

    async def record_model_call(
        self, task_id: str, data: dict[str, Any], *, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int
    ) -> EventRecord:
        """Appends a model_call event and adds its usage to the task, in one statement."""
        async with self._transaction(single=True) as tx:
            event = await self._append(
                tx, task_id, "model_call", data,
                also=", prompt_tokens = prompt_tokens + %(prompt)s,"
                " completion_tokens = completion_tokens + %(completion)s,"
                " cached_prompt_tokens = cached_prompt_tokens + %(cached)s, update_time = %(time)s",
                args={"prompt": prompt_tokens, "completion": completion_tokens, "cached": cached_prompt_tokens},
            )
            record = self._records.get(task_id)
            if record is not None:
                # The same change as the statement's, to the held row's copy.
                tx.records[task_id] = dataclasses.replace(
                    record, prompt_tokens=record.prompt_tokens + prompt_tokens,
                    completion_tokens=record.completion_tokens + completion_tokens,
                    cached_prompt_tokens=record.cached_prompt_tokens + cached_prompt_tokens,
                    update_time=event.create_time,
                )
        return event

    async def record_step(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
        """Appends one step of the model (a directive, or an output that was not one) and counts
        it in the task's steps, in one statement."""
        async with self._transaction(single=True) as tx:
            event = await self._append(tx, task_id, event_type, data, also=", steps = steps + 1, update_time = %(time)s",
                                       args={})
            record = self._records.get(task_id)
            if record is not None:
                tx.records[task_id] = dataclasses.replace(record, steps=record.steps + 1, update_time=event.create_time)
        return event

    async def complete_turn(self, task_id: str, reply: str, *, final: bool, reason: str) -> TaskRecord:
        """Records the assistant's reply and completes the task, in one transaction."""
        reply = sanitize(reply)
        completed = await self._turn_edge(
            task_id, TaskStatus.RUNNING, TaskStatus.COMPLETED, "assistant_message", {"text": reply, "final": final},
            reason=reason, token=self._held.get(task_id), also=", last_reply = %(reply)s",
            args={"reply": text_value(reply)},
        )
        if completed is not None:
            return completed[0]
        async with self._transaction() as tx:
            task = await self._locked_task(tx, task_id)
            check_transition(task.status, TaskStatus.COMPLETED)
            await self._append(tx, task_id, "assistant_message", {"text": reply, "final": final})
            return await self._change_status(tx, task, TaskStatus.COMPLETED, reason=reason,
                                             also=", last_reply = %(reply)s", args={"reply": text_value(reply)})

    async def rename_task(self, task_id: str, title: str) -> TaskRecord:
        async with self._transaction() as tx:
            row = await tx.one(
                f"UPDATE tasks SET title = %s WHERE id = %s RETURNING {TASK_COLUMNS}", (text_value(title[:200]), task_id)
            )
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        task = task_from_row(row)
        if task_id in self._records:
            self._records[task_id] = task
        return task

    async def delete_task(self, task_id: str) -> None:
        """Deletes a task and its event log (the caller checks it is at rest)."""
        async with self._transaction() as tx:
            row = await tx.one("DELETE FROM tasks WHERE id = %s RETURNING id", (task_id,))
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        self._drop_copies(task_id)

    async def record_reflection(self, experience_ids: list[str], outcome: str, proposal_id: str, model_output: str) -> str:
        reflection_id = uuid.uuid4().hex
        async with self._transaction() as tx:
            await tx.conn.execute(
                "INSERT INTO reflections VALUES (%s, %s, %s, %s, %s, %s)",
                (reflection_id, utc_now(), json.dumps(experience_ids), outcome, proposal_id, text_value(model_output)),
            )
        return reflection_id

    # -- events ------------------------------------------------------------------------------

    async def append_event(self, task_id: str, event_type: str, data: dict[str, Any]) -> EventRecord:
        """Appends and commits one event (one statement), then wakes the task's live subscribers."""
        async with self._transaction(single=True) as tx:
            return await self._append(tx, task_id, event_type, data)

    # -- leases (kept by leases.py) ------------------------------------------------------------

    def held_tasks(self) -> list[str]:
        """The tasks this replica holds the lease of (or held, until it learns otherwise)."""
        return list(self._held)

    async def renew_leases(self) -> list[str]:
        """Extends every lease this replica holds; returns the tasks whose lease it has lost
        (another replica took them over, or they were cancelled); their cached logs are dropped."""
        if not self._held:
            return []
        ids, tokens = list(self._held), [self._held[task_id] for task_id in self._held]
        rows = await self._rows(RENEW, (self.lease_seconds, ids, tokens, self.replica_id))
        kept = {row["id"] for row in rows}
        # Only leases still held with the token renewed: one released or taken again meanwhile
        # by this replica is not lost.
        lost = [task_id for task_id, token in zip(ids, tokens, strict=True)
                if task_id not in kept and self._held.get(task_id) == token]
        for task_id in lost:
            self._drop_copies(task_id)
        return lost

    def forget_lease(self, task_id: str) -> None:
        """Stops renewing a lease that was lost (once no local turn can still write with it)."""
        self._held.pop(task_id, None)
        self._drop_copies(task_id)

    async def claim_expired(self, limit: int = 20) -> list[TaskRecord]:
        """Takes over tasks mid-turn whose lease has expired (their replica died or lost the
        database), oldest first; rows another replica is claiming at once are skipped."""
        async with self._transaction() as tx:
            cursor = await tx.conn.execute(CLAIM, (self.replica_id, self.lease_seconds, limit))
            rows = await cursor.fetchall()
            for row in rows:
                tx.leases[row["id"]] = row["lease_token"]
                tx.records[row["id"]] = task_from_row(row)
        # The claimed logs are read afresh: the old holder wrote them.
        for row in rows:
            self._logs.pop(row["id"], None)
        return [task_from_row(row) for row in rows]
