"""A stub OpenAI-compatible model server whose flaws a test chooses: it may ignore
`response_format`, report a small context window, leave out llama-server's /props, /tokenize
and `timings`, or embed at any dimension. The doctor must name each flaw.

Never a stand-in for the real model where a test needs one: the default-stack test uses
llama-server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.common.testing import LocalHttpServer, free_port

_PROSE = "Ducks are lovely birds that like water."
_VALID = '{"answer": "yes", "colour": "green"}'


@dataclass
class StubModel:
    model_id: str = "stub-model"
    # Other models /v1/models lists besides model_id, as a multi-model server does.
    others: tuple[str, ...] = ()
    honours_schema: bool = True
    # None: no /props at all, as on servers other than llama-server.
    n_ctx: int | None = 8192
    timings: bool = True
    tokenize: bool = True
    embedding_dimension: int = 16
    port: int = 0
    _http: LocalHttpServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _reply_text(self, body: dict[str, Any]) -> str:
        return _VALID if self.honours_schema and body.get("response_format") else _PROSE

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        text = self._reply_text(body)
        if not body.get("stream"):
            return JSONResponse({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})

        async def stream() -> AsyncIterator[str]:
            for word in text.split(" "):
                yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': word + ' '}}]})}\n\n"
            final: dict[str, Any] = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            if self.timings:
                final["timings"] = {"prompt_n": 5, "cache_n": 0, "predicted_n": 5, "prompt_ms": 1.0, "predicted_ms": 1.0}
            yield f"data: {json.dumps(final)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def _models(self, request: Request) -> Response:
        ids = [self.model_id, *self.others]
        return JSONResponse({"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vector = [0.5] * self.embedding_dimension
        return JSONResponse({"data": [{"index": i, "embedding": vector} for i in range(len(texts))], "model": self.model_id})

    async def _props(self, request: Request) -> Response:
        if self.n_ctx is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse({"default_generation_settings": {"n_ctx": self.n_ctx}, "total_slots": 1})

    async def _tokenize(self, request: Request) -> Response:
        if not self.tokenize:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse({"tokens": [1, 2]})

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/props", self._props, methods=["GET"]),
                Route("/tokenize", self._tokenize, methods=["POST"]),
            ]
        )
        self.port = free_port()
        self._http = LocalHttpServer(app, self.port, log_level="warning")
        await self._http.start()

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.stop()
