"""The evaluation suite: a small fixed workspace and the everyday requests asked about it.

Each task names what a user would check: which tool(s) may come first, a fact the answer must
hold, the state of files afterwards, and how many steps it should take at most. The suite is
data only; `scoring.py` judges a run and `run_eval.py` drives the real stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SMOKE_TASKS", "TASKS", "WORKSPACE_FILES", "EvalTask", "FileCheck", "make_workspace"]

# The workspace every task starts from (laid anew before each task, so writes never leak).
WORKSPACE_FILES: dict[str, str] = {
    "notes.txt": (
        "Team notes\n"
        "The meeting with Dana is on Thursday at 3 pm.\n"
        "The office wifi password is duckpond42.\n"
        "Lunch order: 3 pizzas.\n"
        "Remember to water the fern.\n"
    ),
    "todo.md": "# Todo\n- Buy oat milk\n- Call the plumber\n- Renew the passport\n",
    "README.md": (
        "# Birdwatch\n"
        "Birdwatch counts the birds in your garden photos and writes a weekly report.\n"
        "Run `python -m birdwatch photos/` to start.\n"
    ),
    "project/calc.py": (
        '"""A tiny calculator."""\n\n\n'
        "def add(a, b):\n    return a + b\n\n\n"
        "def multiply(a, b):\n    return a * b\n"
    ),
    "project/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    "project/pyproject.toml": '[project]\nname = "calc"\nversion = "0.3.1"\n',
    "data/sales.csv": "month,product,units\nJanuary,kettle,12\nFebruary,toaster,7\nMarch,blender,19\n",
}


@dataclass(frozen=True)
class FileCheck:
    """After the task: `path` exists (a folder when it ends with '/') and holds every string."""

    path: str
    contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalTask:
    id: str
    category: str
    message: str
    # Tools acceptable as the first call; empty: the right move is to answer without a tool.
    first_tools: tuple[str, ...]
    # The answer holds at least one of these (case-insensitive); empty: the answer is not judged.
    facts: tuple[str, ...] = ()
    files: tuple[FileCheck, ...] = ()
    max_steps: int = 3
    # Steps of the harness: approve whatever the task asks for (a user who asked would).
    approve: bool = True
    tags: tuple[str, ...] = field(default=())
    # The workspace the task starts from; None: WORKSPACE_FILES.
    workspace: Mapping[str, str] | None = None

    @property
    def files_before(self) -> Mapping[str, str]:
        return WORKSPACE_FILES if self.workspace is None else self.workspace


READ_TOOLS = ("read_file", "run_command")
LIST_TOOLS = ("list_dir", "find_files", "run_command")
FIND_TOOLS = ("find_files", "list_dir", "run_command")

TASKS: tuple[EvalTask, ...] = (
    # Listing
    EvalTask("list-root", "list", "What files are in my workspace?", LIST_TOOLS, ("notes.txt", "todo.md", "README.md")),
    EvalTask("list-project", "list", "List the files in the project folder.", LIST_TOOLS, ("calc.py",)),
    EvalTask("list-data", "list", "Show me what is in the data folder.", LIST_TOOLS, ("sales.csv",)),
    EvalTask("list-folders", "list", "Which folders are there in my workspace?", LIST_TOOLS, ("project", "data")),
    # Finding
    EvalTask("find-python", "find", "Find all Python files in the workspace.", FIND_TOOLS, ("calc.py",)),
    EvalTask("find-csv", "find", "Is there a CSV file anywhere in my workspace? Give its name.", FIND_TOOLS, ("sales.csv",)),
    EvalTask("find-markdown", "find", "Find the markdown files.", FIND_TOOLS, ("todo.md", "README.md")),
    # Reading and pulling out one fact
    EvalTask("read-meeting", "read", "Read notes.txt and tell me what day the meeting with Dana is.", READ_TOOLS, ("thursday",)),
    EvalTask("read-wifi", "read", "What is the wifi password? It is in notes.txt.", READ_TOOLS, ("duckpond42",)),
    EvalTask("read-todo-first", "read", "What is the first item in todo.md?", READ_TOOLS, ("oat milk",)),
    EvalTask("read-version", "read", "What version is set in project/pyproject.toml?", READ_TOOLS, ("0.3.1",)),
    EvalTask("read-march", "read", "According to data/sales.csv, which product sold in March?", READ_TOOLS, ("blender",)),
    EvalTask("read-kettles", "read", "How many kettles were sold? Look in data/sales.csv.", READ_TOOLS, ("12",)),
    EvalTask("read-multiply", "read", "What does the function multiply in project/calc.py return?", READ_TOOLS,
             ("a * b", "product", "multipl")),
    # Counting
    EvalTask("count-notes", "count", "How many lines does notes.txt have?", READ_TOOLS, ("5", "five")),
    EvalTask("count-todo", "count", "How many items are on my todo list in todo.md?", READ_TOOLS, ("3", "three")),
    EvalTask("count-csv", "count", "Count the lines in data/sales.csv.", READ_TOOLS, ("4", "four")),
    # Summarising
    EvalTask("summary-readme", "summarise", "What is this project about? Look at README.md.", READ_TOOLS, ("bird",)),
    EvalTask("summary-notes", "summarise", "Summarise notes.txt in one sentence.", READ_TOOLS,
             ("dana", "meeting", "wifi", "pizza", "fern")),
    EvalTask("summary-todo", "summarise", "Give me a short summary of todo.md.", READ_TOOLS, ("milk", "plumber", "passport")),
    # Writing (the harness approves, as the user who asked would)
    EvalTask("write-hello", "write", "Create a file called hello.txt that says hello world.", ("write_file",),
             files=(FileCheck("hello.txt", ("hello",)),)),
    EvalTask("write-shopping", "write", "Write a file shopping.txt containing: eggs, bread.", ("write_file",),
             files=(FileCheck("shopping.txt", ("eggs",)),)),
    EvalTask("write-folder", "write", "Make a new folder called archive.", ("make_dir", "run_command"),
             files=(FileCheck("archive/"),)),
    EvalTask("write-reminder", "write", "Save the text 'call the bank' to a file named reminder.txt.", ("write_file",),
             files=(FileCheck("reminder.txt", ("bank",)),)),
    EvalTask("write-notes2", "write", "Create notes2.txt with the line: Dana meeting moved to Friday.", ("write_file",),
             files=(FileCheck("notes2.txt", ("friday",)),)),
    # Allowlisted commands
    EvalTask("command-wc", "command", "Run the command wc -l notes.txt.", ("run_command",), ("5",)),
    EvalTask("command-ls", "command", "Use the ls command to list the project folder.", ("run_command",), ("calc.py",)),
    EvalTask("command-cat", "command", "Run cat todo.md and show me the output.", ("run_command",), ("oat milk",)),
    # No tool needed
    EvalTask("general-capital", "no_tool", "What is the capital of France?", (), ("paris",), max_steps=1),
    EvalTask("general-sum", "no_tool", "What is 2 plus 2?", (), ("4", "four"), max_steps=1),
    EvalTask("general-hello", "no_tool", "Say hello to me.", (), ("hello", "hi"), max_steps=1),
    EvalTask("general-sky", "no_tool", "What colour is the sky on a clear day?", (), ("blue",), max_steps=1),
    EvalTask("general-merci", "no_tool", "How do you say 'thank you' in French?", (), ("merci",), max_steps=1),
    # Two or three steps
    EvalTask("multi-csv-max", "multi_step", "Find the CSV file in my workspace and tell me which product sold the most units.",
             FIND_TOOLS + ("read_file",), ("blender",), max_steps=4),
    EvalTask("multi-functions", "multi_step",
             "Look in the project folder, open the Python file that is not a test, and tell me its function names.",
             LIST_TOOLS + ("read_file",), ("add", "multiply"), max_steps=4),
    EvalTask("multi-append", "multi_step", "Add the line 'Buy stamps' to todo.md, keeping what is there.",
             ("read_file", "run_command"), files=(FileCheck("todo.md", ("stamps", "oat milk")),), max_steps=4),
)

# What `make test` runs so the harness itself keeps working: one of each kind of check.
SMOKE_TASKS = ("general-capital", "read-meeting", "write-hello")


def make_workspace(root: Path, files: Mapping[str, str] | None = None) -> None:
    """Lays a fixed workspace (WORKSPACE_FILES unless given) in `root`, removing anything else
    there first."""
    if root.exists():
        for entry in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if entry.is_dir() and not entry.is_symlink():
                entry.rmdir()
            else:
                entry.unlink()
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in (WORKSPACE_FILES if files is None else files).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
