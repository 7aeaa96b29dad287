"""Bad model output is repaired, never an internal error: lone surrogates, JSON nested deep,
an output past the output cap, a malformed escape mid-stream. Real gRPC, scripted model."""

from __future__ import annotations

import json

from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc

from services.runtime.model_text import MAX_JSON_DEPTH, ModelJSONError, load_model_json
from services.runtime.reply_stream import ReplyExtractor
from tests.scripted_model import ScriptedModel

COMPLETED = common_pb2.TASK_STATUS_COMPLETED


async def errors_of(stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, task_id: str) -> list[dict[str, object]]:
    events = (await stub.ListTaskEvents(runtime_pb2.ListTaskEventsRequest(task_id=task_id))).events
    return [dict(e.data) for e in events if e.type == common_pb2.EVENT_TYPE_ERROR]


async def test_a_lone_surrogate_is_replaced_and_streams(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script(['{"action": "respond", "message": "half \\ud800 a pair"}'])
    reply = await runtime_stub.Chat(runtime_pb2.ChatRequest(message="hi"))
    assert reply.task.status == COMPLETED and reply.reply == "half \ufffd a pair"


async def test_deep_nesting_is_an_invalid_directive_with_a_reason(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    scripted_model.script(["[" * 1000, {"action": "respond", "message": "flat"}])
    reply = await runtime_stub.Chat(runtime_pb2.ChatRequest(message="hi"))
    assert reply.task.status == COMPLETED and reply.reply == "flat"
    (error,) = await errors_of(runtime_stub, reply.task.id)
    assert error["code"] == "invalid_directive" and "nests arrays or objects" in str(error["message"])


async def test_an_oversized_output_is_cut_off_clipped_and_repaired(
    runtime_stub: runtime_pb2_grpc.RuntimeServiceAsyncStub, scripted_model: ScriptedModel
) -> None:
    # The role's max_tokens is 64: 4096 characters at most, far less than 50 KB.
    scripted_model.script(['{"action": "respond", "message": "' + "z" * 50_000, {"action": "respond", "message": "short"}])
    reply = await runtime_stub.Chat(runtime_pb2.ChatRequest(message="hi"))
    assert reply.task.status == COMPLETED and reply.reply == "short", reply.task.error
    (error,) = await errors_of(runtime_stub, reply.task.id)
    assert error["code"] == "invalid_directive" and "cut off" in str(error["message"])
    repair_prompt = scripted_model.requests[-1]["messages"]
    assert max(len(m["content"]) for m in repair_prompt) < 3000


def test_bounded_parse() -> None:
    assert load_model_json('{"a": [[["\\ud83d\\ude00"]]], "b": "\\udc00"}') == {"a": [[["\U0001f600"]]], "b": "\ufffd"}
    nested = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    for bad, reason in ((nested, "nests"), ("x" * 300_000, "characters long"), ("{", "not JSON"), ("1" * 5000, "usable")):
        try:
            load_model_json(bad)
        except ModelJSONError as exc:
            assert reason in str(exc)
        else:
            raise AssertionError(f"{bad[:20]!r} parsed")
    # Brackets inside strings (and escaped quotes) do not count as nesting.
    text = json.dumps({"m": "[" * 100 + '\\"' + "{" * 100})
    assert load_model_json(text)["m"].startswith("[[")


def test_the_extractor_never_raises_and_holds_little() -> None:
    extractor = ReplyExtractor()
    pieces = ['{"message": "', "\\u", "zz", "\\ud8", "00\\u", "dc", "00", "x" * 100_000, "\\", "n", '"']
    out = "".join(extractor.feed(piece) for piece in pieces)
    assert out == "uzz\U00010000" + "x" * 100_000 + "\n"
    assert extractor.feed('"more"') == ""
    looking = ReplyExtractor()
    for _ in range(1000):
        looking.feed("no key here at all " * 10)
    assert looking.buffered < len('"message"')
