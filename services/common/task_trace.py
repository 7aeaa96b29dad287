"""One trace per task: the trace id of every span recorded for a task is derived from its task id,
so each turn, each resume after an approval or a restart, and each later request about the task
land in the same trace, in whichever process and replica records them, with nothing stored.

A task id is 32 hex digits (a UUID's), which is exactly a W3C trace id: the trace is then the
task id itself, and a trace viewer finds a task's trace by its id. Any other id is hashed to one.
Spans of the task are children of the task's root context, a remote parent that no process
records (a viewer shows the turns as the trace's top spans). Where a span has a parent of its
own in another trace (the request that opened the task, a client's `traceparent`), that parent
becomes a span link, so both traces lead to each other.

Holds no exporter and no setting (tracing.py); never records anything while tracing is off.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags

from services.common.tracing import clean_attributes, tracer, tracing_on

__all__ = ["record_task_span", "task_context", "task_span", "task_trace_id"]

_HEX_ID = re.compile(r"[0-9a-f]{32}")


def task_trace_id(task_id: str) -> int:
    """The trace id of `task_id`'s trace: the id itself when it is 32 hex digits, else a hash."""
    if _HEX_ID.fullmatch(task_id) and int(task_id, 16):
        return int(task_id, 16)
    return int.from_bytes(hashlib.sha256(f"trace:{task_id}".encode()).digest()[:16], "big") or 1


def _root_span_id(task_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"root:{task_id}".encode()).digest()[:8], "big") or 1


def task_context(task_id: str) -> otel_context.Context:
    """A context whose current span is the task's root (remote, sampled): the parent for spans of
    the task."""
    root = SpanContext(task_trace_id(task_id), _root_span_id(task_id), is_remote=True,
                       trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(root))


def _links_to(current: SpanContext, trace_id: int) -> list[Link]:
    """The caller's span as a link when it is a real span of another trace."""
    if current.is_valid and current.trace_id != trace_id:
        return [Link(current)]
    return []


@contextmanager
def task_span(
    name: str, task_id: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL,
    context: otel_context.Context | None = None,
) -> Iterator[Span]:
    """A span of `task_id`'s trace, current for the `with` block. Its parent is the span of
    `context` (default: the current one) when that is already in the task's trace; else the
    task's root, with that span linked."""
    trace_id = task_trace_id(task_id)
    caller_context = otel_context.get_current() if context is None else context
    caller = trace.get_current_span(caller_context).get_span_context()
    parent = caller_context if caller.trace_id == trace_id else task_context(task_id)
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=clean_attributes(attributes), links=_links_to(caller, trace_id),
    ) as started:
        yield started


def record_task_span(
    name: str, task_id: str, attributes: Mapping[str, Any] | None = None, *, start_s: float, end_s: float,
) -> None:
    """Records a span of `task_id`'s trace that has already ended, timed by what a store noted
    (epoch seconds): a wait that no code was running for, e.g. for a person's decision. The
    current span, the call that ended the wait, is linked."""
    if not tracing_on():
        return
    caller = trace.get_current_span().get_span_context()
    ended = tracer.start_span(
        name, context=task_context(task_id), attributes=clean_attributes(attributes),
        links=_links_to(caller, task_trace_id(task_id)), start_time=int(start_s * 1e9),
    )
    ended.end(end_time=int(max(end_s, start_s) * 1e9))
