"""The runtime's HTTP connections to model servers, against real local HTTP servers: its own
three failures (never a library's, and never a TimeoutError a caller's deadline could be taken
for), and a POST the server dropped unanswered sent once more."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from services.common.testing import free_port
from services.runtime.model_http import ConnectFailed, HttpFailure, ModelHttp, TimedOut
from tests.http_stub import http_stub


async def test_a_closed_port_is_a_connect_failure() -> None:
    http = ModelHttp()
    try:
        with pytest.raises(ConnectFailed):
            await http.get(f"http://127.0.0.1:{free_port()}/v1/models", timeout=2.0)
    finally:
        await http.close()


async def test_a_silent_server_times_out_as_its_own_failure_not_a_timeout_error() -> None:
    release = asyncio.Event()

    async def silent(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    async with http_stub(silent) as base:
        http = ModelHttp()
        try:
            with pytest.raises(TimedOut) as caught:
                async with http.stream(f"{base}/completion", json_body={}, timeout=0.2) as reply:
                    async for _ in reply.text_pieces():
                        pass
            assert not isinstance(caught.value, TimeoutError)
        finally:
            release.set()
            await http.close()


async def test_a_post_the_server_dropped_is_sent_once_more_and_a_second_drop_fails() -> None:
    seen: list[int] = []
    drops = {"left": 1}

    async def flaky(request: web.Request) -> web.Response:
        seen.append(len(await request.read()))
        if drops["left"]:
            drops["left"] -= 1
            assert request.transport is not None
            request.transport.close()  # as a server closing a kept-alive connection
        return web.json_response({"tokens": [1, 2]})

    async with http_stub(flaky) as base:
        http = ModelHttp()
        try:
            reply = await http.post(f"{base}/tokenize", json_body={"content": "a b"}, timeout=5.0)
            assert reply.status == 200 and reply.json() == {"tokens": [1, 2]} and len(seen) == 2
            drops["left"] = 2
            with pytest.raises(HttpFailure):
                await http.post(f"{base}/tokenize", json_body={"content": "a b"}, timeout=5.0)
        finally:
            await http.close()


async def test_a_body_split_inside_a_character_comes_whole() -> None:
    async def split(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        encoded = "data: é€\n\n".encode()
        for index in range(len(encoded)):
            await response.write(encoded[index : index + 1])
        await response.write_eof()
        return response

    async with http_stub(split) as base:
        http = ModelHttp()
        try:
            async with http.stream(f"{base}/completion", json_body={}, timeout=5.0) as reply:
                text = "".join([piece async for piece in reply.text_pieces()])
            assert reply.status == 200 and text == "data: é€\n\n"
        finally:
            await http.close()
