"""An instant OpenAI-compatible model server for throughput benchmarks, run as its own process.

It answers every POST /v1/chat/completions at once with the same streamed directive (a reply
that ends the turn), and every GET with 200, over HTTP/1.1 keep-alive. It is plain asyncio
streams, not a web framework, so the model side costs almost nothing and the benchmark measures
the runtime. It must never be used in place of the real model outside benchmarks.

    python scripts/bench/instant_model.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

REPLY = '{"action": "respond", "message": "ok"}'


def _event(payload: dict[str, object]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _completion_body() -> bytes:
    chunks = [
        _event({"choices": [{"index": 0, "delta": {"content": REPLY}, "finish_reason": None}]}),
        _event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        _event({
            "choices": [],
            "usage": {"prompt_tokens": 50, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 45}},
            "timings": {"prompt_n": 5, "cache_n": 45, "predicted_n": 9, "prompt_ms": 0.1, "predicted_ms": 0.1},
        }),
        "data: [DONE]\n\n",
    ]
    return "".join(chunks).encode()


COMPLETION = _completion_body()
COMPLETION_HEAD = (
    f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {len(COMPLETION)}\r\n\r\n"
).encode()
EMPTY = b'{"data": []}'
OTHER_HEAD = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(EMPTY)}\r\n\r\n".encode()


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            if lines[0].startswith("POST") and "/chat/completions" in lines[0]:
                writer.write(COMPLETION_HEAD + COMPLETION)
            else:
                writer.write(OTHER_HEAD + EMPTY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(_serve_connection, "127.0.0.1", port, backlog=1024)
    print(f"instant model listening on port {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
