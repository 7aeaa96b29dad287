"""The words the staged decision puts before a small model: what each step does and a few worked
examples, in the transcript's own format.

The examples use files and words of their own, never the user's: they teach the format and the
choice of step, not an answer. Each is shown only when every step it uses is on offer, and
they depend on nothing but the catalogue, so they stay in the prompt cache.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANSWER", "DEMONSTRATIONS", "STEP_DESCRIPTIONS", "WORKED_EXAMPLES", "Demonstration", "WorkedExample",
           "short_description"]

# The step that ends the turn with a reply to the user.
ANSWER = "answer"

# What each step that is not a tool does, in the words the model sees.
STEP_DESCRIPTIONS = {
    ANSWER: "reply to the user now (greetings, general knowledge, or when a result above holds the answer)",
    "use_skill": "load the instructions of one of the skills below",
    "remember": "store a fact the user asked you to remember",
    "recall": "search your memory for something the user told you earlier",
}


@dataclass(frozen=True)
class Demonstration:
    """A request and the first step that serves it."""

    request: str
    step: str


@dataclass(frozen=True)
class WorkedExample:
    """A whole short task in the transcript format, and the steps it shows."""

    steps: tuple[str, ...]
    lines: tuple[str, ...]


DEMONSTRATIONS: tuple[Demonstration, ...] = (
    Demonstration("What is in the docs folder?", "list_dir"),
    Demonstration("What does config.ini say about the port?", "read_file"),
    Demonstration("Who wrote Hamlet?", ANSWER),
    Demonstration("Find all .js files.", "find_files"),
    Demonstration("Create a file todo.txt saying buy bread.", "write_file"),
    Demonstration("Run wc -w report.txt", "run_command"),
    Demonstration("Good morning!", ANSWER),
    Demonstration("Make a folder named old.", "make_dir"),
    Demonstration("How many lines are in log.txt?", "read_file"),
    Demonstration("Summarise chapter1.md.", "read_file"),
    Demonstration("Which files are in my workspace?", "list_dir"),
    Demonstration("What is 10 times 3?", ANSWER),
    Demonstration("Is there a PDF file somewhere?", "find_files"),
    Demonstration("Write 'done' into status.txt.", "write_file"),
    Demonstration("Use cat to show intro.txt.", "run_command"),
    Demonstration("What is the second line of poem.txt?", "read_file"),
    Demonstration("What is the capital of Japan?", ANSWER),
    Demonstration("Remember that my train leaves at 8.", "remember"),
    Demonstration("What did I tell you about my train?", "recall"),
)

# Each result is shown as the runtime shows it in a task (grounding.py): only the lines that
# answer the request where some do, and under a result the note of what it computed exactly.
WORKED_EXAMPLES: tuple[WorkedExample, ...] = (
    WorkedExample(
        ("read_file", ANSWER),
        (
            "Request: What port does config.ini set?",
            "Next step: read_file",
            'Arguments: {"path": "config.ini"}',
            "Result (the lines that answer it):",
            "  port = 8080",
            "Next step: answer",
            "Answer: config.ini sets the port to 8080.",
        ),
    ),
    WorkedExample(
        ("find_files", "read_file", ANSWER),
        (
            "Request: Find the log file and tell me its first line.",
            "Next step: find_files",
            'Arguments: {"pattern": "**/*.log"}',
            "Result:",
            "  logs/app.log",
            "Found: logs/app.log",
            "Next step: read_file",
            'Arguments: {"path": "logs/app.log"}',
            "Result (the lines that answer it):",
            "  started at 09:00",
            "Next step: answer",
            "Answer: The first line of logs/app.log is: started at 09:00.",
        ),
    ),
    WorkedExample(
        ("read_file", ANSWER),
        (
            "Request: How many lines does list.txt have?",
            "Next step: read_file",
            'Arguments: {"path": "list.txt"}',
            "Result:",
            "  eggs",
            "  milk",
            "  tea",
            "Count: list.txt has 3 lines.",
            "Next step: answer",
            "Answer: list.txt has 3 lines.",
        ),
    ),
    WorkedExample(
        ("write_file", ANSWER),
        (
            "Request: Save the word ready to state.txt.",
            "Next step: write_file",
            'Arguments: {"path": "state.txt", "content": "ready"}',
            "Result:",
            '  {"path":"state.txt","bytes_written":5}',
            "Next step: answer",
            "Answer: I saved ready to state.txt.",
        ),
    ),
    WorkedExample(
        (ANSWER,),
        (
            "Request: What is the capital of Italy?",
            "Next step: answer",
            "Answer: The capital of Italy is Rome.",
        ),
    ),
)


def short_description(description: str, limit: int = 90) -> str:
    """The first sentence of a tool's description, cut to `limit` characters."""
    first = description.strip().split(". ")[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
