"""ModelClient against a misbehaving server over real HTTP: caps on output and wall time end
the call as cut off (repairable), a silent server times out as a timeout, bad bytes never
crash, and calls reuse one pooled connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from services.common.errors import DeadlineExceeded, Unavailable
from services.common.testing import free_port
from services.runtime.completion_client import LlamaCompletions
from services.runtime.model_client import ModelClient
from services.runtime.models_config import ModelsConfig, RoleConfig
from tests.runtime.faulty_model import FaultyModel, chunk

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def faulty() -> AsyncIterator[FaultyModel]:
    model = FaultyModel()
    await model.start()
    try:
        yield model
    finally:
        await model.stop()


def client(model: FaultyModel, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
           **role: object) -> ModelClient:
    settings = {"endpoint": model.endpoint, "model": "faulty", "max_tokens": 64, **role}
    return ModelClient(ModelsConfig(roles={"chat": RoleConfig.model_validate(settings)}), sleep=sleep)


async def test_calls_share_one_pooled_connection(faulty: FaultyModel) -> None:
    models = client(faulty)
    try:
        for _ in range(3):
            call = await models.chat("chat", MESSAGES)
            assert call.text == faulty.text and not call.cut_off
    finally:
        await models.close()
    assert len(faulty.client_ports) == 3
    assert len(set(faulty.client_ports)) == 1, faulty.client_ports


async def test_native_completions_share_one_pooled_connection(faulty: FaultyModel) -> None:
    models = client(faulty)
    native = LlamaCompletions(models.config, http=models.http, pool=models.pool)
    try:
        for _ in range(3):
            call = await native.complete("chat", "Answer:", max_tokens=16, session="task-1")
            assert call.text == faulty.text and call.stop_type == "eos" and call.timings["prompt_n"] == 3
    finally:
        await models.close()
    completions = faulty.client_ports[-3:]
    assert len(set(completions)) == 1, faulty.client_ports


async def test_the_native_stream_has_the_same_caps(faulty: FaultyModel) -> None:
    faulty.mode, faulty.text = "endless", "x" * 100
    models = client(faulty, max_output_chars=5000, max_call_seconds=30)
    native = LlamaCompletions(models.config, http=models.http, pool=models.pool)
    try:
        call = await native.complete("chat", "Answer:", max_tokens=1000)
        assert "max_output_chars=5000" in call.cut_off and len(call.text) == 5000
        faulty.text, faulty.interval = "z", 0.01
        timed = client(faulty, max_tokens=100_000, max_call_seconds=0.3, timeout_seconds=30)
        slow = LlamaCompletions(timed.config, http=timed.http, pool=timed.pool)
        try:
            assert "max_call_seconds=0.3" in (await slow.complete("chat", "Answer:", max_tokens=100_000)).cut_off
        finally:
            await timed.close()
    finally:
        await models.close()


async def test_output_past_the_character_cap_is_cut_off(faulty: FaultyModel) -> None:
    faulty.mode, faulty.text = "endless", "x" * 100
    tokens: list[str] = []

    async def on_token(text: str) -> None:
        tokens.append(text)

    models = client(faulty, max_tokens=1000, max_output_chars=5000)
    try:
        call = await models.chat("chat", MESSAGES, on_token=on_token)
        assert "max_output_chars=5000" in call.cut_off
        assert len(call.text) == 5000 and "".join(tokens) == call.text
        assert call.as_event_data()["cut_off"] == call.cut_off
        # The connection of a call that was cut off is dropped; the next call still works.
        faulty.mode, faulty.text = "text", '{"action": "respond", "message": "ok"}'
        assert (await models.chat("chat", MESSAGES)).text == faulty.text
    finally:
        await models.close()


async def test_more_chunks_than_max_tokens_allow_are_cut_off(faulty: FaultyModel) -> None:
    faulty.mode, faulty.text = "endless", "y"
    models = client(faulty, max_tokens=10)
    try:
        call = await models.chat("chat", MESSAGES)
    finally:
        await models.close()
    assert "max_tokens=10" in call.cut_off
    assert len(call.text) == 2 * 10 + 16


async def test_a_call_longer_than_its_wall_time_is_cut_off(faulty: FaultyModel) -> None:
    # Steady output, well inside the per-read timeout, that never ends.
    faulty.mode, faulty.text, faulty.interval = "endless", "z", 0.01
    models = client(faulty, max_tokens=100_000, max_call_seconds=0.3, timeout_seconds=30)
    try:
        call = await models.chat("chat", MESSAGES)
    finally:
        await models.close()
    assert "max_call_seconds=0.3" in call.cut_off


async def test_a_silent_server_times_out_as_a_timeout(faulty: FaultyModel) -> None:
    faulty.mode = "stall"
    models = client(faulty, timeout_seconds=0.2)
    try:
        with pytest.raises(DeadlineExceeded) as caught:
            await models.chat("chat", MESSAGES)
    finally:
        await models.close()
    assert "timed out" in caught.value.message and "unreachable" not in caught.value.message


async def test_lone_surrogates_and_bad_chunks_never_crash(faulty: FaultyModel) -> None:
    faulty.mode = "raw"
    faulty.raw = [chunk("a\ud800b"), 'data: {"choices": "nonsense"}\n\n', "data: [1, 2]\n\n", "data: [DONE]\n\n"]
    models = client(faulty)
    try:
        call = await models.chat("chat", MESSAGES)
        assert call.text == "a\ufffdb"
        call.text.encode("utf-8")  # encodable: no lone surrogate survived
        faulty.raw = ["data: {not json\n\n"]
        with pytest.raises(Unavailable, match="not JSON"):
            await models.chat("chat", MESSAGES)
        faulty.raw = ["data: " + "[" * 20_000 + "\n\n"]
        with pytest.raises(Unavailable, match="not JSON"):
            await models.chat("chat", MESSAGES)
    finally:
        await models.close()


async def test_one_huge_line_is_cut_off_without_being_parsed(faulty: FaultyModel) -> None:
    faulty.mode = "raw"
    faulty.raw = [chunk("w" * 3_000_000), "data: [DONE]\n\n"]
    models = client(faulty, max_output_chars=4096)
    try:
        call = await models.chat("chat", MESSAGES)
    finally:
        await models.close()
    assert "longer than" in call.cut_off and call.text == ""
    assert json.loads(json.dumps(call.as_event_data()))["cut_off"]


async def test_a_restarting_server_is_waited_for_and_a_dead_one_named(faulty: FaultyModel) -> None:
    backoffs: list[float] = []
    backing_off, restarted = asyncio.Event(), asyncio.Event()

    async def backoff(seconds: float) -> None:
        # The client was refused and waits to try again: held until the server is back.
        backoffs.append(seconds)
        backing_off.set()
        await restarted.wait()

    models = client(faulty, sleep=backoff, connect_wait_seconds=30)
    try:
        await faulty.stop()
        call = asyncio.create_task(models.chat("chat", MESSAGES))
        await asyncio.wait_for(backing_off.wait(), 30)  # refused, and waiting to try again
        assert not call.done()
        await faulty.start(faulty.port)
        restarted.set()
        assert (await call).text == faulty.text
        assert backoffs == [0.1]
    finally:
        await models.close()
    dead = client(FaultyModel(port=free_port()), connect_wait_seconds=0.2)
    try:
        with pytest.raises(Unavailable, match=r"unreachable.*waited 0.2 s"):
            await dead.chat("chat", MESSAGES)
    finally:
        await dead.close()
