"""ReplyExtractor: the streamed message text equals the decoded message, however it is split."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from services.runtime.reply_stream import ReplyExtractor


def feed_all(pieces: list[str]) -> str:
    extractor = ReplyExtractor()
    return "".join(extractor.feed(piece) for piece in pieces)


def test_only_the_message_value_is_streamed() -> None:
    text = '{"action": "respond", "message": "Hello \\"you\\"\\n\\u00e9!"}'
    assert feed_all([text[i : i + 3] for i in range(0, len(text), 3)]) == 'Hello "you"\né!'


def test_no_message_key_streams_nothing() -> None:
    assert feed_all(['{"action": "call_tool", "tool": "x", "arguments": {}}']) == ""


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40))
def test_any_split_of_any_message_reassembles_exactly(message: str, sizes: list[int]) -> None:
    text = json.dumps({"action": "respond", "message": message})
    pieces, index = [], 0
    for size in sizes * (len(text) // len(sizes) + 1):
        if index >= len(text):
            break
        pieces.append(text[index : index + size])
        index += size
    assert feed_all(pieces) == message
