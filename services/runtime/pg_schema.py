"""The PostgreSQL schema of the runtime's tasks (versioned migrations), the statements the
store shares, and how rows become records. Read-only shapes: nothing here connects or writes;
that is pg_store.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.common.postgres import Migration
from services.runtime import records
from services.runtime.model_text import sanitize
from services.runtime.pg_events import CHANNEL
from services.runtime.records import EventRecord, TaskRecord

__all__ = ["APPEND", "CHANGE_STATUS", "MIGRATIONS", "TASK_COLUMNS", "TURN_EDGE", "Row", "event_from_row", "task_from_row", "text_value"]

MIGRATIONS = (
    Migration(
        1,
        "tasks, events and reflections",
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            title TEXT NOT NULL,
            create_time TIMESTAMPTZ NOT NULL,
            update_time TIMESTAMPTZ NOT NULL,
            last_reply TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            steps INTEGER NOT NULL DEFAULT 0,
            prompt_tokens BIGINT NOT NULL DEFAULT 0,
            completion_tokens BIGINT NOT NULL DEFAULT 0,
            cached_prompt_tokens BIGINT NOT NULL DEFAULT 0,
            pending_approval_id TEXT NOT NULL DEFAULT '',
            -- The seq of the task's newest event: the next append takes last_seq + 1 under the
            -- row lock, so seqs stay gap-free with several writers.
            last_seq INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX tasks_by_time ON tasks (create_time DESC, id);
        CREATE INDEX tasks_by_status ON tasks (status, create_time);
        CREATE TABLE events (
            task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            create_time TIMESTAMPTZ NOT NULL,
            -- JSON text exactly as written (not jsonb, which would reorder the keys).
            data TEXT NOT NULL,
            PRIMARY KEY (task_id, seq)
        );
        CREATE TABLE reflections (
            id TEXT PRIMARY KEY,
            create_time TIMESTAMPTZ NOT NULL,
            experience_ids TEXT NOT NULL,
            outcome TEXT NOT NULL,
            proposal_id TEXT NOT NULL,
            model_output TEXT NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "task leases and event notifications",
        f"""
        ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        ALTER TABLE tasks ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE tasks ADD COLUMN lease_expire TIMESTAMPTZ;
        CREATE INDEX tasks_by_lease ON tasks (lease_expire) WHERE status IN ('pending', 'running');
        -- One notification per statement and task ("<task_id> <first seq> <last seq>"), not
        -- per event: a turn's edge appends two events in one statement.
        CREATE FUNCTION ducklm_announce_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', task_id || ' ' || min(seq) || ' ' || max(seq))
                FROM added GROUP BY task_id;
            RETURN NULL;
        END $$;
        CREATE TRIGGER events_announce AFTER INSERT ON events REFERENCING NEW TABLE AS added
            FOR EACH STATEMENT EXECUTE FUNCTION ducklm_announce_events();
        """,
    ),
)

TASK_COLUMNS = (
    "id, status, title, create_time, update_time, last_reply, error, steps, prompt_tokens,"
    " completion_tokens, cached_prompt_tokens, pending_approval_id, lease_token"
)
# Appends one event: takes the task's row lock and its next seq in the same statement; with a
# token (a task this replica holds), only while the lease is still that token. `{set}`: more
# of the task's columns changed with it (", steps = steps + 1").
APPEND = (
    "WITH t AS (UPDATE tasks SET last_seq = last_seq + 1{set} WHERE id = %(task_id)s"
    " AND (%(token)s::bigint IS NULL OR lease_token = %(token)s) RETURNING last_seq)"
    " INSERT INTO events (task_id, seq, type, create_time, data)"
    " SELECT %(task_id)s, last_seq, %(type)s, %(time)s, %(data)s FROM t RETURNING seq"
)
# Changes a task's status (and `{set}`: more columns) and appends its status_changed event, in
# one statement; the caller holds the row lock and has checked the transition and the lease.
CHANGE_STATUS = (
    "WITH t AS (UPDATE tasks SET status = %(status)s, update_time = %(time)s,"
    " error = CASE WHEN %(error)s != '' THEN %(error)s ELSE error END,"
    " pending_approval_id = %(pending)s, last_seq = last_seq + 1{set} WHERE id = %(task_id)s RETURNING *),"
    " e AS (INSERT INTO events (task_id, seq, type, create_time, data)"
    " SELECT id, last_seq, 'status_changed', %(time)s, %(data)s FROM t)"
    f" SELECT {TASK_COLUMNS}, last_seq FROM t"
)

Row = dict[str, Any]


def text_value(value: str) -> str:
    """A string PostgreSQL's TEXT accepts: no NUL (it has none), no lone surrogate."""
    return sanitize(value).replace("\x00", "\ufffd")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def task_from_row(row: Row) -> TaskRecord:
    return records.task_from_row(row, _utc)


def event_from_row(row: Row) -> EventRecord:
    return records.event_from_row(row, _utc)


# The edge of a turn in one statement, the common case (no transaction around it): moves a task
# from %(from)s to %(to)s only if it is there (and, with a token, still under that lease),
# appending the event that causes it and its status_changed. {set}: the lease and more columns.
TURN_EDGE = (
    "WITH t AS (UPDATE tasks SET status = %(to)s, update_time = %(time)s, pending_approval_id = '',"
    " last_seq = last_seq + 2{set} WHERE id = %(task_id)s AND status = %(from)s"
    " AND (%(token)s::bigint IS NULL OR lease_token = %(token)s) RETURNING *),"
    " a AS (INSERT INTO events (task_id, seq, type, create_time, data)"
    " SELECT id, last_seq - 1, %(type)s, %(time)s, %(data)s FROM t),"
    " s AS (INSERT INTO events (task_id, seq, type, create_time, data)"
    " SELECT id, last_seq, 'status_changed', %(time)s, %(status_data)s FROM t)"
    f" SELECT {TASK_COLUMNS}, last_seq FROM t"
)
