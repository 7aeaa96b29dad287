"""A scripted OpenAI-compatible model server for tests that must control which action the model
picks. It answers /v1/chat/completions (streamed, as llama-server does) with the next output a
test laid down, and records every request so tests can inspect prompts and schemas.

Never a stand-in for the real model in end-to-end tests: those use llama-server.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from services.common.testing import LocalHttpServer, free_port


@dataclass
class ScriptedModel:
    outputs: deque[str] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # GET /v1/models requests seen (the runtime's health probes); answered 404 as before.
    probes: int = 0
    # Used when the script runs dry.
    fallback: str = '{"action": "respond", "message": "(script ran dry)"}'
    port: int = 0
    _http: LocalHttpServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, outputs: Iterable[str | dict[str, Any]]) -> None:
        for output in outputs:
            self.outputs.append(output if isinstance(output, str) else json.dumps(output))

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        text = self.outputs.popleft() if self.outputs else self.fallback
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))

        async def stream() -> AsyncIterator[str]:
            for start in range(0, len(text), 8):
                chunk = {"choices": [{"index": 0, "delta": {"content": text[start : start + 8]}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(final)}\n\n"
            usage = {
                "choices": [],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()), "prompt_tokens_details": {"cached_tokens": 0}},
                "timings": {"prompt_n": prompt_tokens, "cache_n": 0, "predicted_n": len(text.split()), "prompt_ms": 0.1, "predicted_ms": 0.1},
            }
            yield f"data: {json.dumps(usage)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"index": i, "embedding": [float(len(text)), 1.0, 0.5]} for i, text in enumerate(inputs)]
        return JSONResponse({"data": data, "model": body.get("model", "scripted")})

    async def _models(self, request: Request) -> Response:
        self.probes += 1
        return PlainTextResponse("Not Found", status_code=404)

    def _routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self._completions, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
        ]

    def _next_port(self) -> int:
        """The port each start serves on: a fresh one (a restartable subclass keeps its first)."""
        return free_port()

    async def start(self) -> None:
        self.port = self._next_port()
        self._http = LocalHttpServer(Starlette(routes=self._routes()), self.port)
        await self._http.start()

    async def stop(self) -> None:
        assert self._http is not None
        await self._http.stop()
