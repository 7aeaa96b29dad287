"""The runtime's own Prometheus metrics: model calls (latency, time to first token, tokens, prompt
cache hits, failures), embeddings, tool calls and how tasks end. gRPC call metrics come from
services/common/metrics.py; this module only defines what the agent loop adds.

The loop calls the `observe_*` functions; they never raise and never take a task id or any
other unbounded value as a label.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "observe_embedding",
    "observe_model_call",
    "observe_model_error",
    "observe_task_outcome",
    "observe_tool_call",
]

# Seconds: a 135M model answers in well under a second; a large one on a CPU takes minutes.
MODEL_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)

MODEL_CALLS = Counter("ducklm_model_calls", "Chat completions the runtime made, by role.", ["role"])
MODEL_ERRORS = Counter(
    "ducklm_model_errors",
    "Model calls that failed (server unreachable, HTTP error, timeout), by role and kind.",
    ["role", "kind"],
)
MODEL_LATENCY = Histogram(
    "ducklm_model_call_seconds",
    "Wall time of one chat completion, request to last token.",
    ["role"],
    buckets=MODEL_LATENCY_BUCKETS,
)
MODEL_FIRST_TOKEN = Histogram(
    "ducklm_model_first_token_seconds",
    "Time from sending a chat completion to its first streamed token.",
    ["role"],
    buckets=MODEL_LATENCY_BUCKETS,
)
MODEL_TOKENS = Counter(
    "ducklm_model_tokens",
    "Tokens by role and kind: prompt, completion, and cached (prompt tokens served from the "
    "model server's prompt cache).",
    ["role", "kind"],
)
PROMPT_CACHE_HITS = Counter(
    "ducklm_model_prompt_cache_hits",
    "Model calls that reused at least one cached prompt token, by role.",
    ["role"],
)
EMBEDDING_LATENCY = Histogram(
    "ducklm_embedding_seconds",
    "Wall time of one embeddings request.",
    buckets=MODEL_LATENCY_BUCKETS,
)
EMBEDDED_TEXTS = Counter("ducklm_embedded_texts", "Texts embedded.")
TOOL_CALLS = Counter(
    "ducklm_tool_calls",
    "Tool calls the loop made, by tool and outcome (ok, error, denied).",
    ["tool", "outcome"],
)
TASK_OUTCOMES = Counter(
    "ducklm_task_outcomes",
    "Turns that came to rest, by the status they rested in (completed, failed, cancelled, waiting_approval).",
    ["status"],
)


def observe_model_call(
    role: str,
    latency_ms: float,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
    first_token_ms: float | None = None,
) -> None:
    """One finished chat completion (see `ModelCall` in model_client.py for the figures)."""
    MODEL_CALLS.labels(role).inc()
    MODEL_LATENCY.labels(role).observe(max(latency_ms, 0.0) / 1000)
    if first_token_ms is not None:
        MODEL_FIRST_TOKEN.labels(role).observe(max(first_token_ms, 0.0) / 1000)
    MODEL_TOKENS.labels(role, "prompt").inc(max(prompt_tokens, 0))
    MODEL_TOKENS.labels(role, "completion").inc(max(completion_tokens, 0))
    MODEL_TOKENS.labels(role, "cached").inc(max(cached_tokens, 0))
    if cached_tokens > 0:
        PROMPT_CACHE_HITS.labels(role).inc()


def observe_model_error(role: str, kind: str) -> None:
    """A model call that failed; `kind` is a short word such as "unreachable" or "http"."""
    MODEL_ERRORS.labels(role, kind).inc()


def observe_embedding(latency_ms: float, texts: int) -> None:
    EMBEDDING_LATENCY.observe(max(latency_ms, 0.0) / 1000)
    EMBEDDED_TEXTS.inc(max(texts, 0))


def observe_tool_call(tool: str, outcome: str) -> None:
    """One tool call; `outcome` is "ok", "error" or "denied"."""
    TOOL_CALLS.labels(tool, outcome).inc()


def observe_task_outcome(status: str) -> None:
    """A turn came to rest in `status` (a TaskStatus value such as "completed")."""
    TASK_OUTCOMES.labels(status.lower()).inc()
