"""A model server that misbehaves on purpose, on the chat endpoint and on llama-server's native
/completion (which it serves without /tokenize, so prompts come as text): endless or huge output, chunks past max_tokens,
stalls, and arbitrary bytes. Real HTTP (uvicorn on a free port), so the runtime's one HTTP
client meets it exactly as it would meet a broken llama-server. It records the client port of
every request, so a test can tell whether calls shared a connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from services.common.testing import LocalHttpServer, free_port


def chunk(text: str) -> str:
    return "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}) + "\n\n"


def native_chunk(text: str) -> str:
    """A chunk of llama-server's native /completion stream."""
    return "data: " + json.dumps({"content": text, "stop": False}) + "\n\n"


@dataclass
class FaultyModel:
    # What to do with the next request: "text" (send `text` in `piece`-sized chunks, then
    # [DONE]), "endless" (send `piece` forever, `interval` apart), "stall" (send one chunk,
    # then nothing), "raw" (send `raw` lines as they are).
    mode: str = "text"
    text: str = '{"action": "respond", "message": "ok"}'
    piece: int = 8
    interval: float = 0.0
    raw: list[str] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)
    port: int = 0
    _http: LocalHttpServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _completions(self, request: Request) -> Response:
        await request.body()
        if request.client is not None:
            self.client_ports.append(request.client.port)
        mode, text, piece, interval, raw = self.mode, self.text, self.piece, self.interval, list(self.raw)
        native = request.url.path == "/completion"
        piece_of = native_chunk if native else chunk

        async def stream() -> AsyncIterator[str]:
            if mode == "endless":
                while True:
                    yield piece_of(text)
                    await asyncio.sleep(interval)
            if mode == "stall":
                yield piece_of(text[:piece])
                await asyncio.sleep(3600)
            if mode == "raw":
                for line in raw:
                    yield line
                return
            for start in range(0, len(text), piece):
                yield piece_of(text[start : start + piece])
                if interval:
                    await asyncio.sleep(interval)
            if native:
                yield "data: " + json.dumps({"content": "", "stop": True, "stop_type": "eos",
                                             "timings": {"prompt_n": 3, "cache_n": 0, "predicted_n": 2}}) + "\n\n"
                return
            yield "data: " + json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def start(self, port: int = 0) -> None:
        self.port = port or free_port()
        app = Starlette(routes=[
            Route("/v1/chat/completions", self._completions, methods=["POST"]),
            Route("/completion", self._completions, methods=["POST"]),
        ])
        # Stopped abruptly: a model server that dies, connections and all.
        self._http = LocalHttpServer(app, self.port, abrupt=True)
        await self._http.start()

    async def stop(self) -> None:
        assert self._http is not None
        await self._http.stop()
