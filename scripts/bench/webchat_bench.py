"""WebChat benchmark: how long after the model server sends a reply's first token the page
shows it, through the whole real path (runtime, gateway SSE, the browser's parser and DOM).
Target: within 10 ms of the runtime's own first token.

First, without a browser: how long after the runtime's own first token (the moment it publishes
the reply's first characters, the create_time of that `model_token` event) a client reading
`POST /v1/chat` as Server-Sent Events through the gateway receives it. Target: within 20 ms.

The model is a small OpenAI-compatible fake in this process (instant, so only DuckLM's own path
is measured); it notes the wall-clock time it sends each reply's first token, and the page
notes the wall-clock time (performance.timeOrigin + now()) the first text appears in the reply
bubble. Both clocks are this machine's. Also prints the size of the page's first load.

    .venv/bin/python scripts/bench/webchat_bench.py [--runs 15] [--sse-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx
from playwright.async_api import async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.common.testing import LocalHttpServer, free_port
from tests.gateway.conftest import CHROMIUM_FLAGS, chromium_path, scripted_stack
from tests.gateway.test_pages import first_load_files
from tests.scripted_model import ScriptedModel

TARGET_MS = 10.0
TARGET_SSE_MS = 20.0
REPLY = json.dumps({"action": "respond", "message": "Quack! This is the reply, streamed in pieces."})
# Installed before each send: notes when the reply bubble first shows any text.
WATCH_FIRST_TEXT = """
() => {
  window.__firstText = null;
  const observer = new MutationObserver(() => {
    const bubble = document.querySelector("#log .msg.assistant.streaming");
    if (bubble && bubble.textContent.length) {
      window.__firstText = performance.timeOrigin + performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document.getElementById("log"), { childList: true, subtree: true, characterData: true });
}
"""


class TimedModel:
    """Streams REPLY a few characters at a time; `first_token` holds each reply's send time."""

    def __init__(self) -> None:
        self.port = free_port()
        self.first_token: list[float] = []
        self._http: LocalHttpServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _completions(self, request: Request) -> Response:
        await request.json()

        async def stream() -> AsyncIterator[str]:
            for start in range(0, len(REPLY), 8):
                if start == 0:
                    self.first_token.append(time.time() * 1000)
                chunk = {"choices": [{"index": 0, "delta": {"content": REPLY[start : start + 8]}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            yield 'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def _embeddings(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return JSONResponse({"data": [{"index": i, "embedding": [1.0, 0.5, 0.25]} for i in range(len(inputs))]})

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )
        self._http = LocalHttpServer(app, self.port)
        await self._http.start()

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.stop()


def _epoch_ms(stamp: str) -> float:
    """An event's create_time (RFC 3339, up to nanoseconds) as milliseconds since the epoch."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction or '0')[:6]:0<6}+00:00").timestamp() * 1000


async def sse_first_token(client: httpx.AsyncClient, message: str) -> tuple[float, float]:
    """Sends `message` as a streamed chat; returns (when the runtime published the reply's first
    characters, when this client received them), both in ms since the epoch."""
    async with client.stream("POST", "/v1/chat", json={"message": message, "stream": True}) as response:
        response.raise_for_status()
        event, first = "", None
        # Read to the end of the turn, so the next run starts on a quiet stack.
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif first is None and line.startswith("data: ") and event == "model_token":
                received = time.time() * 1000
                data = json.loads(line[6:])
                if data["data"].get("reply"):
                    first = _epoch_ms(data["create_time"]), received
    if first is not None:
        return first
    raise RuntimeError("the stream ended without a reply token")


async def measure_sse(url: str, model: TimedModel, runs: int) -> None:
    lags, from_model = [], []
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Content-Type": "application/json"}) as client:
        for run in range(runs + 1):
            published, received = await sse_first_token(client, f"Say something, please (SSE {run})")
            if run:  # the first run warms every connection up
                lags.append(received - published)
                from_model.append(received - model.first_token[-1])
    median, worst = statistics.median(lags), max(lags)
    p90 = statistics.quantiles(lags, n=10)[-1] if len(lags) >= 10 else worst
    verdict = "reached" if median <= TARGET_SSE_MS else "NOT reached"
    print(
        f"SSE client first token after the runtime's own first token (POST /v1/chat through the gateway): "
        f"median {median:.1f} ms, p90 {p90:.1f} ms, max {worst:.1f} ms over {len(lags)} runs   "
        f"(target <= {TARGET_SSE_MS:.0f} ms: {verdict})"
    )
    print(f"  after the model server sent it: median {statistics.median(from_model):.1f} ms")


async def main(runs: int, sse_only: bool) -> int:
    total = sum(path.stat().st_size for path in first_load_files())
    print(f"WebChat first load (HTML, JS, CSS): {total / 1024:.1f} KB   (target <= 300 KB)")
    model = TimedModel()
    await model.start()
    lags: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="ducklm-webchat-bench-") as data:
            print("starting the stack", flush=True)
            async with scripted_stack(Path(data), cast(ScriptedModel, model)) as stack:
                await measure_sse(stack.url, model, runs)
                if sse_only:
                    return 0
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=await asyncio.to_thread(chromium_path), args=CHROMIUM_FLAGS
                    )
                    page = await browser.new_page()
                    await page.goto(stack.url)
                    print("page loaded", flush=True)
                    for run in range(runs + 1):
                        await page.click("#new-chat")
                        await page.evaluate(WATCH_FIRST_TEXT)
                        await page.fill("#input", f"Say something, please ({run})")
                        await page.press("#input", "Enter")
                        # The page itself notes the time, so how often this looks does not change it.
                        while (seen := await page.evaluate("window.__firstText")) is None:
                            await asyncio.sleep(0.01)
                        await page.locator(".reply-actions").last.wait_for()
                        if run:  # the first run warms every connection up
                            lags.append(float(seen) - model.first_token[-1])
                    await browser.close()
    finally:
        await model.stop()
    median, worst = statistics.median(lags), max(lags)
    p90 = statistics.quantiles(lags, n=10)[-1] if len(lags) >= 10 else worst
    verdict = "reached" if median <= TARGET_MS else "NOT reached"
    print(
        f"page first token after the model's first token: median {median:.1f} ms, p90 {p90:.1f} ms, "
        f"max {worst:.1f} ms over {len(lags)} runs   (target <= {TARGET_MS:.0f} ms: {verdict})"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sse-only", action="store_true", help="only the SSE figure (no browser)")
    arguments = parser.parse_args()
    raise SystemExit(asyncio.run(main(arguments.runs, arguments.sse_only)))
