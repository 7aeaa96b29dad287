"""The texts a write request states, lifted out of its own words for the model to pick from."""

from __future__ import annotations

import pytest

from services.runtime.peers import ToolSpec
from services.runtime.staged import fill_schema
from services.runtime.write_content import stated_texts, write_choices
from services.tools.catalogue import TOOLS

WRITE = next(ToolSpec(t.name, t.description, t.schema, False, True) for t in TOOLS if t.name == "write_file")


@pytest.mark.parametrize(
    ("request_text", "texts"),
    [
        ("Create a file called hello.txt that says hello world.", ["hello world"]),
        ("Write a file shopping.txt containing: eggs, bread.", ["eggs, bread"]),
        ("Save the text 'call the bank' to a file named reminder.txt.", ["call the bank"]),
        ('Put "v2 is out" into news.md', ["v2 is out"]),
        ("Create notes2.txt with the line: Dana meeting moved to Friday.", ["Dana meeting moved to Friday"]),
        ("Write a poem about ducks to poem.txt", []),
    ],
)
def test_the_text_to_write_is_the_one_the_request_states(request_text: str, texts: list[str]) -> None:
    assert stated_texts(request_text) == texts


def test_a_line_added_to_a_file_keeps_the_file_and_its_list_style() -> None:
    todo = "# Todo\n- Buy oat milk\n- Call the plumber\n"
    assert write_choices("Add the line 'Buy stamps' to todo.md.", todo) == [todo + "- Buy stamps\n"]
    assert write_choices("Append 'c' to a.txt", "a\nb") == ["a\nb\nc\n"]
    assert write_choices("Add something to a.txt", "a\n") == []


def test_a_write_is_filled_with_a_stated_text_and_a_named_file() -> None:
    request = "Create a file called hello.txt that says hello world."
    schema = fill_schema(WRITE.arguments_schema, None, 200, request, write_choices(request))
    assert schema["properties"] == {"path": {"enum": ["hello.txt"]}, "content": {"enum": ["hello world"]}}
    # Nothing stated: the content is free text, capped; no file named: a safe new path.
    free = fill_schema(WRITE.arguments_schema, None, 200, "Write a poem", [])
    assert free["properties"]["content"] == {"type": "string", "maxLength": 200}
    assert "pattern" in free["properties"]["path"]
