"""OpenTelemetry traces for every DuckLM process: one trace per task (task_trace.py), across the
gateway, the runtime's loop, the tools, memory and the model calls.

Off by default. `DUCKLM_OTEL_ENDPOINT` (an OTLP/gRPC collector, e.g. http://127.0.0.1:4317)
turns it on for each process that `configure_tracing` is called in (every service's `serve()`
and the gateway's main). While it is off, no span is recorded and no gRPC interceptor is added:
the spans below cost no more than a no-op context manager.

Span and attribute names follow OpenTelemetry's GenAI conventions where they apply
(`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`, ...), and its RPC
and HTTP conventions for the calls between services (trace_interceptors.py, the gateway's
middleware). Spans carry ids, sizes and timings, never a prompt, a reply, a token or a secret.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

__all__ = [
    "ENDPOINT_VARIABLE",
    "clean_attributes",
    "configure_tracing",
    "mark_failed",
    "model_call_span",
    "span",
    "traced",
    "tracer",
    "tracing_on",
]

T = TypeVar("T")
ENDPOINT_VARIABLE = "DUCKLM_OTEL_ENDPOINT"

tracer = trace.get_tracer("ducklm")


def tracing_on() -> bool:
    """Whether spans are recorded in this process (an SDK tracer provider is installed)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> Callable[[], Awaitable[None]] | None:
    """Exports this process's spans over OTLP when `DUCKLM_OTEL_ENDPOINT` is set; returns the
    shutdown (flushes what is left), or None when tracing stays off."""
    endpoint = (os.environ if environ is None else environ).get(ENDPOINT_VARIABLE, "").strip()
    if not endpoint or tracing_on():
        return None
    # Imported only when asked for: the exporter pulls in its own gRPC and protobuf modules.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": f"ducklm-{service}"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://")))
    )
    trace.set_tracer_provider(provider)

    async def shutdown() -> None:
        provider.shutdown()

    return shutdown


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL) -> Iterator[Span]:
    """A child span of the current one for the `with` block; an exception marks it failed."""
    with tracer.start_as_current_span(name, kind=kind, attributes=clean_attributes(attributes)) as current:
        yield current


async def traced(name: str, attributes: Mapping[str, Any], work: Coroutine[Any, Any, T]) -> T:
    """Awaits `work` inside a span (for a coroutine handed to asyncio.create_task)."""
    with span(name, attributes):
        return await work


def model_call_span(
    operation: str, *, model: str, role: str, latency_ms: float, input_tokens: int, output_tokens: int,
    cached_input_tokens: int = 0, finish_reason: str = "", conversation_id: str = "", purpose: str = "",
) -> None:
    """Records a model call that has just ended as a span of the current one, timed back from now
    by its latency (so the model clients need no change to be traced)."""
    if not tracing_on():
        return
    end = time.time_ns()
    attributes = clean_attributes({
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": "llama.cpp",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        "gen_ai.usage.cache_read.input_tokens": cached_input_tokens,
        "gen_ai.response.finish_reasons": [finish_reason] if finish_reason else None,
        "gen_ai.conversation.id": conversation_id,
        "ducklm.model.role": role,
        "ducklm.model.purpose": purpose,
    })
    started = tracer.start_span(
        f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attributes, start_time=end - int(latency_ms * 1e6)
    )
    started.end(end_time=end)


def mark_failed(current: Span, message: str) -> None:
    current.set_status(Status(StatusCode.ERROR, message[:200]))


def clean_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only values a span can hold; empty strings and None are left out."""
    return {key: value for key, value in (attributes or {}).items() if value is not None and value != ""}
