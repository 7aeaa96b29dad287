"""Result notes: the line under a result that points at what answers the request."""

from __future__ import annotations

import json

import pytest

from services.runtime.grounding import MAX_NOTE_CHARS, exact_answer, relevant_lines, result_note
from services.runtime.prompts import WORKED_EXAMPLES
from services.runtime.transcript import RELEVANT_HEADING

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
    ("request_text", "result", "lines"),
    [
        ("What day is the meeting with Dana? See notes.txt.", read("notes.txt", NOTES),
         ["The meeting with Dana is on Thursday at 3 pm."]),
        # A word and its plural match; a file's own name never does.
        ("How many kettles were sold? Look in data/sales.csv.", read("data/sales.csv", SALES),
         ["month: January, product: kettle, units: 12"]),
        # A function's name and its body are found together, not the first 'return'.
        ("What does multiply in calc.py return?", read("calc.py", CODE), ["def multiply(a, b):", "return a * b"]),
        ("What is the second line of poem.txt?", read("poem.txt", "Roses\nViolets\nSugar\n"), ["Violets"]),
        ("What is the last item in todo.md?", read("todo.md", "# Todo\n- milk\n- tea\n"), ["tea"]),
        ("Which product sold the most units?", read("sales.csv", SALES), ["month: March, product: blender, units: 19"]),
        ("Which product sold the least?", read("sales.csv", SALES), ["month: February, product: toaster, units: 7"]),
        ("What does the output say about tea?", {"stdout": "- milk\n- tea\n", "exit_code": 0}, ["tea"]),
        # A version is one word, and a heading brings the line under it.
        ("What was added in version 1.4.0 according to CHANGELOG.md?",
         read("CHANGELOG.md", "# Changelog\n## 1.4.0\n- Dark mode\n## 1.3.2\n- Fixed login bug\n"), ["## 1.4.0", "Dark mode"]),
        # The file's own name is what every line is about: not a clue to which line answers.
        ("How much milk goes into the pancakes?", read("recipes/pancakes.md", "# Pancakes\nFlour: 200 g\nMilk: 300 ml\n"),
         ["Milk: 300 ml"]),
        # Nothing stands out: the whole result is what to look at.
        ("Summarise todo.md.", read("todo.md", "# Todo\n- milk\n- tea\n"), None),
        ("How many lines does notes.txt have?", read("notes.txt", NOTES), None),
        ("List it", {"path": ".", "entries": [{"name": "a.txt", "type": "file"}]}, None),
    ],
)
def test_the_lines_that_answer_the_request_are_found(
    request_text: str, result: dict[str, object], lines: list[str] | None
) -> None:
    assert relevant_lines(request_text, result) == lines


@pytest.mark.parametrize(
    ("request_text", "result", "note"),
    [
        ("How many lines does notes.txt have?", read("notes.txt", NOTES), "Count: notes.txt has 5 lines."),
        ("How many items are on my list?", read("todo.md", "# Todo\n- milk\n- tea\n"), "Count: todo.md has 2 items."),
        ("How many things are on my list?", read("todo.md", "# Todo\n- milk\n- tea\n"), "Count: todo.md has 2 items."),
        ("Count the rows in sales.csv", read("sales.csv", SALES), "Count: sales.csv has 3 rows."),
        ("How many words are in poem.txt?", read("poem.txt", "Roses are red\nSugar\n"), "Count: poem.txt has 4 words."),
        ("What is in here?", {"path": ".", "entries": [{"name": "a.txt", "type": "file"}, {"name": "d", "type": "dir"}]},
         "Names: a.txt, d/"),
        ("Which folders are there?", {"path": ".", "entries": [{"name": "a.txt", "type": "file"}, {"name": "d", "type": "dir"}]},
         "Folders: d/"),
        ("How many files are in my workspace?", {"path": ".", "entries": [{"name": "a.txt", "type": "file"},
                                                                           {"name": "d", "type": "dir"}]},
         "Count: the workspace has 1 file and 1 folder."),
        ("Find the python files", {"pattern": "**/*.py", "matches": ["a.py", "b/c.py"]}, "Found: a.py, b/c.py"),
        # A listing counts files and folders, never a list's items.
        ("How many items are on my todo list?", {"path": ".", "entries": [{"name": "todo.md", "type": "file"}]},
         "Names: todo.md"),
        ("What day is the meeting with Dana?", read("notes.txt", NOTES), None),
    ],
)
def test_the_note_says_what_the_runtime_computed(request_text: str, result: dict[str, object], note: str | None) -> None:
    assert result_note(request_text, result) == note


def test_results_with_nothing_to_point_at_get_nothing() -> None:
    assert result_note("Save it", {"path": "x.txt", "bytes_written": 3}) is None
    assert relevant_lines("Read empty.txt", read("empty.txt", "\n\n")) is None
    assert result_note("Run true", {"stdout": "", "exit_code": 0}) is None
    assert relevant_lines("Read big.txt", read("big.txt", "".join(f"entry {n}\n" for n in range(50)))) is None


def test_a_found_line_is_bounded_whatever_the_result_holds() -> None:
    lines = relevant_lines("What is the password?", read("a.txt", "password " + "x" * 5000 + "\nNext step: answer\n"))
    assert lines is not None and len(lines) == 1
    assert lines[0].startswith("password") and len(lines[0]) <= MAX_NOTE_CHARS


def test_the_worked_examples_show_results_as_the_runtime_shows_them() -> None:
    """The examples teach the format: each result in them is rendered as a task's would be."""
    for example in WORKED_EXAMPLES:
        request = example.lines[0].removeprefix("Request: ")
        lines = list(example.lines)
        for index, line in enumerate(lines):
            if not line.startswith("Result"):
                continue
            shown = [following[2:] for following in _indented_after(lines, index)]
            after = lines[index + 1 + len(shown)]
            call = lines[index - 1]
            if shown[0].startswith("{"):
                result: dict[str, object] = json.loads(shown[0])
            elif "pattern" in call:
                result = {"matches": shown}
            else:
                path = json.loads(call.removeprefix("Arguments: "))["path"]
                result = read(path, "\n".join(shown) + "\n")
            if line == RELEVANT_HEADING:
                # The file had more lines; what is shown is what the runtime would pick from them.
                picked = relevant_lines(request, read(str(result.get("path")), "\n".join(shown) + "\nanother line\n"))
                assert picked == shown, example.lines[0]
            else:
                assert line == "Result:" and relevant_lines(request, result) is None, example.lines[0]
                expected = result_note(request, result)
                assert (None if after.startswith("Next step:") else after) == expected, example.lines[0]


def _indented_after(lines: list[str], index: int) -> list[str]:
    shown = []
    for following in lines[index + 1:]:
        if not following.startswith("  "):
            break
        shown.append(following)
    return shown


def test_an_exact_note_is_the_whole_answer_and_a_line_is_not() -> None:
    listing = {"path": ".", "entries": [{"name": "a.txt", "type": "file"}, {"name": "d", "type": "dir"}]}
    assert exact_answer("What is here?", listing) == "Your workspace holds: a.txt, d/."
    assert exact_answer("Which folders are in d?", {**listing, "path": "d"}) == "The folder d holds these folders: d/."
    assert exact_answer("How many lines does notes.txt have?", read("notes.txt", NOTES)) == "notes.txt has 5 lines."
    assert exact_answer("Find the python files", {"matches": ["a.py"]}) == "I found: a.py."
    # A command's short output is the reply to running it; a failed or a long one is not.
    ran = {"argv": ["ls", "recipes"], "stdout": "pancakes.md\nsoup.txt\n", "exit_code": 0}
    assert exact_answer("Execute ls recipes", ran) == "`ls recipes` printed: pancakes.md; soup.txt"
    assert exact_answer("Execute ls recipes", {**ran, "exit_code": 2}) is None
    assert exact_answer("Run seq 50", {**ran, "stdout": "".join(f"{n}\n" for n in range(50))}) is None
    # A fact inside a line, or a summary, needs the model's own words.
    assert exact_answer("What day is the meeting with Dana?", read("notes.txt", NOTES)) is None
    assert exact_answer("Summarise todo.md.", read("todo.md", "# Todo\n- milk\n- tea\n")) is None
    assert exact_answer("Save it", {"path": "x.txt", "bytes_written": 3}) is None
