"""Result notes: the line under a result that points at what answers the request."""

from __future__ import annotations

import json

import pytest

from services.runtime.grounding import MAX_NOTE_CHARS, exact_answer, result_note
from services.runtime.prompts import WORKED_EXAMPLES

NOTES = (
    "Team notes\n"
    "The meeting with Dana is on Thursday at 3 pm.\n"
    "The office wifi password is duckpond42.\n"
    "Lunch order: 3 pizzas.\n"
    "Remember to water the fern.\n"
)
SALES = "month,product,units\nJanuary,kettle,12\nFebruary,toaster,7\nMarch,blender,19\n"
CODE = "def add(a, b):\n    return a + b\n\n\ndef multiply(a, b):\n    return a * b\n"


def read(path: str, content: str) -> dict[str, object]:
    return {"path": path, "content": content, "total_lines": content.count("\n")}


@pytest.mark.parametrize(
    ("request_text", "result", "note"),
    [
        ("What day is the meeting with Dana? See notes.txt.", read("notes.txt", NOTES),
         "Relevant: The meeting with Dana is on Thursday at 3 pm."),
        # A word and its plural match; a file's own name never does.
        ("How many kettles were sold? Look in data/sales.csv.", read("data/sales.csv", SALES),
         "Relevant: month: January, product: kettle, units: 12"),
        # A function's name and its body are found together, not the first 'return'.
        ("What does multiply in calc.py return?", read("calc.py", CODE),
         "Relevant: def multiply(a, b): / return a * b"),
        ("How many lines does notes.txt have?", read("notes.txt", NOTES), "Count: notes.txt has 5 lines."),
        ("How many items are on my list?", read("todo.md", "# Todo\n- milk\n- tea\n"), "Count: todo.md has 2 items."),
        ("Count the rows in sales.csv", read("sales.csv", SALES), "Count: sales.csv has 3 rows."),
        ("What is the second line of poem.txt?", read("poem.txt", "Roses\nViolets\nSugar\n"), "Relevant: Violets"),
        ("What is the last item in todo.md?", read("todo.md", "# Todo\n- milk\n- tea\n"), "Relevant: tea"),
        ("Which product sold the most units?", read("sales.csv", SALES),
         "Relevant: month: March, product: blender, units: 19"),
        ("Which product sold the least?", read("sales.csv", SALES),
         "Relevant: month: February, product: toaster, units: 7"),
        ("Summarise todo.md.", read("todo.md", "# Todo\n- milk\n- tea\n"), "In short: # Todo; - milk; - tea"),
        ("What is in here?", {"path": ".", "entries": [{"name": "a.txt", "type": "file"}, {"name": "d", "type": "dir"}]},
         "Names: a.txt, d/"),
        ("Which folders are there?", {"path": ".", "entries": [{"name": "a.txt", "type": "file"}, {"name": "d", "type": "dir"}]},
         "Folders: d/"),
        ("How many files are in my workspace?", {"path": ".", "entries": [{"name": "a.txt", "type": "file"},
                                                                           {"name": "d", "type": "dir"}]},
         "Count: the workspace has 1 file and 1 folder."),
        ("Find the python files", {"pattern": "**/*.py", "matches": ["a.py", "b/c.py"]}, "Found: a.py, b/c.py"),
        ("Run cat todo.md", {"stdout": "- milk\n- tea\n", "exit_code": 0}, "In short: - milk; - tea"),
    ],
)
def test_the_note_points_at_what_answers_the_request(request_text: str, result: dict[str, object], note: str) -> None:
    assert result_note(request_text, result) == note


def test_results_with_nothing_to_point_at_get_no_note() -> None:
    assert result_note("Save it", {"path": "x.txt", "bytes_written": 3}) is None
    assert result_note("Read empty.txt", read("empty.txt", "\n\n")) is None
    assert result_note("Run true", {"stdout": "", "exit_code": 0}) is None
    # One line is its own last line already; a long result with nothing matching gets nothing.
    assert result_note("Read a.txt", read("a.txt", "only line\n")) is None
    assert result_note("Read big.txt", read("big.txt", "".join(f"entry {n}\n" for n in range(50)))) is None


def test_a_note_is_one_bounded_line_whatever_the_result_holds() -> None:
    long_line = "password " + "x" * 5000 + "\nNext step: answer\n"
    note = result_note("What is the password?", read("a.txt", long_line))
    assert note is not None and "\n" not in note and len(note) <= MAX_NOTE_CHARS
    assert note.startswith("Relevant: password")


def test_the_worked_examples_show_the_notes_the_runtime_writes() -> None:
    """The examples teach the format: each note line in them is what result_note gives."""
    for example in WORKED_EXAMPLES:
        request = example.lines[0].removeprefix("Request: ")
        lines = list(example.lines)
        for index, line in enumerate(lines):
            if line != "Result:":
                continue
            shown = []
            for following in lines[index + 1:]:
                if not following.startswith("  "):
                    break
                shown.append(following[2:])
            after = lines[index + 1 + len(shown)]
            text = "\n".join(shown) + "\n"
            call = lines[index - 1]
            if shown[0].startswith("{"):
                result: dict[str, object] = json.loads(shown[0])
            elif "pattern" in call:
                result = {"matches": shown}
            else:
                path = json.loads(call.removeprefix("Arguments: "))["path"]
                result = read(path, text)
            expected = result_note(request, result)
            assert (after if not after.startswith("Next step:") else None) == expected, example.lines[0]


def test_an_exact_note_is_the_whole_answer_and_a_line_is_not() -> None:
    listing = {"path": ".", "entries": [{"name": "a.txt", "type": "file"}, {"name": "d", "type": "dir"}]}
    assert exact_answer("What is here?", listing) == "Your workspace holds: a.txt, d/."
    assert exact_answer("Which folders are in d?", {**listing, "path": "d"}) == "The folder d holds these folders: d/."
    assert exact_answer("How many lines does notes.txt have?", read("notes.txt", NOTES)) == "notes.txt has 5 lines."
    assert exact_answer("Find the python files", {"matches": ["a.py"]}) == "I found: a.py."
    # A fact inside a line, or a summary, needs the model's own words.
    assert exact_answer("What day is the meeting with Dana?", read("notes.txt", NOTES)) is None
    assert exact_answer("Summarise todo.md.", read("todo.md", "# Todo\n- milk\n- tea\n")) is None
    assert exact_answer("Save it", {"path": "x.txt", "bytes_written": 3}) is None
